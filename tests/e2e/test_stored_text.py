"""Text stored before the text rules is read over both protocols, on every engine: written here
behind the server's back, as a row from before the rules would hold it. What XML cannot carry
arrives as U+FFFD, alike on SOAP and REST; everything else arrives as stored; no response
fails, and none after a commit."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.slow

#: C0 controls and U+FFFE/U+FFFF (XML cannot carry them), then what it carries though input
#: now refuses it: a C1 control, noncharacters, a tab and a line break.
STORED = "a\x01b\x08\x0b\x0c\x1f\ufffe\uffff|\x85\ufdd0\U0001fffe\tz\n"
SENT = "a\ufffdb" + "\ufffd" * 6 + "|\x85\ufdd0\U0001fffe\tz\n"


def write(server, sql: str, **values) -> None:
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            assert conn.execute(text(sql), values).rowcount == 1
    finally:
        engine.dispose()


def test_a_stored_listing_is_read_and_audited_on_both_protocols(
    server, api, soap, operator, loan_terms
) -> None:
    r = api.call("publishLoan", token=operator.token, json_body=loan_terms())
    assert r.status_code == 201, r.text
    loan_id = r.json()["loanId"]
    write(
        server,
        "UPDATE loan SET title = :t, description = :t WHERE id = :id",
        t=STORED,
        id=loan_id,
    )

    # The audit commits and its answer carries the stored text: it must not fail after that.
    audited = soap.loan.service.auditLoan(
        loanId=loan_id, request={"approve": True}, **soap.auth(operator.token)
    )
    assert (audited.status, audited.title, audited.description) == ("RAISING", SENT, SENT)

    write(server, "UPDATE loan SET reject_reason = :t WHERE id = :id", t=STORED, id=loan_id)
    r = api.call("getLoan", token=operator.token, loanId=loan_id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["title"], body["description"], body["rejectReason"]) == (SENT, SENT, SENT)
    loan = soap.loan.service.getLoan(loanId=loan_id, **soap.auth(operator.token))
    assert (loan.title, loan.description, loan.rejectReason) == (SENT, SENT, SENT)

    page = {"status": "RAISING", "page": 1, "pageSize": 50}
    r = api.call("listLoans", token=operator.token, params=page)
    assert r.status_code == 200, r.text
    assert [x["title"] for x in r.json()["items"] if x["loanId"] == loan_id] == [SENT]
    listed = soap.loan.service.listLoans(**page, **soap.auth(operator.token))
    assert [x.title for x in listed["items"] if x.loanId == loan_id] == [SENT]


def test_a_stored_bank_name_is_read_on_both_protocols(server, api, soap, members) -> None:
    member = members("INVESTOR")
    write(server, "UPDATE bank_card SET bank_name = :b WHERE id = :id", b=STORED, id=member.card_id)
    r = api.call("listCards", token=member.token)
    assert r.status_code == 200, r.text
    assert [c["bankName"] for c in r.json()["items"] if c["cardId"] == member.card_id] == [SENT]
    cards = soap.member.service.listCards(**soap.auth(member.token)).items
    assert [c.bankName for c in cards if c.cardId == member.card_id] == [SENT]
