"""Partner operations through the platform's own application (SQLite and MariaDB): joint
registration with its Idempotency-Key, authorised reads and the member's revocation, the
attribution report, and callbacks delivered to a real HTTP receiver that fails, times out
and answers slowly, retried on the published schedule, replayed, and never written for an
event that rolled back."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import ROUND_DOWN
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from p2p_partner import HmacKey, PartnerClient, verify_callback
from sqlalchemy import text
from werkzeug.test import Client

from server.app import Application, Platform
from service.businessday import business_day
from service.errors import BusinessError
from service.lifecycle import LifecycleListener
from service.member import MemberService
from service.p2p import AuditRequest, LoanService
from service.partner import PartnerAdminService, PartnerAppRequest
from service.partner.api import PartnerService
from service.partner.auth import PartnerPrincipal
from service.partner.callbacks import CallbackEventsRequest
from service.partner.retention import PurgedVo
from service.payment import PaymentService
from service.security import Principal
from tests.callbackreceiver import ACK, FAIL, SLOW, STALL, receiving
from tests.integration.service.support import onboard, race, send_code

MEMBERS = "/api/v1/partner/members"
ALL_SCOPES = (
    "MEMBER_REGISTER",
    "LISTING_READ",
    "MEMBER_INVESTMENT_READ",
    "REPORT_READ",
    "CALLBACK_MANAGE",
)
EVENTS = ["MEMBER_REGISTERED", "INVESTMENT_CONFIRMED", "LISTING_FULL", "REPAYMENT_PAID"]
#: Short limits so a stalled receiver costs the test seconds, not the default's.
FAST = {
    "partner.callback_retry_seconds": [1, 2],
    "partner.callback_connect_timeout_seconds": 2,
    "partner.callback_read_timeout_seconds": 2,
}


class Partner:
    """A partner app calling one platform's WSGI application with the SDK's signatures."""

    def __init__(self, platform: Platform, app_id: str, key: HmacKey, clock):
        self.app_id, self.key = app_id, key
        self.web = Client(Application(platform))
        self.sdk = PartnerClient("http://localhost", app_id, key, clock=lambda: clock().timestamp())

    def call(self, method: str, path: str, body=None, key: str | None = None, query: str = ""):
        raw = b"" if body is None else json.dumps(body).encode()
        headers = self.sdk.signature_headers(method, path, query, raw)
        if key is not None:
            headers["Idempotency-Key"] = key
        if body is not None:
            headers["Content-Type"] = "application/json"
        answer = self.web.open(
            path, method=method, data=raw or None, query_string=query, headers=headers
        )
        self.sdk.verify_answer(
            SimpleNamespace(
                headers=answer.headers, status_code=answer.status_code, content=answer.get_data()
            ),
            headers["X-P2P-Nonce"],
        )
        return answer


@pytest.fixture
def partner_app(operator: Principal, clock):
    def make(platform: Platform, callback_url: str | None = None, events=None) -> Partner:
        """An app with a key, subscribed to ``events`` (all of them, or none without a
        callback URL)."""
        if events is None:
            events = EVENTS if callback_url else ()
        admin = platform.service(PartnerAdminService)
        request = PartnerAppRequest(
            f"app {uuid.uuid4().hex}", "c", callback_url, list(ALL_SCOPES), 6000, 1000
        )
        app_id = admin.register_partner_app(request, operator).app_id
        issued = admin.issue_partner_key(app_id, "k1", "HMAC_SHA256", operator)
        partner = Partner(platform, app_id, HmacKey("k1", issued.secret), clock)
        answer = partner.call(
            "PUT", "/api/v1/partner/callback-events", {"events": list(events)}, key="events-1"
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return partner

    return make


def rows(sql, query: str, **params) -> list[tuple]:
    with sql.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query), params)]


def test_joint_registration_once_per_key_then_authorised_reads_until_revoked(
    platform, partner_app, clock, sql
) -> None:
    partner, other = partner_app(platform), partner_app(platform)
    code = send_code(platform, "13900000071")
    body = {"mobile": "13900000071", "verificationCode": code}

    missing = partner.call("POST", MEMBERS, body)
    assert (missing.status_code, missing.json["code"]) == (400, "PARTNER_IDEMPOTENCY_KEY_MISSING")
    first = partner.call("POST", MEMBERS, body, key="reg-71")
    assert first.status_code == 201, first.get_data(as_text=True)
    member_id = first.json["memberId"]
    assert first.json["mobile"] == "139****0071"
    again = partner.call("POST", MEMBERS, body, key="reg-71")  # the code is spent by now
    assert (again.status_code, again.json) == (201, first.json)
    other_body = {"mobile": "13900000072", "verificationCode": code}
    reused = partner.call("POST", MEMBERS, other_body, key="reg-71")
    assert (reused.status_code, reused.json["code"]) == (409, "PARTNER_IDEMPOTENCY_KEY_REUSED")
    assert rows(sql, "SELECT COUNT(*) FROM member WHERE mobile = '13900000071'") == [(1,)]
    assert rows(sql, "SELECT member_id, revoked_at FROM partner_member") == [(member_id, None)]

    investments = f"{MEMBERS}/{member_id}/investments"
    page = partner.call("GET", investments)
    assert page.status_code == 200, page.get_data(as_text=True)
    assert (page.json["items"], page.json["total"]) == ([], 0)
    refused = other.call("GET", investments)
    assert (refused.status_code, refused.json["code"]) == (403, "PARTNER_MEMBER_NOT_AUTHORISED")
    nobody = partner.call("GET", f"{MEMBERS}/999999/receipts")
    assert (nobody.status_code, nobody.json["code"]) == (403, "PARTNER_MEMBER_NOT_AUTHORISED")

    members = platform.service(MemberService)
    me = Principal(member_id=member_id, role="INVESTOR")
    [mine] = members.list_partner_authorisations(caller=me).items
    assert (mine.app_id, mine.revoked_at) == (partner.app_id, None)
    with pytest.raises(BusinessError) as refused_revoke:
        members.revoke_partner_authorisation(other.app_id, me)
    assert refused_revoke.value.code == "PARTNER_AUTHORISATION_NOT_FOUND"
    members.revoke_partner_authorisation(partner.app_id, me)
    members.revoke_partner_authorisation(partner.app_id, me)  # again: nothing changes
    [revoked] = members.list_partner_authorisations(caller=me).items
    assert revoked.revoked_at is not None
    gone = partner.call("GET", investments)
    assert (gone.status_code, gone.json["code"]) == (403, "PARTNER_MEMBER_NOT_AUTHORISED")

    today = business_day(clock()).isoformat()
    report = partner.call("GET", "/api/v1/partner/report", query=f"fromDate={today}&toDate={today}")
    assert report.status_code == 200, report.get_data(as_text=True)
    assert report.json["items"] == [
        {"day": today, "members": 1, "investments": 0, "amount": "0.00"}
    ]


def test_the_report_counts_business_days_in_asia_shanghai(platform, partner_app, clock) -> None:
    """Members registered a minute either side of midnight in Asia/Shanghai (16:00 UTC) fall
    on two business days, though both are on one UTC day."""
    partner = partner_app(platform)
    for n, at in (
        (73, dt.datetime(2026, 6, 1, 15, 59, tzinfo=dt.UTC)),
        (74, dt.datetime(2026, 6, 1, 16, 0, tzinfo=dt.UTC)),
    ):
        clock.now = at
        mobile = f"139000000{n}"
        body = {"mobile": mobile, "verificationCode": send_code(platform, mobile)}
        made = partner.call("POST", MEMBERS, body, key=f"reg-{n}")
        assert made.status_code == 201, made.get_data(as_text=True)

    report = partner.call(
        "GET", "/api/v1/partner/report", query="fromDate=2026-06-01&toDate=2026-06-02"
    )
    assert report.status_code == 200, report.get_data(as_text=True)
    assert [(d["day"], d["members"]) for d in report.json["items"]] == [
        ("2026-06-01", 1),
        ("2026-06-02", 1),
    ]


def test_callbacks_are_delivered_once_acknowledged_through_failure_timeout_and_slowness(
    make_platform, partner_app, clock, sql, identities, loan_request, operator, borrower
) -> None:
    platform = make_platform(**FAST, **{"repayment.interest_fee_rate": "0.1000"})
    with receiving() as receiver:
        partner = partner_app(platform, receiver.url)
        receiver.script = [FAIL, STALL, SLOW]
        code = send_code(platform, "13900000081")
        body = {"mobile": "13900000081", "verificationCode": code}
        registered = partner.call("POST", MEMBERS, body, key="reg-81")
        assert registered.status_code == 201
        member_id = registered.json["memberId"]

        [(cb_id, status, attempts, event_id)] = rows(
            sql, "SELECT id, status, attempts, event_id FROM partner_callback"
        )
        assert (status, attempts) == ("ACKED", 3)
        log = rows(
            sql,
            "SELECT number, outcome, http_status FROM partner_callback_attempt"
            " WHERE callback_id = :c ORDER BY number",
            c=cb_id,
        )
        assert log == [(1, "HTTP_ERROR", 500), (2, "TIMEOUT", None), (3, "ACKED", 200)]
        assert [h["X-P2P-Event-Id"] for h, _, _ in receiver.received] == [event_id] * 3
        [(headers, raw)] = receiver.acknowledged()
        told = verify_callback(
            headers,
            raw,
            app_id=partner.app_id,
            keys=[partner.key],
            clock=lambda: clock().timestamp(),
        )
        assert (told.event_id, told.event_type, told.data) == (
            event_id,
            "MEMBER_REGISTERED",
            {"memberId": member_id},
        )

        listed = partner.call("GET", "/api/v1/partner/callbacks")
        [item] = listed.json["items"]
        assert [a["outcome"] for a in item["attemptLog"]] == ["HTTP_ERROR", "TIMEOUT", "ACKED"]
        replayed = partner.call("POST", f"/api/v1/partner/callbacks/{cb_id}/replay", key="replay-1")
        assert replayed.status_code == 201, replayed.get_data(as_text=True)
        assert (replayed.json["eventId"], replayed.json["replayOf"]) == (event_id, cb_id)
        assert len(receiver.acknowledged()) == 2
        assert receiver.acknowledged()[1][1] == raw  # the same event, byte for byte
        repeat = partner.call("POST", f"/api/v1/partner/callbacks/{cb_id}/replay", key="replay-1")
        assert repeat.json == replayed.json and len(receiver.received) == 4

        # The member invests the whole of a listing: the investment and the listing full.
        members = platform.service(MemberService)
        onboard(members, member_id, "INVESTOR", "13900000081", identities())
        me = Principal(member_id=member_id, role="INVESTOR")
        platform.service(PaymentService).recharge(D("1000.00"), "pops-r1", me)
        loans = platform.service(LoanService)
        loan_id = loans.publish_loan(loan_request(amount=D("1000.00")), operator).loan_id
        loans.audit_loan(loan_id, AuditRequest(approve=True, reason=None), operator)
        loans.invest(loan_id, D("1000.00"), "pops-i1", me)
        types = [json.loads(b)["eventType"] for _, b in receiver.acknowledged()[2:]]
        assert types == ["INVESTMENT_CONFIRMED", "LISTING_FULL"]
        loans.disburse_loan(loan_id, "pops-d1", operator)
        debtor = Principal(member_id=borrower.member_id, role="BORROWER")
        platform.service(PaymentService).recharge(D("200.00"), "pops-r2", debtor)
        clock.advance(days=20)
        loans.repay(loan_id, "pops-p1", debtor)
        [paid] = [json.loads(b) for _, b in receiver.acknowledged()[4:]]
        assert paid["eventType"] == "REPAYMENT_PAID"
        assert (paid["data"]["memberId"], paid["data"]["loanId"]) == (member_id, loan_id)
        assert (paid["data"]["period"], D(paid["data"]["principal"]) > 0) == (1, True)
        # The interest service fee kept of it: 10% of the interest, the member REGULAR.
        fee = (D(paid["data"]["interest"]) / 10).quantize(D("0.01"), rounding=ROUND_DOWN)
        assert D(paid["data"]["fee"]) == fee > 0
        listed = partner.call("GET", f"{MEMBERS}/{member_id}/receipts")
        assert listed.status_code == 200, listed.get_data(as_text=True)
        [first] = [r for r in listed.json["items"] if r["period"] == 1]
        assert (first["interest"], first["fee"]) == (paid["data"]["interest"], str(fee))
        assert rows(sql, "SELECT COUNT(*) FROM partner_callback WHERE status <> 'ACKED'") == [(0,)]


def test_a_callback_expires_once_the_schedule_is_spent(make_platform, partner_app, sql) -> None:
    platform = make_platform(**FAST)
    with receiving() as receiver:
        partner = partner_app(platform, receiver.url)
        receiver.script = [FAIL, FAIL, FAIL, ACK]
        code = send_code(platform, "13900000091")
        body = {"mobile": "13900000091", "verificationCode": code}
        assert partner.call("POST", MEMBERS, body, key="reg-91").status_code == 201
        assert rows(sql, "SELECT status, attempts FROM partner_callback") == [("EXPIRED", 3)]
        assert len(receiver.received) == 3  # the first attempt and the 2 retries


class Refuses(LifecycleListener):
    def member_registered(self, member):
        raise RuntimeError("a later listener fails")


def test_no_callback_for_an_event_that_rolled_back(make_platform, partner_app, sql) -> None:
    platform = make_platform(**FAST)
    with receiving() as receiver:
        partner = partner_app(platform, receiver.url)
        platform.components["lifecycle"].subscribe(Refuses())
        code = send_code(platform, "13900000095")
        body = {"mobile": "13900000095", "verificationCode": code}
        failed = partner.call("POST", MEMBERS, body, key="reg-95")
        assert (failed.status_code, failed.json["code"]) == (500, "INTERNAL_ERROR")
        assert rows(sql, "SELECT COUNT(*) FROM partner_callback") == [(0,)]
        assert rows(sql, "SELECT COUNT(*) FROM partner_member") == [(0,)]
        registering = "SELECT COUNT(*) FROM partner_request WHERE operation = :op"
        assert rows(sql, registering, op="registerPartnerMember") == [(0,)]
        assert rows(sql, "SELECT COUNT(*) FROM member WHERE mobile = '13900000095'") == [(0,)]
        assert rows(sql, "SELECT COUNT(*) FROM job_outbox WHERE job LIKE 'partner.%'") == [(0,)]
        assert receiver.received == []


def test_an_app_without_a_callback_url_subscribes_to_nothing(
    platform, partner_app, operator, sql
) -> None:
    """Its callbacks could never be delivered: subscribing is refused, by the partner and by
    operators, and nothing is written for it when an event happens."""
    partner = partner_app(platform)
    body = {"events": ["MEMBER_REGISTERED"]}
    refused = partner.call("PUT", "/api/v1/partner/callback-events", body, key="events-2")
    assert (refused.status_code, refused.json["code"]) == (400, "VALIDATION_FAILED")
    assert "callback URL" in refused.json["detail"]
    admin = platform.service(PartnerAdminService)
    with pytest.raises(BusinessError) as by_operator:
        admin.set_partner_app_callback_events(
            partner.app_id, CallbackEventsRequest(["MEMBER_REGISTERED"]), operator
        )
    assert by_operator.value.code == "VALIDATION_FAILED"
    assert partner.call("GET", "/api/v1/partner/callback-events").json["events"] == []

    # An app subscribed before the rule, as a row may still be: nothing is written for it.
    with sql.begin() as conn:
        conn.execute(
            text("UPDATE partner_app SET callback_events = 'MEMBER_REGISTERED' WHERE app_id = :a"),
            {"a": partner.app_id},
        )
    mobile = "13900000075"
    body = {"mobile": mobile, "verificationCode": send_code(platform, mobile)}
    assert partner.call("POST", MEMBERS, body, key="reg-75").status_code == 201
    assert rows(sql, "SELECT COUNT(*) FROM partner_callback") == [(0,)]


def test_operators_set_subscriptions_list_and_replay(platform, partner_app, operator) -> None:
    partner = partner_app(platform, "http://127.0.0.1:9/callbacks", events=[])
    admin = platform.service(PartnerAdminService)
    set_ = admin.set_partner_app_callback_events(
        partner.app_id, CallbackEventsRequest(["LISTING_FULL"]), operator
    )
    assert set_.events == ("LISTING_FULL",)
    latest = admin.list_partner_app_events(partner.app_id).items[0]
    assert (latest.action, latest.operator_id) == ("SET_CALLBACKS", operator.member_id)
    assert json.loads(latest.detail) == {"events": ["LISTING_FULL"]}
    mine = partner.call("GET", "/api/v1/partner/callback-events")
    assert mine.json["events"] == ["LISTING_FULL"]
    page = admin.list_partner_app_callbacks(partner.app_id, caller=operator)
    assert (page.items, page.total) == ((), 0)
    with pytest.raises(BusinessError) as missing:
        admin.replay_partner_app_callback(partner.app_id, 1, operator)
    assert missing.value.code == "PARTNER_CALLBACK_NOT_FOUND"


def test_one_idempotency_key_sent_twice_at_once_replays_once(
    make_platform, partner_app, sql
) -> None:
    """Two replays with one key at the same moment: one new delivery, and both callers get
    its answer (the second waits on the key, then reads the first's)."""
    platform = make_platform(**FAST)
    with receiving() as receiver:
        partner = partner_app(platform, receiver.url)
        code = send_code(platform, "13900000097")
        body = {"mobile": "13900000097", "verificationCode": code}
        assert partner.call("POST", MEMBERS, body, key="reg-97").status_code == 201
        [(cb_id,)] = rows(sql, "SELECT id FROM partner_callback")
        service = platform.service(PartnerService)
        caller = PartnerPrincipal(
            app_id=partner.app_id,
            key_id="k1",
            algorithm="HMAC_SHA256",
            status="ACTIVE",
            scopes=frozenset(ALL_SCOPES),
            rate_per_minute=6000,
            burst=1000,
            nonce="n" * 16,
            idempotency_key="twice-at-once",
            request_sha256="a" * 64,
        )
        outcomes = race([(service.replay_partner_callback, cb_id, caller)] * 2)
        assert outcomes[0] == outcomes[1], outcomes
        assert outcomes[0].replay_of == cb_id
        replays = rows(sql, "SELECT id FROM partner_callback WHERE replay_of = :c", c=cb_id)
        assert replays == [(outcomes[0].callback_id,)]
        assert len(receiver.acknowledged()) == 2  # the registration's and one replay


def test_old_keys_and_finished_callbacks_are_purged_pending_ones_kept(
    make_platform, partner_app, clock, sql
) -> None:
    """partner.purge: Idempotency-Keys older than partner.idempotency_key_days, callbacks
    finished longer ago than partner.callback_retention_days with their attempts and their
    finished replays; a callback a replay still being delivered names is kept."""
    platform = make_platform(**FAST)
    retention = platform.components["partner_retention"]
    callbacks = "SELECT id, replay_of, status FROM partner_callback ORDER BY id"
    with receiving() as receiver:
        partner = partner_app(platform, receiver.url, events=["MEMBER_REGISTERED"])
        registered = {}
        for n in (76, 77):
            mobile = f"139000000{n}"
            body = {"mobile": mobile, "verificationCode": send_code(platform, mobile)}
            made = partner.call("POST", MEMBERS, body, key=f"reg-{n}")
            assert made.status_code == 201, made.get_data(as_text=True)
            [(registered[n],)] = rows(
                sql, "SELECT MAX(id) FROM partner_callback WHERE replay_of IS NULL"
            )
            if n == 76:
                path = f"/api/v1/partner/callbacks/{registered[76]}/replay"
                assert partner.call("POST", path, key="replay-76").status_code == 201
                clock.advance(days=31)
        first, second = registered[76], registered[77]
        [(replay,)] = rows(sql, "SELECT id FROM partner_callback WHERE replay_of IS NOT NULL")
        assert rows(sql, callbacks) == [
            (first, None, "ACKED"),
            (replay, first, "ACKED"),
            (second, None, "ACKED"),
        ]

        # 31 days on: the keys of the first day go, the callbacks all stay.
        assert retention.purge() == PurgedVo(idempotency_keys=3, callbacks=0)
        assert rows(sql, "SELECT idempotency_key FROM partner_request") == [("reg-77",)]
        assert retention.purge() == PurgedVo(0, 0)

        # The second registration's callback replayed, that replay still being delivered.
        path = f"/api/v1/partner/callbacks/{second}/replay"
        assert partner.call("POST", path, key="replay-77").status_code == 201
    with sql.begin() as conn:
        conn.execute(
            text(
                "UPDATE partner_callback SET status = 'PENDING', finished_at = NULL"
                " WHERE replay_of = :s"
            ),
            {"s": second},
        )
    [(pending,)] = rows(sql, "SELECT id FROM partner_callback WHERE replay_of = :s", s=second)

    clock.advance(days=60)  # 91 days after the first day, 60 after the second's
    assert retention.purge() == PurgedVo(idempotency_keys=2, callbacks=2)
    assert rows(sql, "SELECT COUNT(*) FROM partner_request") == [(0,)]
    assert rows(sql, callbacks) == [(second, None, "ACKED"), (pending, second, "PENDING")]
    clock.advance(days=400)
    assert retention.purge() == PurgedVo(idempotency_keys=0, callbacks=0)
    assert rows(sql, callbacks) == [(second, None, "ACKED"), (pending, second, "PENDING")]
    attempts = "SELECT DISTINCT callback_id FROM partner_callback_attempt ORDER BY callback_id"
    assert rows(sql, attempts) == [(second,), (pending,)]
