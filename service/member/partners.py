"""The partner app a member authorised by registering through it (service/partner/members.py),
and the member revoking it."""

from dataclasses import dataclass
from datetime import datetime

from dao.partner import PartnerRepository
from dao.partner_member import PartnerMemberRepository
from service import errors
from service.errors import BusinessError
from service.member.base import MemberBase
from service.paging import PageVo, page_window
from service.security import Principal
from service.transaction import transactional


@dataclass(frozen=True)
class PartnerAuthorisationVo:
    app_id: str
    app_name: str
    authorised_at: datetime
    revoked_at: datetime | None


class PartnerAuthorisationOperations(MemberBase):
    @transactional(read_only=True)
    def list_partner_authorisations(
        self, page: int | None = None, page_size: int | None = None, caller: Principal = None
    ) -> PageVo[PartnerAuthorisationVo]:
        page, page_size = page_window(page, page_size, self._settings.api)
        row = PartnerMemberRepository(self.tx.session).of_member(caller.member_id)
        found = () if row is None else (self._vo(row),)
        return PageVo(found[(page - 1) * page_size :][:page_size], len(found), page, page_size)

    @transactional
    def revoke_partner_authorisation(self, app_id: str, caller: Principal) -> None:
        row = PartnerMemberRepository(self.tx.session).of_member(caller.member_id, lock=True)
        if row is None or PartnerRepository(self.tx.session).by_pk(row.app_id).app_id != app_id:
            raise BusinessError(errors.PARTNER_AUTHORISATION_NOT_FOUND)
        if row.revoked_at is None:
            row.revoked_at = self._clock()

    def _vo(self, row) -> PartnerAuthorisationVo:
        app = PartnerRepository(self.tx.session).by_pk(row.app_id)
        return PartnerAuthorisationVo(app.app_id, app.name, row.created_at, row.revoked_at)
