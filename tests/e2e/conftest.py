"""End-to-end fixtures: the real server as a separate process, and clients built from what
it publishes (the WSDL for zeep, on its SOAP 1.1 or SOAP 1.2 port; /openapi.json for REST).

One server per backend per session: the embedded one (SQLite file, in-process cache) and,
when P2P_TEST_DATABASE_URL and P2P_TEST_REDIS_URL are set, MariaDB + Redis (a database
``<name>_e2e`` and a Redis key prefix of its own, both removed at the end). A second embedded
server that trusts 127.0.0.1 as a proxy backs the forwarded-header tests.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree

from server.faults import UNDECLARED
from service.errors import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_MOBILE = "13900000000"
OPERATOR_PASSWORD = "Operator123"
COMMON_NS = "http://p2p.hry.com/facade/common"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: What must never reach a caller: a stack trace, SQL machinery, a path on this machine.
LEAKS = ("Traceback", 'File "', "sqlalchemy", "/work/")
DB_VARIABLE = "P2P_TEST_DATABASE_URL"
REDIS_VARIABLE = "P2P_TEST_REDIS_URL"


# -- the server process ----------------------------------------------------------------------


def log_barrier(
    base: str, log_path: Path, running: Callable[[], bool], timeout: float = 30.0
) -> str:
    """The log of the ``p2p serve`` worker answering at ``base``, once it holds every line
    logged so far. One writer thread writes a worker's lines in the order logged, a batch at
    a time: once the access log line of a call made now is in the file, so is everything
    before it. A worker no longer ``running`` wrote everything as it stopped."""
    if not running():
        return log_path.read_text(errors="replace")
    rid = f"log-barrier-{uuid.uuid4().hex}"
    requests.get(f"{base}/api/v1/log-barrier", headers={"X-Request-Id": rid}, timeout=timeout)
    deadline = time.monotonic() + timeout
    while rid not in (text := log_path.read_text(errors="replace")):
        if not running():
            return log_path.read_text(errors="replace")
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not log call {rid} within {timeout:.0f} s")
        time.sleep(0.02)
    return text


@dataclass
class Server:
    """A running ``p2p serve`` process and where it answers."""

    backend: str
    base: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    outbox: Path  # the SANDBOX SMS sender's outbox: the codes the server "sent"
    database_url: str = ""  # its database, for tests that write behind the server's back

    def url(self, path: str) -> str:
        return self.base + path

    def log_text(self) -> str:
        """Its log, with every line it logged before this call: a running server writes its
        lines a batch at a time (server/logwriter.py), so a call of a new request id is made
        and its access log line, the last one logged, waited for."""
        return log_barrier(self.base, self.log_path, lambda: self.proc.poll() is None)

    def last_code(self, mobile: str, purpose: str) -> str:
        """The verification code last sent to `mobile` for `purpose`, from the outbox."""
        found = [
            line["code"]
            for line in map(json.loads, self.outbox.read_text(encoding="utf-8").splitlines())
            if line["mobile"] == mobile and line["purpose"] == purpose
        ]
        assert found, f"no {purpose} code was sent to {mobile}"
        return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    """The caller's environment without any P2P_ setting that could redirect the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2P_") and k != "PORT"}
    env["P2P_ENV"] = "test"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def _cli(*args: str, settings: list[str], log, stdin: str = "") -> None:
    sets = [x for s in settings for x in ("--set", s)]
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args, *sets],
        cwd=ROOT,
        env=_env(),
        input=stdin,
        text=True,
        stdout=log,
        stderr=subprocess.STDOUT,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"p2p {args[0]} failed ({done.returncode}); see {log.name}")


@dataclass
class _Started:
    server: Server
    log: object

    def stop(self) -> None:
        proc = self.server.proc
        proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        self.log.close()
        undeclared = [line for line in self.server.log_text().splitlines() if UNDECLARED in line]
        if undeclared:
            pytest.fail("an operation raised a code it does not declare:\n" + "\n".join(undeclared))


