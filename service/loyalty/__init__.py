"""Loyalty: member levels, daily check-in and points, experience gold and referral rewards
(README "Loyalty").

The rules: levels.py (a component, ``levels``, other modules read: ``level_of``), points.py,
experience.py, referral.py; service.py is LoyaltyFacade's service, loyalty's jobs and its
listener to the lending core; audit.py its checks for ``p2p check-ledger``.
"""

from service.loyalty.levels import Levels, LevelVo

__all__ = ["LevelVo", "Levels"]
