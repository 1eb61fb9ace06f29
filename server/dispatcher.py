"""The one dispatcher: every call, SOAP or REST, runs through the same interceptor chain.

A protocol adapter turns an HTTP request into an :class:`Invocation` with steps of its own:
``resolve`` finds the operation and the presented credentials, and returns the step that
reads the arguments; ``render`` turns the service's result into the protocol's response. The
chain (access log, error funnel, render, resolve, authentication, authorisation, argument
binding, and whatever later interceptors are added) is the same for both protocols, and ends
by calling the service. Arguments are read only after the caller is authorised, so an
anonymous caller learns nothing of a protected operation's validation. The response is
rendered inside the error funnel, so a result that cannot be written is an INTERNAL_ERROR
like any other failure: logged, counted, reported and access-logged under the call's id.
"""

import functools
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from facade.contract import roles_in_words
from server.faults import UNDECLARED
from server.logformat import CALL_FIELDS, current_call
from server.registry import BoundOperation
from service import errors
from service.errors import BusinessError
from service.language import DEFAULT
from service.partner.auth import PartnerPrincipal, SignedRequest
from service.security import Principal
from service.wsse import PasswordDigest

if TYPE_CHECKING:
    from server.logwriter import LogWriter
    from server.sentry import ErrorReporter

log = logging.getLogger("server.dispatcher")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")


def request_id(header: str | None) -> str:
    """The caller's X-Request-Id when it is a sane token, else a fresh one: 32 hex digits
    from the process's random generator (reseeded in a forked child). An id names a call in
    logs and answers and proves nothing, so it needs no secret randomness; uuid4's would cost
    every call a system call, which lets other threads take the interpreter meanwhile."""
    if header and _REQUEST_ID.match(header):
        return header
    return f"{random.getrandbits(128):032x}"


@dataclass(frozen=True)
class Credentials:
    """What the caller presented: a login token, or a WS-Security username with a password
    (PasswordText) or a digest (PasswordDigest); to a partner operation, its signed request."""

    token: str | None = None
    username: str | None = None
    password: str | None = None
    digest: PasswordDigest | None = None
    partner: SignedRequest | None = None


def _as_is(inv: "Invocation", result: object) -> object:
    return result


@dataclass(eq=False)
class Invocation:
    """One call as it crosses the chain; the per-call context that every interceptor shares."""

    protocol: str
    request_id: str
    client_addr: str
    resolve: Callable[["Invocation"], Callable[[], dict]]
    render: Callable[["Invocation", object], object] = _as_is
    operation: BoundOperation | None = None
    read_args: Callable[[], dict] | None = None
    args: dict = field(default_factory=dict)
    credentials: Credentials = Credentials()
    principal: Principal | None = None
    partner: PartnerPrincipal | None = None  # the app of a verified partner call
    #: Headers every answer to this call carries, error or not (a partner call's RateLimit).
    answer_headers: dict[str, str] = field(default_factory=dict)
    #: Signs the final answer (status, body) of a verified partner call: its headers.
    sign_answer: Callable[[int, bytes], dict[str, str]] | None = None
    outcome: str = "OK"
    error_type: str | None = None  # an unexpected exception's class (set by ErrorFunnel)
    language: str = DEFAULT  # what the caller is told in (server/language.py)
    started: float = field(default_factory=time.perf_counter)

    @property
    def name(self) -> str:
        op = self.operation
        return f"{op.facade_name}.{op.name}" if op else "-"

    def log_fields(self) -> dict[str, str]:
        """What every record logged during the call carries in a JSON log (logformat)."""
        op = self.operation
        return {
            "requestId": self.request_id,
            "protocol": self.protocol,
            "facade": op.facade_name if op else "-",
            "operation": op.name if op else "-",
        }


#: What runs the rest of the chain for an invocation: the next interceptor, or the service.
Proceed = Callable[["Invocation"], object]


class Interceptor(Protocol):
    """A step of the chain: does its part and calls ``proceed(inv)`` for the rest, or
    returns (or raises) without it."""

    def __call__(self, inv: Invocation, proceed: Proceed) -> object: ...


