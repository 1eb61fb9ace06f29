"""The composition root: settings in, a WSGI application out. Nothing happens at import."""

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from conf.apollo import ApolloClient
from conf.live import LiveSettings
from conf.settings import ConfigError, Settings
from dao.cache import Cache, create_cache
from dao.db import Database
from server import banknotify, openapi, pages
from server.answer import Answer
from server.contract import Contract
from server.dispatcher import Dispatcher, request_id, standard_chain
from server.embeddedbank import with_simulator_keys
from server.jobs import CeleryPublisher, celery_app
from server.language import negotiate
from server.logwriter import LogWriter
from server.metrics import Metrics, PlatformMetrics
from server.partnerauth import PartnerAuthentication
from server.proxy import Proxies
from server.registry import BoundFacade, bind, build_service
from server.rest import PREFIX, RestEndpoint, error_response
from server.sentry import ErrorReporter, NullReporter, error_reporter
from server.soap import SoapEndpoint, asks, fault_response, version_of
from server.version import VERSION
from service import errors
from service.clock import PlatformClock
from service.errors import BusinessError
from service.events import BusinessEvents
from service.gateway import create_gateway
from service.jobs import JobPublisher, JobRegistry, Outbox, OutboxPolicy
from service.language import DEFAULT
from service.lifecycle import Lifecycle
from service.loyalty.levels import Levels
from service.member import MemberService
from service.ocp.orders import QUERY_JOB, BankOrders
from service.partner import PartnerKeys
from service.partner.auth import PartnerAuthenticator
from service.partner.callbacks import PartnerCallbacks
from service.partner.delivery import CallbackDelivery, CallbackPolicy
from service.partner.ratelimit import PartnerRateLimiter
from service.partner.retention import PartnerRetention, RetentionPolicy
from service.partner.signing import load_platform_key
from service.pii import PersonalData
from service.reconciliation import ReconciliationService
from service.security import Lockout, Passwords, Tokens
from service.transaction import TransactionManager
from service.verification import VerificationCodes
from service.wsse import ApiSecrets

if TYPE_CHECKING:  # loaded only where payment.gateway is BANK (see _bank)
    from service.ocp.client import HttpBankClient

log = logging.getLogger("server.app")

TITLE = "P2P lending platform"
SOAP_PREFIX = "/services/"
#: The contract changelog page, beside the WSDLs and the facades' documents.
CHANGELOG_PATH = SOAP_PREFIX + "changelog"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def business_clock(tx: TransactionManager, settings: Settings) -> Callable[[], dt.datetime]:
    """The services' clock: the wall clock, or the development clock (service/clock.py) when
    clock.adjustable."""
    if not settings.clock.adjustable:
        return utc_now
    return PlatformClock(tx, adjustable=True, wall=utc_now)


@dataclass(frozen=True, eq=False)
class Platform:
    """Everything the platform is made of, built once from the settings."""

    settings: LiveSettings
    database: Database
    cache: Cache
    tx: TransactionManager
    facades: list[BoundFacade]
    services: dict[str, object]
    components: dict[str, Any]  # by name: tx, settings, cache, outbox, ... (see _build)
    metrics: PlatformMetrics
    jobs: JobRegistry
    apollo: ApolloClient | None = None

    def service(self, cls):
        return next(s for s in self.services.values() if isinstance(s, cls))

    def close(self) -> None:
        if self.apollo is not None:
            self.apollo.stop()
        self.components["publisher"].close()
        if self.components["bank_client"] is not None:
            self.components["bank_client"].close()
        self.database.dispose()


#: Makes the publisher the outbox hands jobs to, given the platform's jobs.
PublisherFactory = Callable[[JobRegistry], JobPublisher]


def create_platform(
    settings: Settings | LiveSettings,
    *,
    publisher: PublisherFactory | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    contract: Contract | None = None,
) -> Platform:
    """The platform on `settings`; with apollo.meta_url set, Apollo is read first (it may
    change any key at start-up) and then polled for changes to the reloadable keys. Jobs go to
    the job engine (server/jobs.py) unless `publisher` says otherwise: tests pass
    service.jobs.InProcessPublisher to run them in their own thread. The services' business
    clock is the platform's (service/clock.py: the development clock where clock.adjustable)
    unless `clock` says otherwise (a command's --as-of). The facades are compiled in process
    unless `contract` is given (server/contract.py: ``p2p serve`` has a child compile it)."""
    live = settings if isinstance(settings, LiveSettings) else LiveSettings(settings)
    apollo = None
    if live.current().apollo.meta_url:
        apollo = ApolloClient(live)
        apollo.start()
    try:
        return _build(live, apollo, publisher, clock, contract)
    except BaseException:
        if apollo is not None:
            apollo.stop()  # its poller must not outlive a platform that failed to start
        raise


