"""The dispatcher and its standard interceptors: order, the error funnel, authorisation."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import re
import time
import weakref
from dataclasses import dataclass, field

import pytest

from server.dispatcher import (
    Authorize,
    Credentials,
    Dispatcher,
    Invocation,
    Resolve,
    request_id,
    standard_chain,
)
from server.logformat import formatter
from server.logwriter import LogWriter
from service import errors
from service.errors import CATALOGUE, BusinessError
from service.partner.auth import PartnerPrincipal
from service.security import Principal

ANONYMOUS = Credentials()
SECRET = "SELECT password_hash FROM member -- /srv/p2p/service/p2p.py"


@dataclass
class FakeOperation:
    """Stands in for a BoundOperation: records calls, or fails as told."""

    roles: frozenset[str] | None = None
    partner_scope: str | None = None
    fail: BaseException | None = None
    calls: list = field(default_factory=list)
    facade_name: str = "FakeFacade"
    name: str = "doThing"
    fault_codes: frozenset[str] = frozenset(CATALOGUE)

    def invoke(self, args, principal, language):
        self.calls.append((args, principal))
        if self.fail is not None:
            raise self.fail
        return "result"


class FakeAuthenticator:
    def authenticate_token(self, token: str) -> Principal:
        if token != "good":
            raise BusinessError(errors.UNAUTHENTICATED, "bad token")
        return Principal(member_id=5, role="INVESTOR", token=token)

    def authenticate_password(self, mobile: str, password: str) -> Principal:
        return Principal(member_id=6, role="OPERATOR")


def invocation(op: FakeOperation, credentials: Credentials = ANONYMOUS) -> Invocation:
    def resolve(inv: Invocation):
        inv.operation = op
        inv.credentials = credentials
        return lambda: {"x": 1}

    return Invocation(protocol="rest", request_id="rid-1", client_addr="10.0.0.9", resolve=resolve)


def run(op: FakeOperation, credentials: Credentials = ANONYMOUS) -> object:
    inv = invocation(op, credentials)
    return Dispatcher(standard_chain(FakeAuthenticator())).dispatch(inv)


def test_interceptors_run_outermost_first() -> None:
    seen: list[str] = []

    def recorder(name: str):
        def interceptor(inv, proceed):
            seen.append(f"{name} in")
            try:
                return proceed(inv)
            finally:
                seen.append(f"{name} out")

        return interceptor

    op = FakeOperation()
    inv = invocation(op)
    inv.operation = op
    result = Dispatcher([recorder("a"), recorder("b"), recorder("c")]).dispatch(inv)
    assert result == "result"
    assert seen == ["a in", "b in", "c in", "c out", "b out", "a out"]
    assert len(op.calls) == 1


def test_an_interceptor_can_stop_the_call() -> None:
    op = FakeOperation()
    inv = invocation(op)
    inv.operation = op
    result = Dispatcher([lambda inv, proceed: "stopped", Resolve()]).dispatch(inv)
    assert result == "stopped"
    assert op.calls == []


def test_a_call_reaches_the_service_with_its_arguments() -> None:
    op = FakeOperation()
    assert run(op) == "result"
    assert op.calls == [({"x": 1}, None)]


def test_unexpected_exception_becomes_internal_error_logged_with_traceback(caplog) -> None:
    op = FakeOperation(fail=KeyError(SECRET))
    caplog.set_level(logging.INFO)
    with pytest.raises(BusinessError) as e:
        run(op)
    assert e.value.code == "INTERNAL_ERROR"
    assert e.value.__cause__ is None and e.value.__suppress_context__
    for text in (e.value.message, str(e.value)):
        assert "Traceback" not in text
        assert "password_hash" not in text and "/srv/" not in text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    record = errors[0]
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "rid-1" in record.getMessage()
    assert "Traceback" in caplog.text and "password_hash" in caplog.text
    access = [r for r in caplog.records if r.name == "server.access"]
    assert len(access) == 1 and "INTERNAL_ERROR" in access[0].getMessage()


def test_business_errors_pass_through_unlogged(caplog) -> None:
    op = FakeOperation(fail=BusinessError(errors.LOAN_NOT_FOUND, "listing 9 does not exist"))
    with pytest.raises(BusinessError) as e:
        run(op)
    assert e.value.code == "LOAN_NOT_FOUND"
    assert e.value.message == "listing 9 does not exist"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_authorize_refuses_anonymous_with_unauthenticated() -> None:
    op = FakeOperation(roles=frozenset({"OPERATOR"}))
    with pytest.raises(BusinessError) as e:
        run(op)
    assert e.value.code == "UNAUTHENTICATED"
    assert op.calls == []


def test_authorize_refuses_the_wrong_role_with_forbidden() -> None:
    op = FakeOperation(roles=frozenset({"OPERATOR"}))
    with pytest.raises(BusinessError) as e:
        run(op, Credentials(token="good"))  # an INVESTOR
    assert e.value.code == "FORBIDDEN"
    assert e.value.detail == f"{op.name} needs the role OPERATOR"
    assert op.calls == []
    both = FakeOperation(roles=frozenset({"BORROWER", "OPERATOR"}))
    with pytest.raises(BusinessError) as e:
        run(both, Credentials(token="good"))
    assert e.value.detail == f"{both.name} needs the role BORROWER or OPERATOR"


def test_authorize_lets_the_right_role_and_public_calls_through() -> None:
    op = FakeOperation(roles=frozenset({"INVESTOR", "BORROWER"}))
    assert run(op, Credentials(token="good")) == "result"
    assert op.calls[0][1] == Principal(member_id=5, role="INVESTOR", token="good")
    op = FakeOperation(roles=frozenset({"OPERATOR"}))
    assert run(op, Credentials(username="13800000000", password="x")) == "result"
    assert op.calls[0][1].role == "OPERATOR"
    public = FakeOperation(roles=None)
    assert run(public) == "result"


def test_a_bad_token_is_refused_even_on_a_public_operation() -> None:
    with pytest.raises(BusinessError) as e:
        run(FakeOperation(roles=None), Credentials(token="forged"))
    assert e.value.code == "UNAUTHENTICATED"


def test_authorize_alone() -> None:
    inv = invocation(FakeOperation(roles=frozenset({"BORROWER"})))
    inv.resolve(inv)
    inv.principal = Principal(member_id=1, role="INVESTOR")
    with pytest.raises(BusinessError, match="needs the role BORROWER"):
        Authorize()(inv, lambda inv: "called")
    inv.principal = Principal(member_id=1, role="BORROWER")
    assert Authorize()(inv, lambda inv: "called") == "called"


@pytest.mark.parametrize(
    ("header", "kept"),
    [("abc-123", True), ("a" * 64, True), ("a" * 65, False), ("x y", False), (None, False)],
)
def test_request_id(header: str | None, kept: bool) -> None:
    rid = request_id(header)
    assert (rid == header) is kept
    assert 1 <= len(rid) <= 64


def test_fresh_request_ids_are_new_in_every_process() -> None:
    ids = {request_id(None) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch("[0-9a-f]{32}", rid) for rid in ids)
    # A forked worker does not repeat its parent's ids (the generator is reseeded).
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, " ".join(request_id(None) for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {request_id(None) for _ in range(100)}
    assert len(child) == 100 and not child & parent


def test_arguments_are_read_only_after_the_caller_is_authorised() -> None:
    op = FakeOperation(roles=frozenset({"OPERATOR"}))
    read = []

    def resolve(inv: Invocation):
        inv.operation = op
        return lambda: read.append("read") or {}

    inv = Invocation(protocol="rest", request_id="r", client_addr="-", resolve=resolve)
    with pytest.raises(BusinessError) as e:
        Dispatcher(standard_chain(FakeAuthenticator())).dispatch(inv)
    assert e.value.code == "UNAUTHENTICATED"
    assert read == []


class Reports:
    def __init__(self):
        self.reports: list[tuple[BaseException, dict]] = []

    def report(self, exc: BaseException, tags) -> None:
        self.reports.append((exc, dict(tags)))


def test_the_result_is_rendered_by_the_adapter_and_returned() -> None:
    op = FakeOperation()
    inv = invocation(op)
    inv.render = lambda inv, result: f"<{inv.request_id}:{result}>"
    assert Dispatcher(standard_chain(FakeAuthenticator())).dispatch(inv) == "<rid-1:result>"


def test_a_result_that_cannot_be_rendered_is_an_internal_error_of_the_call(caplog) -> None:
    """Rendering runs inside the error funnel and the access log: the failure is logged once
    with its traceback, reported, and access-logged as INTERNAL_ERROR under the call's id."""

    def render(inv, result):
        raise ValueError("All strings must be XML compatible")

    op, reports = FakeOperation(), Reports()
    inv = invocation(op)
    inv.render = render
    caplog.set_level(logging.INFO)
    with pytest.raises(BusinessError) as e:
        Dispatcher(standard_chain(FakeAuthenticator(), reports)).dispatch(inv)
    assert e.value.code == "INTERNAL_ERROR"
    assert len(op.calls) == 1
    assert (inv.outcome, inv.error_type) == ("INTERNAL_ERROR", "builtins.ValueError")
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info[0] is ValueError
    assert "rid-1" in logged[0].getMessage()
    assert [(type(exc), tags["request_id"]) for exc, tags in reports.reports] == [
        (ValueError, "rid-1")
    ]
    access = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert len(access) == 1
    assert access[0].startswith("rid-1 rest FakeFacade.doThing INTERNAL_ERROR ")