def _invoke(inv: Invocation) -> object:
    """The chain's end: the operation's service method, for the caller the chain found."""
    caller = inv.partner if inv.operation.partner_scope else inv.principal
    return inv.operation.invoke(inv.args, caller, inv.language)


class Dispatcher:
    """Runs an invocation through ``interceptors`` (outermost first), then the service.

    The chain is put together once: each interceptor is bound to the one after it (the last
    to the service), so a call makes no closure per step."""

    def __init__(self, interceptors: Sequence[Interceptor]):
        run: Proceed = _invoke
        for interceptor in reversed(interceptors):
            run = functools.partial(interceptor, proceed=run)
        self._run = run

    def dispatch(self, inv: Invocation) -> object:
        return self._run(inv)


# -- the standard interceptors, in the order the chain runs them -----------------------


#: The access log line's text; its values are the record's args (AccessLog).
ACCESS_FORMAT = "%s %s %s %s %.1fms client=%s member=%s%s"


class AccessLog:
    """One line a call: request id, protocol, operation, outcome, time, client, member.
    Never a body, a header value or an argument: those may carry personal data. For the
    length of the call every record logged carries the call's fields (``current_call``).

    Given ``writer`` (``p2p serve``'s, the root logger's one handler: server/logwriter.py),
    the line goes to it as an :class:`AccessLine`, made and formatted by its thread rather
    than the one serving the call; otherwise through the logger, as any record."""

    def __init__(self, logger: logging.Logger | None = None, writer: "LogWriter | None" = None):
        self._log = logger or logging.getLogger("server.access")
        self._writer = writer

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        token = current_call.set(inv.log_fields)
        try:
            return proceed(inv)
        finally:
            self._write(inv)
            current_call.reset(token)

    def _write(self, inv: Invocation) -> None:
        logger = self._log
        if not logger.isEnabledFor(logging.INFO):
            return
        op = inv.operation
        line = AccessLine(
            logger.name,
            time.time(),
            inv.request_id,
            inv.protocol,
            op.facade_name if op else "-",
            op.name if op else "-",
            inv.outcome,
            (time.perf_counter() - inv.started) * 1000,
            inv.client_addr,
            inv.principal.member_id if inv.principal else "-",
            inv.partner.app_id if inv.partner else None,
        )
        if self._writer is not None:
            self._writer.later(line)
        else:
            logger.handle(line.record())


@dataclass(slots=True)
class AccessLine:
    """An access log line's values, taken when the call ends; its record is made from them
    when it is written (server/logwriter.py ``Later``), or at once without a writer. Only
    strings and numbers: nothing of the call is kept alive by a line waiting to be written."""

    levelno: ClassVar[int] = logging.INFO

    name: str  # the logger's
    created: float  # time.time() when the call ended
    request_id: str
    protocol: str
    facade: str
    operation: str
    outcome: str
    elapsed_ms: float
    client: str
    member: int | str
    app: str | None  # a partner call's app

    def call(self) -> dict[str, str]:
        """The call's fields, as ``Invocation.log_fields`` gives them (``current_call``)."""
        return {
            "requestId": self.request_id,
            "protocol": self.protocol,
            "facade": self.facade,
            "operation": self.operation,
        }

    def record(self) -> logging.LogRecord:
        """The line's record: its message, and its own fields for a JSON line; made
        directly, since Logger.info would walk the stack for a file and line no access log
        line shows."""
        app = self.app
        name = f"{self.facade}.{self.operation}" if self.operation != "-" else "-"
        args = (
            self.request_id,
            self.protocol,
            name,
            self.outcome,
            self.elapsed_ms,
            self.client,
            self.member,
            f" app={app}" if app is not None else "",
        )
        factory = logging.getLogRecordFactory()
        record = factory(
            self.name, logging.INFO, __file__, 0, ACCESS_FORMAT, args, None, "AccessLog"
        )
        record.__dict__[CALL_FIELDS] = {
            "outcome": self.outcome,
            "durationMs": round(self.elapsed_ms, 1),
            "client": self.client,
            "member": self.member,
            **({"app": app} if app is not None else {}),
        }
        # Its time is the call's end, set as LogRecord.__init__ sets it from its own clock.
        created = self.created
        record.relativeCreated += (created - record.created) * 1000
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        return record