def start_server(
    backend: str, workdir: Path, settings: list[str], operator: bool, port: int | None = None
) -> _Started:
    """Migrate, optionally create the operator, serve (on `port`, or a free one); return once
    /health answers 200. The SMS outbox, the embedded job broker and beat's schedule are files
    in `workdir`, so the job worker each server starts (one pool process: the machine is
    small) serves that server only."""
    workdir.mkdir(parents=True, exist_ok=True)
    outbox = workdir / "sms-outbox.jsonl"
    settings = [
        f"verification.outbox_file={outbox}",
        f"jobs.embedded_broker_file={workdir / 'jobs-broker.db'}",
        f"jobs.beat_schedule_file={workdir / 'beat-schedule'}",
        "jobs.concurrency=1",
        *settings,
    ]
    log = (workdir / "server.log").open("w")
    _cli("migrate", settings=settings, log=log)
    if operator:
        _cli(
            "create-operator",
            "--mobile",
            OPERATOR_MOBILE,
            settings=settings,
            log=log,
            stdin=OPERATOR_PASSWORD + "\n",
        )
    log.flush()
    port = port or _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--set", f"server.port={port}"]
        + [x for s in settings for x in ("--set", s)],
        cwd=ROOT,
        env=_env(),
        # An open, silent stdin, as supervisord gives its workers: a parser that read a
        # caller-named file:///dev/stdin would hang here instead of failing fast.
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    urls = [s.partition("=")[2] for s in settings if s.startswith("database.url=")]
    database_url = urls[-1] if urls else ""
    started = _Started(
        Server(
            backend, f"http://127.0.0.1:{port}", port, proc, Path(log.name), outbox, database_url
        ),
        log,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"server exited with {proc.returncode}:\n{started.server.log_text()}")
        try:
            if requests.get(started.server.url("/health"), timeout=1).status_code == 200:
                return started
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    started.stop()
    pytest.fail(f"server did not answer /health within 30 s:\n{started.server.log_text()}")


def _mariadb_urls() -> tuple[str, str]:
    db, cache = os.environ.get(DB_VARIABLE), os.environ.get(REDIS_VARIABLE)
    if not db or not cache:
        pytest.skip(
            f"the MariaDB + Redis backend needs {DB_VARIABLE}=mysql+mysqldb://... and "
            f"{REDIS_VARIABLE}=redis://...; both unset or one missing"
        )
    return db, cache


