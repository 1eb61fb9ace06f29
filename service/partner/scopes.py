"""The scopes an operator grants a partner app: each partner operation needs one, named by
``@operation(partner_scope=...)`` in facade/partner/ (checked against these at start-up)."""

#: Joint registration of members the partner brings, attributed to it.
MEMBER_REGISTER = "MEMBER_REGISTER"
#: The listings a partner may show on its site.
LISTING_READ = "LISTING_READ"
#: The investments and receipts of members who authorised the partner.
MEMBER_INVESTMENT_READ = "MEMBER_INVESTMENT_READ"
#: The partner's attribution report.
REPORT_READ = "REPORT_READ"
#: The partner's callbacks: list them and ask for one again.
CALLBACK_MANAGE = "CALLBACK_MANAGE"

SCOPES: tuple[str, ...] = (
    MEMBER_REGISTER,
    LISTING_READ,
    MEMBER_INVESTMENT_READ,
    REPORT_READ,
    CALLBACK_MANAGE,
)
