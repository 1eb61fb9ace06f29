"""Rewards: money the platform owes a member for marketing, recorded once and paid once.

:meth:`Rewards.record` writes the reward (unique per kind, source and member: recording it
again, a repeated event or a retried transaction, finds the first) and, in the same
transaction, the outbox job ``marketing.pay`` that pays it after the commit, so a slow bank
never holds up what earned it. :meth:`Rewards.pay` pays it by a platform transfer
(service/treasury.py PlatformTransfers, purpose MARKETING: MARKETING_EXPENSE debited, the
member credited, the posting's business type ``MKT_<kind>``), under the request number
``MR<reward id>-<attempt>`` in the scope ``marketing``: a job run twice finds the first
transfer and moves nothing more.

A reward is PENDING until paid; PAYING while its transfer waits for the bank; PAID once the
transfer SUCCEEDED; CANCELLED when what earned it was undone before it was paid. When the
platform's own account cannot cover it, or the member cannot be paid yet (not onboarded), it
stays PENDING with ``waiting_reason`` for operators to see; a transfer the bank FAILED makes
it PENDING again under the next attempt's number. The periodic job ``marketing.pay_due``
takes every reward not paid yet again, so none is lost.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from dao.marketing import MAX_REASON, MarketingRepository, RewardEntity
from dao.member import MemberRepository
from dao.treasury import PlatformTransferRepository
from service.errors import invalid
from service.jobs import Outbox
from service.ledger import CENT, PLATFORM_FUNDS, Ledger
from service.text import shown
from service.transaction import RetryTransaction
from service.treasury import PlatformTransfers

PAY_JOB = "marketing.pay"
#: The request number scope of marketing's platform transfers.
SCOPE = "marketing"


def request_no(reward: RewardEntity) -> str:
    return f"MR{reward.id}-{reward.attempt}"


def business_type(kind: str) -> str:
    """The posting's business type of a reward of ``kind`` (at most 32 characters)."""
    return f"MKT_{kind}"


class Rewards:
    """Recording and paying rewards in the caller's transaction (never opens or commits
    one). Other modules' rewards (referrals, experience interest) are recorded through it."""

    def __init__(self, tx, settings, clock, gateway, bank, outbox: Outbox):
        self.tx = tx
        self._clock = clock
        self._outbox = outbox
        self._repo = MarketingRepository(tx.session)
        self._members = MemberRepository(tx.session)
        self._transfers = PlatformTransferRepository(tx.session)
        self._ledger = Ledger(tx)
        self._platform = PlatformTransfers(tx, settings, clock, gateway, bank)

    def record(
        self,
        kind: str,
        source: tuple[str, int],
        member_id: int,
        amount: Decimal,
        memo: str,
        campaign_id: int | None = None,
        coupon_id: int | None = None,
    ) -> RewardEntity:
        """Owe ``member_id`` ``amount`` for ``kind`` (an identifier of at most 24 characters:
        CASH_COUPON, RATE_BOOST, REFERRAL, ...) earned by ``source`` (what earned it, e.g.
        ("investment", 7)), ``memo`` telling the member why; paid after the commit. Once per
        (kind, source, member): the same again returns the first reward."""
        if amount <= 0 or amount != amount.quantize(CENT):
            raise invalid("amount", "must be above 0 with at most 2 decimal places")
        if not memo or len(memo) > MAX_REASON or len(business_type(kind)) > 32:
            raise ValueError("a reward needs a memo of at most 200 characters and a short kind")
        first = self._repo.reward_of(kind, source, member_id)
        if first is not None:
            return first
        now = self._clock()
        try:
            reward = self._repo.add(
                RewardEntity(
                    kind=kind,
                    source_type=source[0],
                    source_id=source[1],
                    member_id=member_id,
                    campaign_id=campaign_id,
                    coupon_id=coupon_id,
                    amount=amount,
                    memo=memo,
                    status="PENDING",
                    attempt=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        except IntegrityError as e:  # recorded concurrently: the retry finds it
            raise RetryTransaction("reward recorded concurrently") from e
        self._outbox.add(PAY_JOB, {"reward_id": reward.id})
        return reward

    def cancel(self, kind: str, source: tuple[str, int], member_id: int) -> RewardEntity | None:
        """What earned the reward was undone: CANCELLED if not paid nor being paid yet; a
        reward already PAID or PAYING is left as it is (returned, for the caller to say so)."""
        reward = self._repo.reward_of(kind, source, member_id)
        if reward is None:
            return None
        reward = self._repo.reward_for_update(reward.id)
        if reward.status == "PENDING":
            reward.status = "CANCELLED"
            reward.updated_at = self._clock()
            self.tx.session().flush()
        return reward

    def pay(self, reward_id: int) -> RewardEntity | None:
        """Pay the reward if it is not paid yet (its row locked): a transfer under its current
        attempt's number; the outcome as the module docstring says."""
        reward = self._repo.reward_for_update(reward_id)
        if reward is None or reward.status in ("PAID", "CANCELLED"):
            return reward
        if reward.status == "PAYING" and not self._settle(reward):
            return reward
        why = self._cannot_pay(reward)
        if why is not None:
            self._wait(reward, why)
            return reward
        transfer = self._platform.pay(
            reward.member_id,
            reward.amount,
            "MARKETING",
            reward.memo,
            request_no(reward),
            SCOPE,
            None,
            business_type=business_type(reward.kind),
        )
        reward.transfer_id = transfer.id
        reward.status = "PAYING"
        self._settle(reward)
        return reward

    def _settle(self, reward: RewardEntity) -> bool:
        """Follow a PAYING reward's transfer: PAID on SUCCESS, PENDING under the next attempt
        on FAILED (True: pay again), unchanged while it is PENDING."""
        transfer = self._transfers.get(reward.transfer_id)
        now = self._clock()
        if transfer.status == "PENDING":
            reward.updated_at = now
            self.tx.session().flush()
            return False
        if transfer.status == "SUCCESS":
            reward.status = "PAID"
            reward.paid_at = now
            reward.waiting_reason = None
        else:
            reward.status = "PENDING"
            reward.attempt += 1
            reward.waiting_reason = f"transfer {transfer.order_no} failed"[:MAX_REASON]
        reward.updated_at = now
        self.tx.session().flush()
        return reward.status == "PENDING"

    def _cannot_pay(self, reward: RewardEntity) -> str | None:
        member = self._members.get(reward.member_id)
        if member.identity_verified_at is None or member.fund_account_no is None:
            return "the member has not verified their name or opened a fund account yet"
        available = self._ledger.platform(PLATFORM_FUNDS).available
        if available < reward.amount:
            return f"the platform's own account has {shown(available)} available"
        return None

    def _wait(self, reward: RewardEntity, why: str) -> None:
        reward.waiting_reason = why[:MAX_REASON]
        reward.updated_at = self._clock()
        self.tx.session().flush()
