"""Wire types shared by every facade: money, rates, paging, the fault and the auth header."""

from decimal import Decimal as Exact

from spyne import ComplexModel, Decimal, Integer32, Long, Unicode

from facade.contract import COMMON_NS

#: A string that may span lines: TAB, LF and CR are allowed in it (every other string is a
#: single line). Use it as Unicode: ``MultilineText(max_len=2000)``.
MultilineText = Unicode.customize(multiline=True)

#: An amount of money in yuan, exact to the fen: at most 15 digits, at most 2 of them after
#: the point (15 integer digits, 14 with one decimal, 13 with two).
Money = Decimal(total_digits=15, fraction_digits=2, ge=0, type_name="money")
Money.__namespace__ = COMMON_NS

#: An amount above 0: what is invested, paid, lent or asked for.
PositiveMoney = Decimal(
    total_digits=15, fraction_digits=2, ge=Exact("0.01"), type_name="positiveMoney"
)
PositiveMoney.__namespace__ = COMMON_NS

#: A yearly rate as a percentage ("12.5" is 12.5% a year), up to 4 decimal places.
Rate = Decimal(total_digits=7, fraction_digits=4, ge=0, type_name="rate")
Rate.__namespace__ = COMMON_NS


def required(t, doc: str):
    """A field that must be present and may not be nil (minOccurs=1, not nillable)."""
    return t.customize(min_occurs=1, nillable=False, doc=doc)


def optional(t, doc: str):
    """A field that may be left out."""
    return t.customize(min_occurs=0, nillable=False, doc=doc)


def repeated(model, doc: str):
    """A list field: the element repeated, zero or more times."""
    return model.customize(min_occurs=0, max_occurs="unbounded", nillable=False, doc=doc)


#: The largest page any list operation serves; the setting api.max_page_size may lower it,
#: never raise it (conf/settings.py refuses more), so the contract's maximum always holds.
MAX_PAGE_SIZE = 100

#: The paging parameters every list operation takes.
PageParam = optional(Integer32(ge=1), "Page number, from 1 (default 1).")
PageSizeParam = optional(
    Integer32(ge=1, le=MAX_PAGE_SIZE),
    f"Rows a page: 1 to the configured maximum (api.max_page_size, {MAX_PAGE_SIZE} unless "
    "lowered), default api.default_page_size; a larger one is VALIDATION_FAILED.",
)

#: A pattern for text that is not blank: some character other than space, tab, CR or LF,
#: written in what XSD, ECMA-262 and Python regular expressions read alike ([\s\S] is any
#: character in all three; service/text.py trims exactly these four).
NOT_BLANK = r"[\s\S]*[^ \t\n\r][\s\S]*"
#: The same for a single-line string (no TAB, LF or CR anywhere, as the binding checks).
NOT_BLANK_LINE = r"[^\t\n\r]*[^ \t\n\r][^\t\n\r]*"

#: The caller's number for a money-moving request: compared byte for byte, so it may not
#: begin or end with a blank (nor be blank); service/idempotency.py checks the same pattern.
RequestNo = required(
    Unicode(min_len=1, max_len=64, pattern=r"[^ \t\n\r]([^\t\n\r]*[^ \t\n\r])?"),
    "Your unique number for this request: 1 to 64 characters, not beginning or ending with "
    "a space, tab or line break, compared exactly (case and accents count). A repeat with "
    "the same number returns the first outcome and moves no money again.",
)


class BusinessFault(ComplexModel):
    """Why a call failed: a stable code from the error catalogue, a message, the request id
    and, when known, the detail."""

    __namespace__ = COMMON_NS
    _type_info = [
        ("code", required(Unicode, "Stable error code, e.g. LOAN_NOT_FOUND.")),
        (
            "message",
            required(
                Unicode,
                "What is wrong and what to do, one sentence, for people: in English, or in "
                "Chinese when the HTTP request's Accept-Language prefers it.",
            ),
        ),
        ("requestId", required(Unicode, "The request id to quote to support.")),
        (
            "detail",
            optional(
                Unicode,
                "What exactly, when known (the field and the rule, the id not found): "
                "English, for developers and support.",
            ),
        ),
    ]


class AuthToken(ComplexModel):
    """SOAP header carrying the token returned by MemberFacade.login."""

    __namespace__ = COMMON_NS
    _type_info = [("token", required(Unicode, "The login token."))]


class PartnerSignature(ComplexModel):
    """SOAP header of a partner app's signed call (README "Signed partner calls"): the same
    fields as the X-P2P-* headers of a REST call; the body's digest is of the exclusive XML
    canonical form of the soap:Body element."""

    __namespace__ = COMMON_NS
    _type_info = [
        ("appId", required(Unicode, "The app id the platform gave the app.")),
        ("keyId", required(Unicode, "The id of the app's key that signed.")),
        ("timestamp", required(Unicode, "Seconds since 1970-01-01T00:00:00Z, in digits.")),
        ("nonce", required(Unicode, "16 to 64 letters, digits, '-' or '_'; new every call.")),
        ("signature", required(Unicode, "Base64 of the signature of the canonical string.")),
        (
            "idempotencyKey",
            optional(
                Unicode,
                "The call's Idempotency-Key (1 to 64 letters, digits, '-' or '_'): needed by a "
                "partner operation that writes; a repeat gets the first answer.",
            ),
        ),
    ]


PAGE_TOTAL = required(Long(ge=0), "Rows that match, on all pages.")
PAGE_NUMBER = required(Integer32(ge=1), "This page's number.")
PAGE_SIZE = required(Integer32(ge=1), "Rows a page.")


def page_fields(item, doc: str) -> list:
    """The fields of a page DTO: its items, then total, page and pageSize."""
    return [
        ("items", repeated(item, doc)),
        ("total", PAGE_TOTAL),
        ("page", PAGE_NUMBER),
        ("pageSize", PAGE_SIZE),
    ]
