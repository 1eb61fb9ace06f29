"""The double-entry ledger: the only way money moves.

A posting is a list of legs; debits must equal credits, every amount is positive with at most
two decimals, and no balance may go below zero. A posting is set-based, however many legs it
has (a repayment has one per investor): the legs are summed per account and bucket; when any
sum is negative and the posting changes more than one account, the posting's accounts are read
with their rows locked (SELECT ... FOR UPDATE, in account-id order) and the posting is refused
whole (INSUFFICIENT_FUNDS) before anything is written if a bucket would go below zero (one
account's conditional UPDATE below is all or nothing by itself: an investment's freeze needs no
such read); then the balances change in one UPDATE per 500 accounts (a CASE on the account id
per bucket), itself conditional on no bucket going below zero, and the entries are written in
one multi-row INSERT. Accounts are locked and changed in account-id order (the UPDATEs too,
chunk after chunk), so two postings over the same accounts lock them in the same order.
Accounts already loaded in the session have their balances expired, so a later read in the
transaction sees the new ones.

The money at the depository bank has two mirrors: CLEARING, the members' sub-accounts (it
equals the members' total, available + frozen, always), and PLATFORM_FUNDS, the platform's own
account there. So every posting that moves money between a member and the platform's own
books moves it between the two mirrors too (``Ledger.earned``).
"""

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from dao.ledger import AccountEntity, LedgerRepository
from service import errors
from service.errors import BusinessError

AVAILABLE = "AVAILABLE"
FROZEN = "FROZEN"
DEBIT = "D"
CREDIT = "C"
CENT = Decimal("0.01")
#: The platform's accounts the money it earns moves between (dao/ledger.py).
FEE_INCOME, PLATFORM_FUNDS, CLEARING = "FEE_INCOME", "PLATFORM_FUNDS", "CLEARING"


@dataclass(frozen=True)
class Leg:
    account: AccountEntity
    bucket: str
    direction: str
    amount: Decimal


def debit(account: AccountEntity, bucket: str, amount: Decimal) -> Leg:
    return Leg(account, bucket, DEBIT, amount)


def credit(account: AccountEntity, bucket: str, amount: Decimal) -> Leg:
    return Leg(account, bucket, CREDIT, amount)


class UnbalancedPostingError(ValueError):
    """A programming error: a posting whose debits and credits differ."""


class Ledger:
    def __init__(self, tx):
        self._repo = LedgerRepository(tx.session)

    def account_of(self, member_id: int, *, lock: bool = False) -> AccountEntity:
        """The member's account; ``lock`` holds its row until the transaction ends, so the
        member's concurrent transactions that lock it too run one after another."""
        account = self._repo.account_of_member(member_id, lock=lock)
        if account is None:
            raise BusinessError(errors.MEMBER_NOT_FOUND, f"member {member_id} has no account")
        return account

    def platform(self, code: str) -> AccountEntity:
        return self._repo.platform_account(code)

    def earned(self, amount: Decimal) -> list[Leg]:
        """The legs by which the platform earns ``amount`` out of a member's money (a service
        fee, a penalty it keeps), the member's debit being the caller's: credit FEE_INCOME and,
        as the bank moves the money from the member's sub-account into the platform's own
        account, debit PLATFORM_FUNDS and credit CLEARING."""
        return [
            credit(self.platform(FEE_INCOME), AVAILABLE, amount),
            debit(self.platform(PLATFORM_FUNDS), AVAILABLE, amount),
            credit(self.platform(CLEARING), AVAILABLE, amount),
        ]

    def open_account(self, member_id: int) -> AccountEntity:
        return self._repo.add_account(AccountEntity(member_id=member_id, normal_side=CREDIT))

    def accounts_of(self, member_ids: Collection[int]) -> dict[int, AccountEntity]:
        """Member id -> account of those of ``member_ids`` that have one, every row locked
        (in account-id order) until the transaction ends."""
        return self._repo.accounts_of_members(member_ids)

    def post(
        self,
        business_type: str,
        ref: tuple[str, int],
        legs: list[Leg],
        request_no: str | None = None,
    ) -> None:
        """Record one balanced posting and move the balances, all or nothing (the caller's
        transaction). INSUFFICIENT_FUNDS when a bucket would go below zero, with nothing
        written (module docstring)."""
        self.post_all(business_type, [(ref, legs, request_no)])

    def post_all(
        self,
        business_type: str,
        postings: Sequence[tuple[tuple[str, int], list[Leg], str | None]],
    ) -> None:
        """Balanced postings of one business type, a (ref, legs, request number) each, moved
        as ``post`` moves one and all or nothing together: the balances by the legs of all
        summed per account and bucket, the postings and their entries by one INSERT each."""
        kept = [(ref, [leg for leg in legs if leg.amount != 0], no) for ref, legs, no in postings]
        sums: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        for _, legs, _ in kept:
            _check_balanced(legs)
            for leg in legs:
                sign = 1 if leg.direction == leg.account.normal_side else -1
                sums[(leg.account.id, leg.bucket)] += sign * leg.amount
        deltas: dict[int, dict[str, Decimal]] = defaultdict(dict)
        for (account_id, bucket), delta in sums.items():
            if delta:
                deltas[account_id][bucket] = delta
        if len(deltas) > 1 and any(d < 0 for d in sums.values()):
            balances = self._repo.balances_for_update(sorted(deltas))
            for account_id in sorted(deltas):
                for bucket, balance in zip((AVAILABLE, FROZEN), balances[account_id], strict=True):
                    if balance + deltas[account_id].get(bucket, 0) < 0:
                        raise insufficient(bucket)
        if not self._repo.change_balances(deltas):  # its own guard (module docstring)
            down = {bucket for (_, bucket), delta in sums.items() if delta < 0}
            raise insufficient(AVAILABLE if AVAILABLE in down else FROZEN)
        self._repo.add_postings(
            [
                (
                    {
                        "business_type": business_type,
                        "ref_type": ref[0],
                        "ref_id": ref[1],
                        "request_no": request_no,
                    },
                    [
                        {
                            "account_id": leg.account.id,
                            "bucket": leg.bucket,
                            "direction": leg.direction,
                            "amount": leg.amount,
                        }
                        for leg in legs
                    ],
                )
                for ref, legs, request_no in kept
            ]
        )


def insufficient(bucket: str) -> BusinessError:
    """INSUFFICIENT_FUNDS: ``bucket`` of an account would go below zero."""
    return BusinessError(
        errors.INSUFFICIENT_FUNDS,
        "available balance is too low" if bucket == AVAILABLE else "frozen balance is too low",
    )


def _check_balanced(legs: list[Leg]) -> None:
    if len(legs) < 2:
        raise UnbalancedPostingError("a posting needs at least two legs")
    totals = {DEBIT: Decimal(0), CREDIT: Decimal(0)}
    for leg in legs:
        if leg.amount < 0 or leg.amount != leg.amount.quantize(CENT):
            raise UnbalancedPostingError(f"bad amount {leg.amount}")
        if leg.bucket not in (AVAILABLE, FROZEN) or leg.direction not in totals:
            raise UnbalancedPostingError(f"bad leg {leg}")
        totals[leg.direction] += leg.amount
    if totals[DEBIT] != totals[CREDIT]:
        raise UnbalancedPostingError(f"debits {totals[DEBIT]} != credits {totals[CREDIT]}")
