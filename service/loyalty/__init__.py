"""Loyalty: member levels, daily check-in and points, experience gold and referral rewards.

Levels (levels.py) are a component other modules read (``levels.level_of``).
"""

from service.loyalty.levels import Levels, LevelVo

__all__ = ["LevelVo", "Levels"]
