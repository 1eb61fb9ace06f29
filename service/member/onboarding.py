"""The gate before money moves: a member must have verified their real name and opened a fund
account at the depository before they may invest, borrow, recharge or withdraw.

Other services (payments, investing, listings) call ``require_onboarded`` on the member row they
have already loaded, so the rule is written once and its errors read the same everywhere.
"""

from dao.member import MemberEntity
from service import errors
from service.errors import BusinessError


def require_onboarded(member: MemberEntity, *, who: str = "the member") -> None:
    """Raise IDENTITY_NOT_VERIFIED, then FUND_ACCOUNT_REQUIRED, unless `member` may move money.

    ``who`` names the role in the message ("the borrower", "the investor"); the message never
    carries personal data, not even the member's mobile number.
    """
    if member.identity_verified_at is None:
        raise BusinessError(
            errors.IDENTITY_NOT_VERIFIED, f"{who} must verify their real name first"
        )
    if member.fund_account_no is None:
        raise BusinessError(
            errors.FUND_ACCOUNT_REQUIRED, f"{who} must open a fund account at the depository first"
        )
