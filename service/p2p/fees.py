"""The interest service fee (利息管理费): the share of the interest each investor receives that
the platform keeps.

Decisions:

* A receipt's fee is its interest x ``repayment.interest_fee_rate`` x (1 - the investor's
  fee discount), rounded down to the fen: a fraction of a fen is the investor's. It is charged
  on the interest actually paid only (never on principal, a penalty share or a marketing rate
  boost, which marketing pays on its own); early settlement charges it on the interest the
  settlement pays, 0.00 on interest waived.
* The discount is a member level's ``fee_discount`` (service/loyalty/levels.py), but the
  lending core knows nothing of loyalty: it asks a :class:`FeeDiscounts` (the component
  ``fee_discounts``, which the composition root, server/app.py, wires to the levels) once for
  every investor of a repayment, and not at all when the rate is 0.
"""

from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

CENT = Decimal("0.01")


class FeeDiscounts(Protocol):
    """What the lending core needs to know of members to charge the interest service fee."""

    def discounts(self, member_ids: Iterable[int]) -> Mapping[int, Decimal]:
        """Each member's share of the fee waived, 0 <= share <= 1, for every id given; in the
        caller's transaction, in a query or two however many members."""
        ...


def interest_fee(interest: Decimal, rate: Decimal, discount: Decimal) -> Decimal:
    """The fee on ``interest`` at ``rate``, ``discount`` of it waived, rounded down to the fen."""
    return (interest * rate * (1 - discount)).quantize(CENT, rounding=ROUND_DOWN)