def _build(
    live: LiveSettings,
    apollo: ApolloClient | None,
    make_publisher: PublisherFactory | None,
    clock: Callable[[], dt.datetime] | None,
    contract: Contract | None,
) -> Platform:
    settings = live.current()  # start-up values: what is not reloadable is read only here
    metrics = PlatformMetrics.from_environment()
    database = Database.from_settings(settings.database)
    metrics.watch_database(database, settings.database)
    c = settings.cache
    cache = metrics.count_cache(create_cache(c.url, c.key_prefix, c.breaker_seconds))
    tx = TransactionManager(database, max_retries=settings.transaction.max_retries)
    s = settings.security
    partner_keys = PartnerKeys.from_setting(s.secret_key)
    business_time = clock or business_clock(tx, settings)
    lifecycle = Lifecycle()
    components = {
        "tx": tx,
        "settings": live,  # services read reloadable keys from it at call time
        # Business time (due dates, deadlines, penalties): the development clock where it may
        # move; protocol timing below stays on the wall clock (utc_now).
        "clock": business_time,
        "cache": cache,
        # Listing reads cached aside only in a cache every process shares (Redis): the job
        # workers change listings too, and an in-process cache would never hear of it.
        "read_cache": cache if c.url else None,
        "passwords": Passwords(
            s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism, s.argon2_concurrency
        ),
        "tokens": Tokens(cache, s.token_ttl_seconds, s.refresh_ttl_seconds),
        "lockout": Lockout(cache, s.max_failed_logins, s.lockout_seconds),
        "api_secrets": ApiSecrets.from_settings(s, cache, utc_now),
        "partner_keys": partner_keys,
        "verification": VerificationCodes.from_settings(settings.verification, cache, utc_now),
        "pii": PersonalData.from_setting(s.secret_key),
        "gateway": create_gateway(settings.payment.gateway),
        "events": BusinessEvents(tx, metrics.business_recorder()),
        # Other modules' listeners to the lending core's events, told in its transactions.
        "lifecycle": lifecycle,
    }
    # Members' levels, read by other modules (level_of), evaluated on the lifecycle's events.
    components["levels"] = Levels(tx, live, business_time, lifecycle)
    # The lending core's view of the levels: each investor's discount on the interest fee.
    components["fee_discounts"] = components["levels"]
    # The outbox hands jobs over after commit; the jobs are the @job methods found below, once
    # every service exists (a service may take the outbox).
    jobs = JobRegistry()
    if make_publisher is None:
        publisher: JobPublisher = CeleryPublisher(
            make_app=functools.partial(celery_app, settings.jobs)
        )
    else:
        publisher = make_publisher(jobs)
    components["jobs"] = jobs
    components["publisher"] = publisher
    components["outbox"] = Outbox(
        tx, utc_now, publisher, jobs, OutboxPolicy.from_settings(settings.jobs)
    )
    components["bank_client"], components["bank"] = _bank(live, components, metrics)
    p = settings.partner
    key = p.platform_private_key
    platform_key = load_platform_key(p.platform_key_id, key.data if key else None)
    components["partner_auth"] = PartnerAuthenticator(
        tx, utc_now, cache, partner_keys, p.timestamp_window_seconds, platform_key
    )
    # Partners' callbacks: written as the core tells what happened, delivered by a job; their
    # times are the wall clock's (partners check a callback's timestamp against theirs).
    callbacks = PartnerCallbacks(tx, utc_now, components["outbox"])
    lifecycle.subscribe(callbacks)
    components["partner_callbacks"] = callbacks
    components["callback_delivery"] = CallbackDelivery(
        tx,
        utc_now,
        components["outbox"],
        partner_keys,
        platform_key,
        CallbackPolicy.from_settings(p),
    )
    components["partner_retention"] = PartnerRetention(
        tx, utc_now, RetentionPolicy.from_settings(p)
    )
    if contract is None:
        from server.declared import compile_contract  # spyne, only where it compiles

        contract = compile_contract()
    services = {}
    for f in contract.facades:
        if f.service not in services:
            services[f.service] = build_service(f.service, components)
    jobs.discover([*services.values(), *components.values()])
    if components["bank"] is not None:
        recon = next(s for s in services.values() if isinstance(s, ReconciliationService))
        metrics.watch_reconciliation(recon.figures)
    return Platform(
        live,
        database,
        cache,
        tx,
        bind(contract, services),
        services,
        components,
        metrics,
        jobs,
        apollo=apollo,
    )


