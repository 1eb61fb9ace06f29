"""Members' accounts: their balances and the ledger entries behind them."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dao.ledger import LedgerRepository
from service.ledger import Ledger
from service.paging import PageVo, page_window
from service.security import Principal
from service.transaction import transactional


@dataclass(frozen=True)
class AccountVo:
    member_id: int
    available: Decimal
    frozen: Decimal
    total: Decimal


@dataclass(frozen=True)
class PostingVo:
    posting_id: int
    business_type: str
    ref_type: str
    ref_id: int
    bucket: str
    direction: str
    amount: Decimal
    balance_effect: Decimal
    created_at: datetime


class AccountService:
    """Read-only views of the caller's own account."""

    def __init__(self, tx, settings):
        self.tx = tx
        self._settings = settings  # LiveSettings: api.* is reloadable
        self._ledger = Ledger(tx)
        self._repo = LedgerRepository(tx.session)

    @transactional(read_only=True)
    def get_account(self, caller: Principal) -> AccountVo:
        account = self._ledger.account_of(caller.member_id)
        return AccountVo(
            caller.member_id, account.available, account.frozen, account.available + account.frozen
        )

    @transactional(read_only=True)
    def list_postings(
        self, caller: Principal, page: int | None = None, page_size: int | None = None
    ) -> PageVo[PostingVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        account = self._ledger.account_of(caller.member_id)
        rows, total = self._repo.entries_of_account(
            account.id, offset=(page - 1) * page_size, limit=page_size
        )
        items = tuple(
            PostingVo(
                posting_id=posting.id,
                business_type=posting.business_type,
                ref_type=posting.ref_type,
                ref_id=posting.ref_id,
                bucket=entry.bucket,
                direction=entry.direction,
                amount=entry.amount,
                # A member's account is credit-normal: a credit raises the bucket.
                balance_effect=entry.amount
                if entry.direction == account.normal_side
                else -entry.amount,
                created_at=posting.created_at,
            )
            for entry, posting in rows
        )
        return PageVo(items, total, page, page_size)