def test_a_code_the_operation_does_not_declare_is_logged_and_still_answered(
    caplog, undeclared_faults
) -> None:
    op = FakeOperation(
        fail=BusinessError(errors.LOAN_NOT_FOUND), fault_codes=frozenset({"MEMBER_NOT_FOUND"})
    )
    with pytest.raises(BusinessError) as e:
        Dispatcher(standard_chain(FakeAuthenticator())).dispatch(invocation(op))
    assert e.value.code == "LOAN_NOT_FOUND"
    logged = [r for r in caplog.records if r.name == "server.dispatcher"]
    assert [r.getMessage() for r in logged] == [
        "undeclared fault code LOAN_NOT_FOUND raised by FakeFacade.doThing (request rid-1)"
    ]
    assert logged[0].levelname == "ERROR"
    undeclared_faults.clear()  # provoked on purpose


# -- the access log line, made by the log writer's thread or at once --------------------


def _calls() -> list[tuple[str, Invocation]]:
    """Invocations ending every way an access line tells apart."""
    member = invocation(FakeOperation(), Credentials(token="good"))
    refused = invocation(FakeOperation(fail=BusinessError(errors.LOAN_NOT_FOUND)))
    partner = invocation(FakeOperation())
    partner.partner = PartnerPrincipal(
        app_id="app-7", key_id="k1", algorithm="HMAC", status="ACTIVE",
        scopes=frozenset(), rate_per_minute=60, burst=10, nonce="n",
    )  # fmt: skip

    def unresolved(inv: Invocation):
        raise BusinessError(errors.UNKNOWN_OPERATION)

    lost = Invocation(protocol="soap", request_id="rid-2", client_addr="::1", resolve=unresolved)
    return [("member", member), ("refused", refused), ("partner", partner), ("lost", lost)]