@pytest.fixture(
    scope="session",
    params=["embedded", pytest.param("mariadb", marks=[pytest.mark.mysql, pytest.mark.redis])],
)
def server(request, tmp_path_factory) -> Iterator[Server]:
    """The platform as a user runs it, once per backend, with an operator account."""
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    if request.param == "embedded":
        settings = [f"database.url=sqlite:///{workdir / 'p2p.db'}"]
        started = start_server("embedded", workdir, settings, operator=True)
        yield started.server
        started.stop()
        return

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    db_raw, redis_url = _mariadb_urls()
    db_url = make_url(db_raw)
    if db_url.get_backend_name() != "mysql" or not (db_url.database or "").startswith("p2p_test"):
        pytest.fail(f"{DB_VARIABLE} must be a mysql URL of a database named p2p_test*")
    name = f"{db_url.database}_e2e"
    admin = create_engine(db_url.set(database=""), poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    prefix = f"p2p-e2e-{uuid.uuid4().hex[:12]}:"
    settings = [
        f"database.url={db_url.set(database=name).render_as_string(hide_password=False)}",
        f"cache.url={redis_url}",
        f"cache.key_prefix={prefix}",
    ]
    try:
        started = start_server("mariadb", workdir, settings, operator=True)
        yield started.server
        started.stop()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
        r = redis.Redis.from_url(redis_url)
        for key in r.scan_iter(match=f"{prefix}*"):
            r.delete(key)
        r.close()


@pytest.fixture(scope="session")
def proxied_server(tmp_path_factory) -> Iterator[Server]:
    """An embedded server that believes X-Forwarded-* from 127.0.0.1 (its load balancer)."""
    workdir = tmp_path_factory.mktemp("e2e-proxied")
    settings = [
        f"database.url=sqlite:///{workdir / 'p2p.db'}",
        "server.trusted_proxies=127.0.0.1",
    ]
    started = start_server("embedded", workdir, settings, operator=False)
    yield started.server
    started.stop()


@pytest.fixture(scope="session")
def processes():
    """The process helpers, for modules that start servers of their own (they cannot import
    conftest)."""

    class Processes:
        root = ROOT
        start_server = staticmethod(start_server)
        env = staticmethod(_env)
        free_port = staticmethod(_free_port)
        operator_login = (OPERATOR_MOBILE, OPERATOR_PASSWORD)  # made when start_server is told

    return Processes


# -- checks shared by every module -----------------------------------------------------------


def assert_clean(response: requests.Response) -> None:
    """No stack trace, SQL machinery or local path in what the caller received."""
    text = response.content.decode("utf-8", errors="replace")
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked in {response.status_code}: {text[:500]}"


def assert_error(
    response: requests.Response, status: int, code: str, *, mentions: str | None = None
) -> dict:
    """A REST error: the status, a JSON body of code/message/requestId and perhaps detail, the
    code, its catalogue message in English (no Accept-Language is sent), the request id
    echoed in the header, and (when given) a word the detail must hold."""
    assert_clean(response)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Content-Language"] == "en"
    body = response.json()
    assert set(body) - {"detail"} == {"code", "message", "requestId"}, body
    assert body["code"] == code, body
    assert body["message"] == CATALOGUE[code].message, body
    assert body["requestId"] == response.headers["X-Request-Id"]
    if mentions is not None:
        assert mentions in body.get("detail", ""), body
    return body


@dataclass(frozen=True)
class SoapVersion:
    """A SOAP version as a client meets it: the WSDL port to take (its name after the
    facade's), what a raw call is sent as, and the fault codes of the caller's faults and
    ours."""

    name: str
    port: str
    content_type: str
    envelope: str
    sender: str
    receiver: str

    def port_name(self, facade: str) -> str:
        return facade + self.port


SOAP11 = SoapVersion("1.1", "Port", "text/xml; charset=utf-8", SOAP_ENV, "Client", "Server")
SOAP12 = SoapVersion(
    "1.2", "Soap12Port", "application/soap+xml; charset=utf-8", SOAP12_ENV, "Sender", "Receiver"
)
SOAP_VERSIONS = {v.name: v for v in (SOAP11, SOAP12)}


@dataclass(frozen=True)
class SoapFault:
    faultcode: str  # as written: soap:Client, env:Sender, ...
    code: str
    message: str  # the catalogue's
    request_id: str
    detail: str  # what exactly, "" when the fault has none

    @property
    def kind(self) -> str:
        """The fault code without its prefix: Client, Sender, VersionMismatch, ..."""
        return self.faultcode.partition(":")[2]


def _qname(element) -> etree.QName:
    prefix, _, local = element.text.strip().partition(":")
    return etree.QName(element.nsmap[prefix], local)


def parse_fault(response: requests.Response) -> SoapFault:
    """The Fault in a raw SOAP response of either version, its catalogue data read from inside
    its detail; a SOAP 1.2 fault's Subcode must be the same code, its Reason in English, the
    message the catalogue's."""
    assert_clean(response)
    root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
    version = SOAP12 if root.tag == f"{{{SOAP12_ENV}}}Envelope" else SOAP11
    assert response.headers["Content-Type"].startswith(version.content_type.split(";")[0])
    env = version.envelope
    fault = root.find(f"{{{env}}}Body/{{{env}}}Fault")
    assert fault is not None, response.text[:500]
    if version is SOAP11:
        faultcode = fault.findtext("faultcode")
        data = fault.find(f"detail/{{{COMMON_NS}}}BusinessFault")
    else:
        faultcode = fault.findtext(f"{{{env}}}Code/{{{env}}}Value")
        subcode = fault.find(f"{{{env}}}Code/{{{env}}}Subcode/{{{env}}}Value")
        text = fault.find(f"{{{env}}}Reason/{{{env}}}Text")
        assert text.get(XML_LANG) == "en"
        data = fault.find(f"{{{env}}}Detail/{{{COMMON_NS}}}BusinessFault")
        assert _qname(subcode) == etree.QName(COMMON_NS, data.findtext(f"{{{COMMON_NS}}}code"))
    assert data is not None, "the fault's data must sit inside its detail"
    code = data.findtext(f"{{{COMMON_NS}}}code")
    assert data.findtext(f"{{{COMMON_NS}}}message") == CATALOGUE[code].message
    return SoapFault(
        faultcode,
        code,
        data.findtext(f"{{{COMMON_NS}}}message"),
        data.findtext(f"{{{COMMON_NS}}}requestId"),
        data.findtext(f"{{{COMMON_NS}}}detail", ""),
    )


def zeep_fault_code(fault: zeep.exceptions.Fault) -> str:
    """The catalogue code a zeep Fault carries in its detail (and, SOAP 1.2, as its one
    Subcode)."""
    assert fault.detail is not None, "the fault has no detail"
    code = fault.detail.findtext(f"{{{COMMON_NS}}}BusinessFault/{{{COMMON_NS}}}code")
    assert code, etree.tostring(fault.detail)
    assert fault.subcodes in (None, [etree.QName(COMMON_NS, code)]), fault.subcodes
    return code


def zeep_fault_detail(fault: zeep.exceptions.Fault) -> str:
    """What exactly a zeep Fault says went wrong: its BusinessFault's detail ("" if none)."""
    assert fault.detail is not None, "the fault has no detail"
    return fault.detail.findtext(f"{{{COMMON_NS}}}BusinessFault/{{{COMMON_NS}}}detail", "")


@pytest.fixture(scope="session")
def checks():
    """The shared assertions, for modules that cannot import conftest."""

    class Checks:
        clean = staticmethod(assert_clean)
        error = staticmethod(assert_error)
        fault = staticmethod(parse_fault)
        zeep_code = staticmethod(zeep_fault_code)
        zeep_detail = staticmethod(zeep_fault_detail)

    return Checks


# -- REST, driven by /openapi.json -------------------------------------------------------------


class OpenApi:
    """Calls operations by operationId, taking method and path from the served document."""

    def __init__(self, server: Server):
        self.server = server
        response = requests.get(server.url("/openapi.json"), timeout=10)
        assert response.status_code == 200
        self.document = response.json()
        self.operations: dict[str, tuple[str, str, dict]] = {}
        for path, item in self.document["paths"].items():
            for method, op in item.items():
                self.operations[op["operationId"]] = (method.upper(), path, op)

    def path(self, operation_id: str, **path_params) -> str:
        path = self.operations[operation_id][1]
        for name, value in path_params.items():
            path = path.replace("{" + name + "}", str(value))
        assert "{" not in path, f"path parameters missing for {operation_id}: {path}"
        return path

    def method(self, operation_id: str) -> str:
        return self.operations[operation_id][0]

    def call(
        self,
        operation_id: str,
        *,
        token: str | None = None,
        json_body=None,
        data: bytes | None = None,
        params=None,
        headers: dict | None = None,
        **path_params,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        response = requests.request(
            self.method(operation_id),
            self.server.url(self.path(operation_id, **path_params)),
            data=data,
            params=params,
            headers=all_headers,
            timeout=30,
        )
        assert_clean(response)
        return response

    def schema(self, ref_or_schema: dict) -> dict:
        while "$ref" in ref_or_schema or "allOf" in ref_or_schema:
            if "allOf" in ref_or_schema:
                ref_or_schema = ref_or_schema["allOf"][0]
                continue
            name = ref_or_schema["$ref"].rsplit("/", 1)[-1]
            ref_or_schema = self.document["components"]["schemas"][name]
        return ref_or_schema

    def check_body(self, operation_id: str, response: requests.Response) -> dict:
        """The documented status and a body whose keys fit the documented schema."""
        op = self.operations[operation_id][2]
        documented = [s for s in op["responses"] if s.startswith("2")]
        assert str(response.status_code) in documented, (response.status_code, response.text)
        body = response.json()
        schema = self.schema(
            op["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
        )
        self._check_object(body, schema)
        return body

    def _check_object(self, body: dict, schema: dict) -> None:
        properties = schema["properties"]
        assert set(schema.get("required", ())) <= set(body), (schema.get("required"), body)
        assert set(body) <= set(properties), (sorted(properties), body)
        for key, value in body.items():
            sub = self.schema(properties[key])
            if sub.get("type") == "array":
                for item in value:
                    self._check_object(item, self.schema(sub["items"]))
            elif sub.get("type") == "object":
                self._check_object(value, sub)
            elif sub.get("format") == "decimal":
                assert isinstance(value, str), f"{key} must be a decimal string, got {value!r}"


@pytest.fixture(scope="session")
def api(server) -> OpenApi:
    return OpenApi(server)


# -- SOAP, driven by the WSDL ------------------------------------------------------------------


class Soap:
    """zeep clients built from the served WSDLs alone, on one SOAP version's ports, and raw
    posting for hostile input."""

    def __init__(self, server: Server, version: SoapVersion = SOAP11):
        self.server = server
        self.version = version
        self.member = self.client("MemberFacade")
        self.loan = self.client("LoanFacade")

    def client(self, facade: str, **options) -> zeep.Client:
        """A zeep client of `facade` on this version's port of the served WSDL."""
        url = self.server.url(f"/services/{facade}?wsdl")
        return zeep.Client(url, port_name=self.version.port_name(facade), **options)

    @staticmethod
    def auth(token: str) -> dict:
        """The AuthToken header as the WSDL declares it (binding part ``auth``)."""
        return {"_soapheaders": {"auth": {"token": token}}}

    def loan_as(self, mobile: str, password: str) -> zeep.Client:
        from zeep.wsse.username import UsernameToken

        return self.client("LoanFacade", wsse=UsernameToken(mobile, password))

    def post(
        self,
        facade: str,
        body: bytes,
        content_type: str | None = None,
        headers: dict | None = None,
    ) -> requests.Response:
        """`body` posted as this version's media type unless `content_type` says otherwise."""
        response = requests.post(
            self.server.url(f"/services/{facade}"),
            data=body,
            headers={
                "Content-Type": content_type or self.version.content_type,
                "SOAPAction": '""',
                **(headers or {}),
            },
            timeout=15,
        )
        assert_clean(response)
        return response


@pytest.fixture(scope="session")
def soap(server, request) -> Soap:
    """SOAP 1.1 clients; a module parametrises it indirectly with "1.2" (or both) for
    SOAP 1.2's."""
    return Soap(server, SOAP_VERSIONS[getattr(request, "param", "1.1")])


# -- data factories ----------------------------------------------------------------------------

_mobiles = itertools.count(random.randrange(10_000_000, 80_000_000))


def new_mobile() -> str:
    """A mobile number no other test in this session uses (138 + 8 digits)."""
    return f"138{next(_mobiles):08d}"


@dataclass(frozen=True)
class Member:
    member_id: int
    mobile: str
    password: str
    role: str
    token: str
    card_id: int | None = None  # the bound card of an onboarded member


def register(server: Server, role: str, mobile: str, password: str, **extra) -> dict:
    """Sign up over REST as a member does: a REGISTER code, read from the server's SMS outbox,
    then registration; the new member's body."""
    r = requests.post(
        server.url("/api/v1/verification-codes"),
        json={"mobile": mobile, "purpose": "REGISTER"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    body = {
        "mobile": mobile,
        "password": password,
        "role": role,
        "verificationCode": server.last_code(mobile, "REGISTER"),
        **extra,
    }
    r = requests.post(server.url("/api/v1/members"), json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def onboard(server: Server, token: str, mobile: str, who) -> int:
    """Real-name verification, a bound card and an open fund account; the card's id."""
    auth = {"Authorization": f"Bearer {token}"}
    steps = [
        (
            "/api/v1/members/current/identity",
            {"realName": who.real_name, "idNumber": who.id_number},
        ),
        (
            "/api/v1/members/current/cards",
            {"cardNumber": who.card_number, "bankName": "中国工商银行", "mobile": mobile},
        ),
    ]
    for path, body in steps:
        r = requests.post(server.url(path), json=body, headers=auth, timeout=30)
        assert r.status_code in (200, 201), r.text
    card_id = r.json()["cardId"]
    r = requests.post(
        server.url("/api/v1/members/current/fund-account"),
        json={"cardId": card_id},
        headers=auth,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return card_id


MEMBER_PASSWORD = "Passw0rd-bank"


@dataclass
class RestMember:
    """A member of a running server over REST: signed up (``register``), logged in, real
    name verified and a card bound (``card_id``); the fund account is theirs to open."""

    server: Server
    token: str
    card_id: int

    @classmethod
    def sign_up(cls, server: Server, who, role: str = "INVESTOR") -> RestMember:
        mobile = new_mobile()
        register(server, role, mobile, MEMBER_PASSWORD)
        login = {"mobile": mobile, "password": MEMBER_PASSWORD}
        r = requests.post(server.url("/api/v1/sessions"), json=login, timeout=30)
        assert r.status_code == 201, r.text
        member = cls(server, r.json()["token"], 0)
        identity = {"realName": who.real_name, "idNumber": who.id_number}
        member.post("/api/v1/members/current/identity", identity)
        card = {"cardNumber": who.card_number, "bankName": "中国银行", "mobile": mobile}
        member.card_id = member.post("/api/v1/members/current/cards", card)["cardId"]
        return member

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: dict) -> dict:
        answer = requests.post(self.server.url(path), json=body, headers=self.auth, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def get(self, path: str) -> dict:
        answer = requests.get(self.server.url(path), headers=self.auth, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()


def register_and_login(server: Server, role: str, who=None) -> Member:
    """A new member, logged in; onboarded (verified, a card, a fund account) when `who`, an
    identity from the `identities` fixture, is given."""
    mobile, password = new_mobile(), "Passw0rd" + uuid.uuid4().hex[:6]
    register(server, role, mobile, password)
    r = requests.post(
        server.url("/api/v1/sessions"), json={"mobile": mobile, "password": password}, timeout=30
    )
    assert r.status_code == 201, r.text
    body = r.json()
    card_id = onboard(server, body["token"], mobile, who) if who is not None else None
    return Member(body["memberId"], mobile, password, role, body["token"], card_id)


@pytest.fixture(scope="session")
def operator(server) -> Member:
    r = requests.post(
        server.url("/api/v1/sessions"),
        json={"mobile": OPERATOR_MOBILE, "password": OPERATOR_PASSWORD},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Member(body["memberId"], OPERATOR_MOBILE, OPERATOR_PASSWORD, "OPERATOR", body["token"])


@pytest.fixture(scope="session")
def borrower(server, identities) -> Member:
    return register_and_login(server, "BORROWER", identities())


@pytest.fixture(scope="session")
def investor(server, identities) -> Member:
    return register_and_login(server, "INVESTOR", identities())


@pytest.fixture(scope="session")
def members(server, identities) -> Callable[..., Member]:
    """A fresh member of the given role, logged in and onboarded unless onboarded=False."""

    def make(role: str, *, onboarded: bool = True) -> Member:
        return register_and_login(server, role, identities() if onboarded else None)

    return make


@pytest.fixture(scope="session")
def signup():
    """The sign-up steps, for modules that drive them one by one."""

    class SignUp:
        register = staticmethod(register)
        onboard = staticmethod(onboard)

    return SignUp


@pytest.fixture
def loan_terms(borrower) -> Callable[..., dict]:
    """Valid REST loan terms for the session's borrower, with overrides."""

    def terms(**overrides) -> dict:
        base = {
            "title": "Working capital " + uuid.uuid4().hex[:6],
            "description": "Stock for the spring season.",
            "borrowerId": borrower.member_id,
            "amount": "10000.01",
            "annualRate": "9.5",
            "termMonths": 12,
            "repaymentMethod": "EQUAL_INSTALLMENT",
            "minInvest": "100.00",
            "maxInvestPerInvestor": "5000.00",
            "raiseDays": 10,
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    return terms
