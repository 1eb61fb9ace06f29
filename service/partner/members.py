"""Members a partner app brings (PartnerFacade, scopes MEMBER_REGISTER and
MEMBER_INVESTMENT_READ): joint registration, and the investments and receipts of the members
who authorised the app.

Joint registration signs an INVESTOR up with the mobile number and the REGISTER code the
platform sent to it (MemberFacade.sendVerificationCode, asked by the member or the partner's
page); the member is attributed to the app for good, and authorises it to read their
investments and receipts until they revoke it (MemberFacade.revokePartnerAuthorisation). The
member sets a password (resetPassword) and completes onboarding on the platform. A member
who never authorised the app, revoked it, or does not exist is PARTNER_MEMBER_NOT_AUTHORISED,
alike, so an app learns nothing of other members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from dao.member import MemberEntity
from dao.partner_member import PartnerMemberEntity
from service import errors
from service.errors import BusinessError
from service.paging import PageVo, page_window
from service.partner.auth import PartnerPrincipal
from service.partner.base import PartnerBase
from service.pii import mask_mobile
from service.transaction import transactional

REGISTER_OPERATION = "registerPartnerMember"


@dataclass(frozen=True)
class PartnerMemberRequest:
    mobile: str
    verification_code: str


@dataclass(frozen=True)
class PartnerMemberVo:
    member_id: int
    mobile: str  # masked
    created_at: datetime


@dataclass(frozen=True)
class PartnerInvestmentVo:
    investment_id: int
    loan_id: int
    amount: Decimal
    status: str
    created_at: datetime


@dataclass(frozen=True)
class PartnerReceiptVo:
    loan_id: int
    investment_id: int
    period: int
    due_date: date
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    fee: Decimal  # the interest service fee the platform kept of it
    status: str
    received_at: datetime | None


class PartnerMemberService(PartnerBase):
    def register_partner_member(
        self, request: PartnerMemberRequest, caller: PartnerPrincipal
    ) -> PartnerMemberVo:
        first = self._first_answer(caller)
        if first is not None:
            return first
        app_pk = self._app_pk(caller)
        made: list[PartnerMemberVo] = []

        def attribute(member: MemberEntity) -> None:
            # In the registration's transaction: the attribution, which also authorises the
            # app, and the key with its answer, before the lifecycle tells the callbacks.
            now = self._clock()
            self._partner_members.add(
                PartnerMemberEntity(app_id=app_pk, member_id=member.id, created_at=now)
            )
            vo = PartnerMemberVo(member.id, mask_mobile(member.mobile), member.created_at or now)
            self._requests.record(app_pk, caller, REGISTER_OPERATION, vo, now)
            made.append(vo)

        self._registration.register_attributed(request.mobile, request.verification_code, attribute)
        return made[-1]

    @transactional(read_only=True)
    def _first_answer(self, caller: PartnerPrincipal) -> PartnerMemberVo | None:
        app = self._app_of(caller)
        return self._requests.repeat(app.id, caller, REGISTER_OPERATION, PartnerMemberVo)

    @transactional(read_only=True)
    def _app_pk(self, caller: PartnerPrincipal) -> int:
        return self._app_of(caller).id

    @transactional(read_only=True)
    def list_partner_member_investments(
        self,
        member_id: int,
        page: int | None = None,
        page_size: int | None = None,
        caller: PartnerPrincipal = None,
    ) -> PageVo[PartnerInvestmentVo]:
        self._check_authorised(member_id, caller)
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._investments.page_of_investor(
            member_id, offset=(page - 1) * page_size, limit=page_size
        )
        items = tuple(
            PartnerInvestmentVo(i.id, i.loan_id, i.amount, i.status, i.created_at) for i in rows
        )
        return PageVo(items, total, page, page_size)

    @transactional(read_only=True)
    def list_partner_member_receipts(
        self,
        member_id: int,
        page: int | None = None,
        page_size: int | None = None,
        caller: PartnerPrincipal = None,
    ) -> PageVo[PartnerReceiptVo]:
        self._check_authorised(member_id, caller)
        page, page_size = page_window(page, page_size, self._settings.api)
        rows, total = self._plans.receipts_of_investor(
            member_id, None, offset=(page - 1) * page_size, limit=page_size
        )
        items = tuple(
            PartnerReceiptVo(
                r.loan_id,
                r.investment_id,
                r.period,
                due,
                r.principal,
                r.interest,
                r.penalty,
                r.fee,
                r.status,
                r.received_at,
            )
            for r, due in rows
        )
        return PageVo(items, total, page, page_size)

    def _check_authorised(self, member_id: int, caller: PartnerPrincipal) -> None:
        if not self._partner_members.authorised(self._app_of(caller).id, member_id):
            raise BusinessError(errors.PARTNER_MEMBER_NOT_AUTHORISED)