@pytest.mark.parametrize("form", ["PLAIN", "JSON"])
def test_the_writer_writes_the_access_line_the_logger_would(form, tmp_path, monkeypatch) -> None:
    """With p2p serve's log writer the access line is made by the writer's thread from what
    the call left: the same line, to the character, as the logger writes from the record made
    while the call is served (its time the call's end, its call fields the call's)."""
    monkeypatch.setattr(time, "time", lambda: 1_767_225_600.4567)  # 2026-01-01, one clock
    monkeypatch.setattr(time, "perf_counter", lambda: 1000.0)
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    writer = LogWriter(fd)
    writer.setFormatter(formatter(form))
    direct = io.StringIO()
    handler = logging.StreamHandler(direct)
    handler.setFormatter(formatter(form))
    handler.addFilter(lambda record: record.name == "server.access")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        for log_writer in (writer, None):
            chain = Dispatcher(standard_chain(FakeAuthenticator(), log_writer=log_writer))
            for _, inv in _calls():
                inv.started = 1000.0 - 0.0123  # 12.3 ms
                with contextlib.suppress(BusinessError):
                    chain.dispatch(inv)
        writer.flush()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        os.close(fd)
    made_later = (tmp_path / "log").read_text().splitlines()
    made_at_once = direct.getvalue().splitlines()
    assert made_later == made_at_once
    assert len(made_later) == len(_calls())
    if form == "JSON":
        member, refused, partner, lost = map(json.loads, made_later)
        assert (member["requestId"], member["facade"], member["operation"]) == (
            "rid-1",
            "FakeFacade",
            "doThing",
        )
        assert (member["member"], member["durationMs"]) == (5, 12.3)
        assert refused["outcome"] == "LOAN_NOT_FOUND" and partner["app"] == "app-7"
        assert (lost["facade"], lost["operation"], lost["protocol"]) == ("-", "-", "soap")
        assert member["timestamp"] == "2026-01-01T00:00:00.456Z"
    else:
        assert made_later[0].endswith(
            "server.access rid-1 rest FakeFacade.doThing OK 12.3ms client=10.0.0.9 member=5"
        )
        assert made_later[2].endswith(" member=- app=app-7")
        assert " rid-2 soap - UNKNOWN_OPERATION 12.3ms client=::1 member=-" in made_later[3]


def test_an_access_line_keeps_nothing_of_its_call(tmp_path, caplog) -> None:
    """A line waiting for the writer holds strings and numbers, not the invocation (its
    request, arguments and result), however long the stream keeps it waiting."""
    caplog.set_level(logging.INFO)
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    writer = LogWriter(fd)
    writer.setFormatter(formatter("JSON"))
    try:
        inv = invocation(FakeOperation(), Credentials(token="good"))
        gone = weakref.ref(inv)
        Dispatcher(standard_chain(FakeAuthenticator(), log_writer=writer)).dispatch(inv)
        del inv
        gc.collect()
        assert gone() is None
        writer.flush()
    finally:
        os.close(fd)
    [line] = map(json.loads, (tmp_path / "log").read_text().splitlines())
    assert (line["requestId"], line["outcome"], line["member"]) == ("rid-1", "OK", 5)


def test_an_access_line_is_not_made_when_the_log_does_not_take_info(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    writer = LogWriter(fd)
    writer.setFormatter(formatter("PLAIN"))
    access = logging.getLogger("server.access")
    level = access.level
    access.setLevel(logging.WARNING)
    try:
        Dispatcher(standard_chain(FakeAuthenticator(), log_writer=writer)).dispatch(
            invocation(FakeOperation())
        )
        writer.flush()
    finally:
        access.setLevel(level)
        os.close(fd)
    assert (tmp_path / "log").read_text() == ""
