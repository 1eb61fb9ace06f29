"""Wire types shared by every facade: money, rates, paging, the fault and the auth header."""

from spyne import ComplexModel, Decimal, Integer32, Long, Unicode

COMMON_NS = "http://p2p.hry.com/facade/common"

#: A string that may span lines: TAB, LF and CR are allowed in it (every other string is a
#: single line). Use it as Unicode: ``MultilineText(max_len=2000)``.
MultilineText = Unicode.customize(multiline=True)

#: An amount of money in yuan, exact to the fen: at most 13 integer digits and 2 decimals.
Money = Decimal(total_digits=15, fraction_digits=2, ge=0, type_name="money")
Money.__namespace__ = COMMON_NS

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


#: The paging parameters every list operation takes.
PageParam = optional(Integer32(ge=1), "Page number, from 1 (default 1).")
PageSizeParam = optional(Integer32(ge=1), "Rows a page, 1 to the configured maximum.")


class BusinessFault(ComplexModel):
    """Why a call failed: a stable code from the error catalogue, a message and the request id."""

    __namespace__ = COMMON_NS
    _type_info = [
        ("code", required(Unicode, "Stable error code, e.g. LOAN_NOT_FOUND.")),
        ("message", required(Unicode, "What went wrong, for people.")),
        ("requestId", required(Unicode, "The request id to quote to support.")),
    ]


class AuthToken(ComplexModel):
    """SOAP header carrying the token returned by MemberFacade.login."""

    __namespace__ = COMMON_NS
    _type_info = [("token", required(Unicode, "The login token."))]


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