class ErrorFunnel:
    """The one place an exception becomes what the caller sees. Business errors pass as they
    are (one whose code the operation does not declare is logged: server/faults.py); anything
    else is logged with its traceback and becomes INTERNAL_ERROR, so no stack trace, SQL or
    path reaches a caller. It is also the one place that reports an unexpected exception (to
    Sentry, server/sentry.py), so business errors are never reported."""

    def __init__(self, reporter: "ErrorReporter | None" = None):
        self._reporter = reporter

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        try:
            return proceed(inv)
        except BusinessError as e:
            inv.outcome = e.code
            op = inv.operation
            if op is not None and e.code not in op.fault_codes:
                log.error(
                    "%s %s raised by %s (request %s)", UNDECLARED, e.code, inv.name, inv.request_id
                )
            raise
        except Exception as e:
            log.exception("unexpected error in %s (request %s)", inv.name, inv.request_id)
            inv.outcome = errors.INTERNAL_ERROR.code
            inv.error_type = f"{type(e).__module__}.{type(e).__qualname__}"
            if self._reporter is not None:
                op = inv.operation
                facade, name = (op.facade_name, op.name) if op else ("-", "-")
                tags = {"request_id": inv.request_id, "protocol": inv.protocol}
                self._reporter.report(e, tags | {"facade": facade, "operation": name})
            raise BusinessError(errors.INTERNAL_ERROR) from None


class Render:
    """Turns the service's result into the protocol's response with the adapter's
    ``render``; inside the error funnel, so that a failure to write it is one too."""

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        return inv.render(inv, proceed(inv))


class Resolve:
    """Finds the operation and the credentials with the protocol adapter."""

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        inv.read_args = inv.resolve(inv)
        return proceed(inv)


class BindArguments:
    """Reads and validates the operation's arguments with the protocol's codec."""

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        inv.args = inv.read_args()
        return proceed(inv)


class Authenticate:
    """Turns the presented credentials into a principal, or refuses them."""

    def __init__(self, authenticator):
        self._auth = authenticator

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        c = inv.credentials
        if c.token is not None:
            inv.principal = self._auth.authenticate_token(c.token)
        elif c.username is not None and c.digest is not None:
            inv.principal = self._auth.authenticate_digest(c.username, c.digest)
        elif c.username is not None:
            inv.principal = self._auth.authenticate_password(c.username, c.password or "")
        return proceed(inv)


class Authorize:
    """Refuses a call whose operation's declared roles do not include the caller's, saying
    which role(s) it needs (FORBIDDEN's detail names them), and a
    partner operation's call that no partner app was proven to make."""

    def __call__(self, inv: Invocation, proceed: Proceed) -> object:
        if inv.operation.partner_scope and inv.partner is None:
            raise BusinessError(errors.PARTNER_SIGNATURE_MISSING)
        roles = inv.operation.roles
        if roles is not None:
            if inv.principal is None:
                raise BusinessError(errors.UNAUTHENTICATED)
            if inv.principal.role not in roles:
                raise BusinessError(
                    errors.FORBIDDEN,
                    f"{inv.operation.name} needs the role {roles_in_words(roles)}",
                )
        return proceed(inv)


def standard_chain(
    authenticator,
    reporter: "ErrorReporter | None" = None,
    partners: Interceptor | None = None,
    log_writer: "LogWriter | None" = None,
) -> list[Interceptor]:
    """The chain; ``partners`` proves partner operations' signed requests
    (server/partnerauth.py PartnerAuthentication); without it Authorize refuses them all.
    ``log_writer``: the writer the access log hands its lines to (AccessLog)."""
    return [
        AccessLog(writer=log_writer),
        ErrorFunnel(reporter),
        Render(),
        Resolve(),
        *([partners] if partners is not None else []),
        Authenticate(authenticator),
        Authorize(),
        BindArguments(),
    ]
