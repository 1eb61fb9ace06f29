"""The listings a partner may show (PartnerFacade, scope LISTING_READ): RAISING listings only,
with their terms and progress and nothing about the borrower (no id, no description they
wrote, no audit remark)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from dao.p2p import LoanEntity, LoanRepository
from service import errors
from service.errors import BusinessError
from service.mapping import to_vo
from service.paging import PageVo, page_window
from service.transaction import transactional

#: The one status a partner sees: open for investment.
OPEN = ("RAISING",)


@dataclass(frozen=True)
class PartnerListingVo:
    loan_id: int
    title: str
    amount: Decimal
    raised: Decimal
    annual_rate: Decimal
    term_months: int
    repayment_method: str
    min_invest: Decimal
    max_invest_per_investor: Decimal | None
    raise_deadline: dt.datetime


def _vo(entity: LoanEntity) -> PartnerListingVo:
    return to_vo(PartnerListingVo, entity, loan_id=entity.id)


class PartnerListingService:
    def __init__(self, tx, settings):
        self.tx = tx
        self._settings = settings  # LiveSettings: the page sizes are read at call time
        self._loans = LoanRepository(tx.session)

    @transactional(read_only=True)
    def list_partner_listings(
        self, page: int | None = None, page_size: int | None = None
    ) -> PageVo[PartnerListingVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._loans.search(
            visible=OPEN, offset=(page - 1) * page_size, limit=page_size
        )
        return PageVo(tuple(map(_vo, rows)), total, page, page_size)

    @transactional(read_only=True)
    def get_partner_listing(self, loan_id: int) -> PartnerListingVo:
        loan = self._loans.get(loan_id)
        if loan is None or loan.status not in OPEN:
            raise BusinessError(errors.LOAN_NOT_FOUND, f"listing {loan_id} does not exist")
        return _vo(loan)