def _bank(
    live: LiveSettings, components: dict, metrics: PlatformMetrics
) -> "tuple[HttpBankClient | None, BankOrders | None]":
    """The depository bank over HTTP and the platform's orders at it, when payment.gateway
    is BANK (the services take ``bank``; None means the sandbox gateway, which loads neither
    the bank's client nor urllib3)."""
    settings = live.current()
    if settings.payment.gateway != "BANK":
        return None, None
    from service.ocp.client import HttpBankClient

    if QUERY_JOB not in settings.jobs.schedule:
        raise ConfigError(
            f"jobs.schedule: must run {QUERY_JOB} (query on doubt) when payment.gateway is BANK"
        )
    if settings.bank.simulator:
        settings = dataclasses.replace(settings, bank=with_simulator_keys(settings.bank))
    client = HttpBankClient(settings, clock=utc_now)
    bank = BankOrders(
        components["tx"],
        live,
        utc_now,
        client,
        components["outbox"],
        components["pii"],
        metrics.bank_recorder(),
    )
    metrics.watch_bank_orders(bank.in_doubt_count)
    return client, bank


def openapi_document(platform: Platform) -> dict:
    return openapi.build(platform.facades, TITLE, VERSION)


def protocol_of(path: str, content_type: str = "") -> str:
    """The protocol a request belongs to: soap or soap12 (SOAP 1.1 or 1.2, by its
    Content-Type) on a SOAP endpoint's path, rest, or "-" for the pages around them."""
    if path.startswith(SOAP_PREFIX):
        return version_of(content_type).protocol
    return "rest" if path == PREFIX or path.startswith(PREFIX + "/") else "-"


def error_answer(
    path: str, error: BusinessError, rid: str, content_type: str = "", language: str = DEFAULT
) -> Response:
    """`error` answered as the protocol of `path` answers errors: a SOAP Fault on a SOAP
    endpoint's path (in the SOAP version of `content_type`), a JSON error anywhere else, with
    the request id, its message in `language`. For errors met outside the endpoints (here and
    in server/httpserver.py), so they are HTTP-level: the status is the catalogue's on both
    protocols."""
    if not path.startswith(SOAP_PREFIX):
        return error_response(error, rid, language=language)
    version = version_of(content_type)
    return fault_response(error, rid, version, error.error.status, language=language)


