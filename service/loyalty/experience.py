"""Experience gold (体验金): virtual money a member invests in the experience product, whose
interest is paid as real money at maturity.

Experience gold lives in its own tables (dao/loyalty.py: experience_account, experience_grant,
experience_investment), never in the ledger's accounts: it cannot be withdrawn, transferred or
invested in a listing, and no posting ever names it. It is granted once per source: on
registration (``loyalty.experience_on_registration`` to every investor, 0 for none) and by an
EXPERIENCE coupon (marketing's templates; :meth:`ExperienceGold.grant` with the coupon's id).

The experience product is dedicated and minimal: ``investExperience`` invests an amount of the
member's gold for ``loyalty.experience_term_days`` days at ``loyalty.experience_annual_rate``,
both fixed on the investment when it is made. The account's invested sum only grows (one
conditional update, so racing investments never spend the same gold): the virtual principal
never returns. At maturity the periodic job ``loyalty.mature_experience`` owes the member the
interest, amount x rate x days / 365 rounded down to the fen, as a marketing reward (kind
EXPERIENCE_INTEREST, service/marketing/rewards.py: paid from MARKETING_EXPENSE by a platform
transfer after the commit, once per investment).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from sqlalchemy.exc import IntegrityError

from dao.loyalty import ExperienceGrantEntity, ExperienceInvestmentEntity, LoyaltyRepository
from service import errors
from service.errors import BusinessError, invalid
from service.ledger import CENT
from service.transaction import RetryTransaction

DAYS_A_YEAR = Decimal(365)
PERCENT = Decimal(100)
REWARD_KIND = "EXPERIENCE_INTEREST"


def experience_interest(amount: Decimal, annual_rate: Decimal, days: int) -> Decimal:
    """amount x rate x days / 365, rounded down to the fen."""
    return (amount * annual_rate * days / DAYS_A_YEAR).quantize(CENT, rounding=ROUND_DOWN)


@dataclass(frozen=True)
class ExperienceBalanceVo:
    granted: Decimal
    invested: Decimal
    available: Decimal


@dataclass(frozen=True)
class ExperienceInvestmentVo:
    investment_id: int
    amount: Decimal
    annual_rate: Decimal  # percent
    term_days: int
    interest: Decimal
    status: str
    started_at: dt.datetime
    matures_at: dt.datetime
    paid_at: dt.datetime | None


def experience_vo(row: ExperienceInvestmentEntity) -> ExperienceInvestmentVo:
    return ExperienceInvestmentVo(
        investment_id=row.id,
        amount=row.amount,
        annual_rate=row.annual_rate * PERCENT,  # percent, as the contract's rates are
        term_days=row.term_days,
        interest=row.interest,
        status=row.status,
        started_at=row.started_at,
        matures_at=row.matures_at,
        paid_at=row.paid_at,
    )


class ExperienceGold:
    """Granting, investing and maturing experience gold in the caller's transaction."""

    def __init__(self, tx, settings, clock, rewards) -> None:
        self._settings = settings
        self._clock = clock
        self._repo = LoyaltyRepository(tx.session)
        self._rewards = rewards

    def grant(self, member_id: int, amount: Decimal, source: str, ref_id: int) -> None:
        """Grant ``amount`` of experience gold to ``member_id`` for ``source`` (REGISTRATION,
        COUPON) and its reference, once: the same grant again changes nothing."""
        if self._repo.grant(source, ref_id) is not None:
            return
        try:
            self._repo.add(
                ExperienceGrantEntity(
                    member_id=member_id,
                    source=source,
                    ref_id=ref_id,
                    amount=amount,
                    created_at=self._clock(),
                )
            )
            self._repo.add_granted(member_id, amount)
        except IntegrityError:  # granted or the account opened concurrently: read it again
            raise RetryTransaction(f"experience gold of {member_id} granted concurrently") from None

    def balance(self, member_id: int) -> ExperienceBalanceVo:
        account = self._repo.experience(member_id)
        if account is None:
            zero = Decimal("0.00")
            return ExperienceBalanceVo(zero, zero, zero)
        return ExperienceBalanceVo(
            account.granted, account.invested, account.granted - account.invested
        )

    def invest(self, member_id: int, amount: Decimal, request_no: str) -> ExperienceInvestmentVo:
        """Invest ``amount`` of the member's experience gold in the experience product;
        EXPERIENCE_INSUFFICIENT, investing nothing, beyond what is left."""
        if amount <= 0 or amount != amount.quantize(CENT):
            raise invalid("amount", "must be above 0 with at most 2 decimal places")
        if not self._repo.take_invested(member_id, amount):
            left = self.balance(member_id).available
            raise BusinessError(
                errors.EXPERIENCE_INSUFFICIENT, f"{left} of experience gold left to invest"
            )
        loyalty = self._settings.loyalty
        now = self._clock()
        row = self._repo.add(
            ExperienceInvestmentEntity(
                member_id=member_id,
                request_no=request_no,
                amount=amount,
                annual_rate=loyalty.experience_annual_rate,
                term_days=loyalty.experience_term_days,
                interest=experience_interest(
                    amount, loyalty.experience_annual_rate, loyalty.experience_term_days
                ),
                status="RUNNING",
                started_at=now,
                matures_at=now + dt.timedelta(days=loyalty.experience_term_days),
            )
        )
        return experience_vo(row)

    def mature(self, investment_id: int) -> bool:
        """Pay a matured RUNNING investment's interest (its row locked): the reward recorded
        once, the investment PAID; False when it was paid already or is not due."""
        row = self._repo.experience_investment_locked(investment_id)
        now = self._clock()
        if row is None or row.status != "RUNNING" or row.matures_at > now:
            return False
        if row.interest > 0:
            self._rewards.record(
                REWARD_KIND,
                ("experience_investment", row.id),
                row.member_id,
                row.interest,
                f"体验金收益 (体验金 {row.amount} 元, {row.term_days} 天)",
            )
        row.status = "PAID"
        row.paid_at = now
        return True
