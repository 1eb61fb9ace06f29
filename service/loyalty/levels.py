"""Member levels (会员等级): a member's level follows the amount they have invested.

The levels and their half-open ranges are ``loyalty.levels`` (conf/loyalty.py refuses, at
start, levels that overlap or leave a gap). The amount is ``loyalty.level_basis``: CUMULATIVE,
every investment of the member that is frozen, lent or repaid; ROLLING, those made in the last
``loyalty.level_rolling_days`` days. A level is evaluated again when one of the member's
investments is frozen (the lifecycle's investment_frozen, in its transaction) and for every
member by the periodic job ``loyalty.evaluate_levels``; with ``loyalty.levels_can_drop`` false
a level never goes down.

:class:`Levels` is a component (``levels``) other modules read: ``level_of(member_id)`` is the
member's level and its benefits (the share of the platform's fee on interest it waives, the
coupon templates a member of it is given each month), in the caller's transaction. It is the
lending core's ``fee_discounts`` too (service/p2p/fees.py): ``discounts(member_ids)``, the
fee_discount of each investor repaid, which waives that share of the interest service fee
(repayment.interest_fee_rate); a member never evaluated gets the discount of the level the
amount they have invested falls in, as ``evaluate`` would place them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from conf.loyalty import LevelRule
from dao.loyalty import LevelRepository
from service.jobs import job
from service.lifecycle import Lifecycle, LifecycleListener
from service.transaction import Propagation, RetryTransaction, transactional

log = logging.getLogger(__name__)

#: Members evaluated per transaction by the periodic job.
BATCH = 200


@dataclass(frozen=True)
class LevelVo:
    member_id: int
    level: str
    #: The amount the level was evaluated on (what the member has invested, by the basis).
    invested: Decimal
    fee_discount: Decimal
    #: The coupon templates (ids) issued to the level's members each month.
    monthly_coupons: tuple[int, ...]
    #: The level above and the amount it starts at; None at the top level.
    next_level: str | None
    next_level_from: Decimal | None
    evaluated_at: dt.datetime | None


@dataclass(frozen=True)
class LevelRunVo:
    evaluated: int
    changed: int


class Levels:
    """Evaluates and reads members' levels, in the caller's transaction or one of its own."""

    def __init__(self, tx, settings, clock, lifecycle: Lifecycle) -> None:
        self.tx = tx
        self._settings = settings
        self._clock = clock
        self._levels = LevelRepository(tx.session)
        lifecycle.subscribe(_Reevaluate(self))

    @transactional(read_only=True)
    def level_of(self, member_id: int) -> LevelVo:
        """``member_id``'s level as last evaluated (the lowest level when never evaluated)."""
        row = self._levels.get(member_id)
        if row is None:
            return self._vo(member_id, self._rules()[0], Decimal("0.00"), None)
        return self._vo(member_id, self._rule(row.level), row.invested, row.evaluated_at)

    @transactional(read_only=True)
    def discounts(self, member_ids: Iterable[int]) -> dict[int, Decimal]:
        """Each member's level's fee_discount (the lending core's ``fee_discounts``,
        service/p2p/fees.py): the level as last evaluated or, for a member never evaluated,
        the level the amount they have invested falls in; two queries at most, however many
        members."""
        ids = set(member_ids)
        recorded = self._levels.levels_of(ids) if ids else {}
        unevaluated = ids - recorded.keys()
        rules = {m: self._rule(level) for m, level in recorded.items()}
        if unevaluated:
            invested = self._levels.invested_by(unevaluated, self._since(self._clock()))
            rules.update((m, self.rule_for(amount)) for m, amount in invested.items())
        return {m: rule.fee_discount for m, rule in rules.items()}

    @transactional
    def evaluate(self, member_id: int) -> LevelVo:
        """Evaluate ``member_id``'s level now and record it; the level it is at then."""
        now = self._clock()
        invested = self._levels.invested(member_id, self._since(now))
        rule = self.rule_for(invested)
        level = self._levels.level_for_update(member_id)
        if level is None:
            try:
                self._levels.insert(member_id, rule.name, invested, now)
            except IntegrityError:  # evaluated at this very moment elsewhere: read it again
                raise RetryTransaction(f"level of {member_id} evaluated concurrently") from None
            return self._vo(member_id, rule, invested, now)
        rule = self._kept(member_id, level, rule)
        self._levels.record(member_id, invested, now, rule.name if rule.name != level else None)
        return self._vo(member_id, rule, invested, now)

    def evaluate_all(self, member_ids: Collection[int]) -> None:
        """``evaluate`` each of ``member_ids``, set-based: what they invested summed in one
        query, their level rows locked in one (member order), those whose level stays
        recorded by one UPDATE; a member evaluated for the first time, or whose level
        changes, as ``evaluate`` does it."""
        now = self._clock()
        members = sorted(set(member_ids))
        invested = self._levels.invested_by(members, self._since(now))
        levels = self._levels.levels_for_update(members)
        unchanged: dict[int, Decimal] = {}
        for member_id in members:
            level = levels.get(member_id)
            if level is None:
                self.evaluate(member_id)
                continue
            rule = self._kept(member_id, level, self.rule_for(invested[member_id]))
            if rule.name != level:
                self._levels.record(member_id, invested[member_id], now, rule.name)
            else:
                unchanged[member_id] = invested[member_id]
        self._levels.record_all(unchanged, now)

    def _kept(self, member_id: int, level: str, rule: LevelRule) -> LevelRule:
        """The level a member recorded at ``level`` is at, ``rule`` being the one what they
        invested reaches: it, unless it is lower and levels may not drop."""
        current = self._rule(level)
        if self._rank(rule) < self._rank(current) and not self._settings.loyalty.levels_can_drop:
            return current
        if rule.name != level:
            log.info("member %s: level %s -> %s", member_id, level, rule.name)
        return rule

    @job("loyalty.evaluate_levels")
    @transactional(read_only=True)
    def evaluate_levels(self) -> LevelRunVo:
        """Evaluate every member who has a level or an investment, a batch per transaction,
        so a rolling window moving on lowers a level (when levels may drop)."""
        evaluated = changed = 0
        after = 0
        while batch := self._levels.members_to_evaluate(after, BATCH):
            changed += self._evaluate_batch(batch)
            evaluated += len(batch)
            after = batch[-1]
        return LevelRunVo(evaluated, changed)

    @transactional(propagation=Propagation.REQUIRES_NEW)
    def _evaluate_batch(self, member_ids: list[int]) -> int:
        changed = 0
        for member_id in member_ids:
            before = self._levels.get(member_id)
            was = before.level if before is not None else None
            if self.evaluate(member_id).level != was:
                changed += 1
        return changed

    def rule_for(self, invested: Decimal) -> LevelRule:
        """The level whose range holds ``invested``."""
        return next(rule for rule in self._rules() if rule.covers(invested))

    # -- helpers -----------------------------------------------------------------------
    def _rules(self) -> tuple[LevelRule, ...]:
        return self._settings.loyalty.levels

    def _rule(self, name: str) -> LevelRule:
        """The configured level of that name; a level no longer configured counts as the
        lowest until evaluated again."""
        return next((r for r in self._rules() if r.name == name), self._rules()[0])

    def _rank(self, rule: LevelRule) -> int:
        return self._rules().index(rule)

    def _since(self, now: dt.datetime) -> dt.datetime | None:
        loyalty = self._settings.loyalty
        if loyalty.level_basis == "CUMULATIVE":
            return None
        return now - dt.timedelta(days=loyalty.level_rolling_days)

    def _vo(
        self, member_id: int, rule: LevelRule, invested: Decimal, at: dt.datetime | None
    ) -> LevelVo:
        rules = self._rules()
        above = rules[self._rank(rule) + 1] if self._rank(rule) + 1 < len(rules) else None
        return LevelVo(
            member_id=member_id,
            level=rule.name,
            invested=invested,
            fee_discount=rule.fee_discount,
            monthly_coupons=rule.monthly_coupons,
            next_level=above.name if above else None,
            next_level_from=above.start if above else None,
            evaluated_at=at,
        )


class _Reevaluate(LifecycleListener):
    """An investment frozen: its investor's level, evaluated again in the same transaction."""

    def __init__(self, levels: Levels) -> None:
        self._levels = levels

    def investment_frozen(self, loan, investment) -> None:
        self._levels.evaluate(investment.investor_id)

    def investments_frozen(self, loan, investments) -> None:
        self._levels.evaluate_all([i.investor_id for i in investments])