class Application:
    """The WSGI application: routes by path to the SOAP, REST and page handlers."""

    def __init__(
        self,
        platform: Platform,
        reporter: ErrorReporter | None = None,
        log_writer: LogWriter | None = None,
    ):
        settings = platform.settings.server
        self.platform = platform
        self.reporter = reporter or NullReporter()
        self.proxies = proxies = Proxies.from_settings(settings)
        authenticator = platform.service(MemberService)
        partners = PartnerAuthentication(
            platform.components["partner_auth"], PartnerRateLimiter(platform.cache)
        )
        dispatcher = Dispatcher(
            [
                Metrics(platform.metrics),
                *standard_chain(authenticator, self.reporter, partners, log_writer),
            ]
        )
        self.soap = SoapEndpoint(platform.facades, dispatcher, proxies, settings.max_body_bytes)
        self.rest = RestEndpoint(platform.facades, dispatcher, proxies, settings.max_body_bytes)
        self.bank_notify = banknotify.endpoint(platform.components, platform.metrics)

    def __call__(self, environ, start_response):
        # The request's one id, fixed here: the endpoints read it back, so their log lines
        # and answers and an error caught below all name the same request.
        rid = environ["HTTP_X_REQUEST_ID"] = request_id(environ.get("HTTP_X_REQUEST_ID"))
        path, content_type = environ.get("PATH_INFO", ""), environ.get("CONTENT_TYPE", "")
        try:
            response = self.route(Request(environ))
            response.make_sequence()  # the body is made here, where its failure is caught
        except Exception as e:
            self.unexpected(e, rid, protocol_of(path, content_type))
            error = BusinessError(errors.INTERNAL_ERROR)
            language = negotiate(environ.get("HTTP_ACCEPT_LANGUAGE"))
            response = error_answer(path, error, rid, content_type, language)
        response.headers.setdefault("X-Request-Id", rid)
        return response(environ, start_response)

    def unexpected(self, e: Exception, rid: str, protocol: str) -> None:
        """An exception that escaped every handler (the dispatcher's error funnel counts and
        reports those raised inside it): logged, counted and reported, once."""
        log.exception("unexpected error outside the dispatcher (request %s)", rid)
        self.platform.metrics.count_exception(e)
        tags = {"request_id": rid, "protocol": protocol, "facade": "-", "operation": "-"}
        self.reporter.report(e, tags)

    def route(self, request: Request) -> Answer | Response:
        path = request.path
        if path.startswith(PREFIX + "/") or path == PREFIX:
            return self.rest(request)
        if path.startswith(SOAP_PREFIX):
            if request.method in ("GET", "HEAD") and (
                path == CHANGELOG_PATH or asks(request, "doc")
            ):
                return self.document(request)
            return self.soap(request, path[len(SOAP_PREFIX) :])
        if path == banknotify.PATH and self.bank_notify is not None:
            return self.bank_notify(request)
        try:
            return self.page(path)
        except BusinessError as e:
            language = negotiate(request.headers.get("Accept-Language"))
            return error_answer(path, e, request.headers["X-Request-Id"], language=language)

    @functools.cached_property
    def openapi(self) -> bytes:
        """The OpenAPI document, rendered on its first request rather than at start (a
        worker that is never asked for it does not spend the time)."""
        return openapi.render(openapi_document(self.platform))

    @functools.cached_property
    def documents(self):
        """The facades' documents and the changelog page, made on the first request for one:
        a worker that is never asked does not load what writes them."""
        from server.contractdoc import Documents

        return Documents(self.platform.facades, VERSION)

    def document(self, request: Request) -> Response:
        """A facade's document (``?doc``) or the changelog page, with the caller's base URL in
        its links and examples; an unknown facade is 404, answered as for its WSDL."""
        base = self.proxies.base_url(request.environ)
        rid = request.headers["X-Request-Id"]
        if request.path == CHANGELOG_PATH:
            body = self.documents.changelog(base)
        else:
            body = self.documents.facade(request.path[len(SOAP_PREFIX) :], base)
        if body is None:
            error = BusinessError(errors.UNKNOWN_OPERATION, "no such service")
            language = negotiate(request.headers.get("Accept-Language"))
            return error_answer(request.path, error, rid, language=language)
        return Response(body, mimetype="text/html", headers={"X-Request-Id": rid})

    def page(self, path: str) -> Response:
        """The pages around the endpoints; UNKNOWN_OPERATION for anything else."""
        if path == "/services":
            return pages.service_list(self.platform.facades)
        if path == "/openapi.json":
            return Response(self.openapi, mimetype="application/json")
        if path == "/docs" or path.startswith("/docs/"):
            return pages.docs(path[len("/docs/") :] if path != "/docs" else "")
        if path == "/metrics":
            return self.platform.metrics.response()
        if path == "/health":
            return pages.health(self.platform.database, self.platform.cache)
        if path == pages.PLATFORM_KEY_PATH:
            return pages.platform_key(self.platform.components["partner_auth"].platform_key)
        if path == "/":
            return Response(status=302, headers={"Location": "/services"})
        raise BusinessError(errors.UNKNOWN_OPERATION, "no such resource")


def create_app(
    settings: Settings | LiveSettings,
    contract: Contract | None = None,
    log_writer: LogWriter | None = None,
) -> Application:
    """The application; ``log_writer`` is ``p2p serve``'s (server/logwriter.py), which makes
    the access log's lines in its own thread."""
    platform = create_platform(settings, contract=contract)
    return Application(platform, error_reporter(platform.settings.sentry), log_writer)
