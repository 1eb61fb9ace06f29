"""Every list an operation answers is one envelope: ``items``, ``total``, ``page``,
``pageSize`` (facade.types.page_fields), on every facade, on both protocols alike (the WSDL
and OpenAPI are written from the same declarations)."""

import pytest

from server.binding import Complex
from server.declared import discover_facades, field

#: Lists inside one thing's answer, not a list answer: a partner app's scopes and keys are
#: parts of the app (getPartnerApp answers one app; listPartnerApps pages them), a coupon
#: template's and a coupon's eligible terms and methods are parts of their rules, and the
#: coupons one issueCoupons call issued (one for each member it named, at most 100) are that
#: command's outcome, not a list to page through (listCoupons pages coupons); an app's
#: callback events and a delivery's attempts likewise.
PARTS_OF_ONE_THING = {
    ("PartnerAppDto", "scopes"),
    ("PartnerAppDto", "keys"),
    ("CouponTemplateDto", "terms"),
    ("CouponTemplateDto", "methods"),
    ("CouponDto", "terms"),
    ("CouponDto", "methods"),
    ("IssuedCouponsDto", "items"),
    # The events one partner app subscribes to, and the attempts of one callback delivery.
    ("CallbackEventsDto", "events"),
    ("PartnerCallbackDto", "attemptLog"),
}

ENVELOPE = ("items", "total", "page", "pageSize")

OPERATIONS = [(f, op) for f in discover_facades() for op in f.operations if op.returns]


def _lists(answer: Complex) -> list[str]:
    return [
        f.name
        for f in answer.fields
        if f.repeated and (answer.name, f.name) not in PARTS_OF_ONE_THING
    ]


@pytest.mark.parametrize(
    ("facade", "op"), OPERATIONS, ids=[f"{f.__name__}.{op.name}" for f, op in OPERATIONS]
)
def test_a_list_answer_is_the_envelope(facade, op) -> None:
    answer = field("return", op.returns).type
    if not isinstance(answer, Complex) or not _lists(answer):
        return
    assert _lists(answer) == ["items"], f"{op.name} answers a list not named items"
    by_name = answer.by_name
    assert [n for n in by_name if n in ENVELOPE] == list(ENVELOPE)
    assert all(by_name[n].required for n in ENVELOPE[1:])
    assert [by_name[n].type.kind for n in ENVELOPE[1:]] == ["long", "int", "int"]


def test_the_lists_that_were_not_envelopes_are_now() -> None:
    """The answers of release 1.0.0 that listed under their own names."""
    answers = {op.name: field("return", op.returns).type for _, op in OPERATIONS}
    for name in ("listCards", "getRepaymentSchedule", "previewRepaymentSchedule"):
        assert _lists(answers[name]) == ["items"], name
    (due,) = [op for _, op in OPERATIONS if op.name == "getRepaymentsDue"]
    assert {"page", "pageSize"} <= {p.name for p in due.params}
