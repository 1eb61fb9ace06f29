"""getLoan and listLoans cached aside in a real Redis (a redis-server this module starts on a
free loopback port): hits and misses, eviction after commit only, the reader/writer race,
the stampede guard, TTL expiry, Redis killed and restarted under load, and the answers
written once per cached value over REST and SOAP: each audience's own, changed at once."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
import redis
from werkzeug.test import Client

from facade.p2p.loan import NS
from facade.types import COMMON_NS
from server.app import Application, Platform
from service import caching
from service.p2p import AuditRequest, LoanService
from service.p2p.base import LOAN_PAGES
from service.payment import PaymentService
from service.security import Principal

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
#: Reads as an operator, who sees every listing in full (what the cache holds).
STAFF = Principal(member_id=1, role="OPERATOR")


class RedisProcess:
    """A throwaway redis-server on one loopback port, killed and restarted at will."""

    def __init__(self, tmp_path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tmp_path
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self._dir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
            finally:
                client.close()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisProcess]:
    if not shutil.which("redis-server") and not shutil.which(REDIS_SERVER):
        pytest.skip("needs redis-server (Debian's redis-server package) to start a real Redis")
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def make_cached(make_platform, redis_server) -> Callable[..., Platform]:
    def factory(**overrides) -> Platform:
        return make_platform(
            **{
                "cache.url": redis_server.url,
                "cache.key_prefix": f"t-{uuid.uuid4().hex[:8]}:",
                **overrides,
            }
        )

    return factory


class DatabaseReads:
    """Counts the listing repository's reads of one LoanService: one listing's row (getLoan),
    a search (a listLoans page's ids) and the listings a page's rows were read for (listLoans'
    listings missing from the cache); `during` runs inside each row's read after it was read,
    `after_search` after a search (a test's interleaving points)."""

    def __init__(self, loans: LoanService) -> None:
        self.gets = 0
        self.searches = 0
        self.listed: list[int] = []
        self.during: Callable[[], None] = lambda: None
        self.after_search: Callable[[], None] = lambda: None
        repository = loans._loans
        row, rows, search = repository.row, repository.rows, repository.search_ids

        def counted_row(connection, loan_id):
            self.gets += 1
            found = row(connection, loan_id)
            self.during()
            return found

        def counted_rows(connection, loan_ids):
            self.listed.extend(loan_ids)
            return rows(connection, loan_ids)

        def counted_search(connection, **kwargs):
            self.searches += 1
            found = search(connection, **kwargs)
            self.after_search()
            return found

        repository.row = counted_row
        repository.rows = counted_rows
        repository.search_ids = counted_search


def lookups(platform: Platform, result: str) -> float:
    value = platform.metrics.registry.get_sample_value(
        "p2p_cache_lookups_total", {"result": result}
    )
    return value or 0.0


@pytest.fixture
def published(make_cached, operator, loan_request):
    """A platform on Redis, its LoanService with counted reads, and one published listing."""
    platform = make_cached()
    loans = platform.service(LoanService)
    loan = loans.publish_loan(loan_request(), operator)
    return platform, loans, DatabaseReads(loans), loan


def test_a_second_read_hits_redis(published) -> None:
    platform, loans, reads, loan = published
    assert loans.get_loan(loan.loan_id, STAFF) == loan
    assert loans.get_loan(loan.loan_id, STAFF) == loan
    assert loans.list_loans(status="PENDING_AUDIT", caller=STAFF).items == (loan,)
    assert loans.list_loans(status="PENDING_AUDIT", page=1, page_size=20, caller=STAFF).items == (
        loan,
    )
    assert (reads.gets, reads.searches, reads.listed) == (1, 1, [])  # the page's listing: a hit
    # get_loan: a miss, a hit; the page: a miss, a hit; its listing, on each page read: a hit.
    assert (lookups(platform, "miss"), lookups(platform, "hit")) == (2, 4)


def test_a_commit_evicts_the_listing_and_the_pages(published, operator) -> None:
    _, loans, reads, loan = published
    loans.get_loan(loan.loan_id, STAFF), loans.list_loans(status="RAISING", caller=STAFF)
    approved = loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    assert loans.get_loan(loan.loan_id, STAFF) == approved
    assert loans.get_loan(loan.loan_id, STAFF).status == "RAISING"
    assert loans.list_loans(status="RAISING", caller=STAFF).items == (approved,)
    assert (reads.gets, reads.searches) == (2, 2)


@pytest.fixture
def raising(make_cached, operator, loan_request, make_member):
    """A platform on Redis with counted reads, a RAISING listing of 1,000.00 and a funded
    investor."""
    platform = make_cached()
    loans = platform.service(LoanService)
    terms = {"amount": Decimal("1000.00"), "term_months": 3}
    loan = loans.publish_loan(loan_request(**terms), operator)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    investor = Principal(member_id=make_member("INVESTOR").member_id, role="INVESTOR")
    platform.service(PaymentService).recharge(Decimal("5000.00"), "r-1", investor)
    return platform, loans, DatabaseReads(loans), loan.loan_id, investor


def test_an_investment_evicts_its_listing_and_no_page(raising) -> None:
    """Pages hold their listings' ids: an investment that leaves the listing RAISING evicts
    the listing alone, and the cached page answers its new raised at once; the one that fills
    it moves it out of the RAISING page, which is read again."""
    _, loans, reads, loan_id, investor = raising
    assert loans.list_loans(status="RAISING", caller=STAFF).items[0].raised == 0
    loans.list_loans(status="RAISING", caller=STAFF)
    assert (reads.searches, reads.listed) == (1, [loan_id])
    loans.invest(loan_id, Decimal("400.00"), "i-1", investor)
    assert loans.list_loans(status="RAISING", caller=STAFF).items[0].raised == Decimal("400.00")
    page = loans.list_loans(status="RAISING", caller=STAFF)  # its listing decoded from Redis
    assert loans.list_loans(status="RAISING", caller=STAFF) is page  # kept while unchanged
    assert loans.get_loan(loan_id, STAFF) is page.items[0]  # getLoan's cached value
    assert (reads.searches, reads.listed, reads.gets) == (1, [loan_id, loan_id], 0)
    loans.invest(loan_id, Decimal("600.00"), "i-2", investor)  # the last 600.00: FULL
    assert loans.list_loans(status="RAISING", caller=STAFF).items == ()
    assert loans.list_loans(status="FULL", caller=STAFF).items[0].raised == Decimal("1000.00")
    assert reads.searches == 3


def test_a_page_never_shows_a_listing_its_audience_may_no_longer_see(
    raising, operator, monkeypatch
) -> None:
    """A page's ids read before a listing is cancelled, its listings after (the commit's
    eviction of the pages came between): the public's page leaves the cancelled listing out,
    an operator's shows it as it is now."""
    _, loans, _, loan_id, _ = raising
    assert [x.loan_id for x in loans.list_loans().items] == [loan_id]
    loans.list_loans(caller=STAFF)
    evict = loans.cache_aside.evict_after_commit
    monkeypatch.setattr(  # the pages stay as they were read before the commit
        loans.cache_aside,
        "evict_after_commit",
        lambda region, identity=None: region is LOAN_PAGES or evict(region, identity),
    )
    loans.cancel_loan(loan_id, "资料有误", operator)
    assert loans.list_loans().items == ()
    assert loans.list_loans(caller=Principal(member_id=99, role="INVESTOR")).items == ()
    assert [x.status for x in loans.list_loans(caller=STAFF).items] == ["CANCELLED"]


def test_a_rollback_evicts_nothing(published, operator) -> None:
    platform, loans, reads, loan = published
    loans.get_loan(loan.loan_id, STAFF)

    def approve_then_fail():
        loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)  # joins, evicts
        raise RuntimeError("rolled back after the eviction was registered")

    with pytest.raises(RuntimeError):
        platform.tx.run(approve_then_fail)
    assert loans.get_loan(loan.loan_id, STAFF) == loan  # still PENDING_AUDIT, from the cache
    assert reads.gets == 1


def test_a_reader_racing_a_commit_never_caches_the_old_row(published, operator) -> None:
    """The reader has read the PENDING_AUDIT row; the audit then commits and evicts; only then
    does the reader store what it read. The next read must see RAISING."""
    _, loans, reads, loan = published
    row_read, committed = threading.Event(), threading.Event()

    def pause_the_first_read():
        reads.during = lambda: None
        row_read.set()
        assert committed.wait(10)

    reads.during = pause_the_first_read
    seen = []
    reader = threading.Thread(target=lambda: seen.append(loans.get_loan(loan.loan_id, STAFF)))
    reader.start()
    assert row_read.wait(10)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)  # commit, then evict
    committed.set()
    reader.join(10)
    assert seen[0].status == "PENDING_AUDIT"  # what it read before the commit
    assert loans.get_loan(loan.loan_id, STAFF).status == "RAISING"
    assert loans.get_loan(loan.loan_id, STAFF).status == "RAISING"
    assert reads.gets == 2


class LockAttempts:
    """Wraps the cache of a CacheAside to count attempts at the stampede lock."""

    def __init__(self, cache) -> None:
        self._cache = cache
        self.count = 0
        self.changed = threading.Condition()

    def add(self, key, value, ttl_seconds):
        won = self._cache.add(key, value, ttl_seconds)
        if key.startswith("lock:"):
            with self.changed:
                self.count += 1
                self.changed.notify_all()
        return won

    def __getattr__(self, name):
        return getattr(self._cache, name)


def test_a_stampede_on_one_listing_reads_the_database_once(published, monkeypatch) -> None:
    _, loans, reads, loan = published
    callers = 10
    attempts = LockAttempts(loans.cache_aside._cache)
    loans.cache_aside._cache = attempts
    # The holder is kept until every caller has missed, which on a loaded machine may take
    # longer than the production wait and lock lifetime: lengthen both, so the test shows the
    # guard and not the machine's speed.
    loans.cache_aside._wait = 30
    monkeypatch.setattr(caching, "LOCK_TTL_SECONDS", 30)

    def hold_until_everyone_missed():
        with attempts.changed:
            assert attempts.changed.wait_for(lambda: attempts.count == callers, timeout=10)

    reads.during = hold_until_everyone_missed
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(loans.get_loan(loan.loan_id, STAFF)))
        for _ in range(callers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == [loan] * callers
    assert reads.gets == 1


def test_entries_expire_after_the_configured_ttl(make_cached, operator, loan_request) -> None:
    platform = make_cached(**{"cache.loan_ttl_seconds": 1})
    loans = platform.service(LoanService)
    loan = loans.publish_loan(loan_request(), operator)
    reads = DatabaseReads(loans)
    loans.get_loan(loan.loan_id, STAFF), loans.get_loan(loan.loan_id, STAFF)
    assert reads.gets == 1
    time.sleep(1.2)
    loans.get_loan(loan.loan_id, STAFF)
    assert reads.gets == 2


def test_the_ttl_is_reloadable(published) -> None:
    platform, loans, reads, loan = published
    platform.settings.replace(lambda s: replace(s, cache=replace(s.cache, loan_ttl_seconds=1)))
    loans.get_loan(loan.loan_id, STAFF)
    time.sleep(1.2)
    loans.get_loan(loan.loan_id, STAFF)
    assert reads.gets == 2


@pytest.mark.slow
def test_redis_killed_and_restarted_under_load(make_cached, redis_server, operator, loan_request):
    """A loop of getLoan while Redis is killed and started again on the same port: every call
    answers the right listing, the outage is counted as errors, hits come back by themselves."""
    platform = make_cached(**{"cache.breaker_seconds": 0.3})
    loans = platform.service(LoanService)
    loan = loans.publish_loan(loan_request(), operator)
    stop = threading.Event()
    answers, failures, slowest = [], [], [0.0]

    def load() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answers.append(loans.get_loan(loan.loan_id, STAFF))
            except Exception as e:  # any error reaching the caller fails the test
                failures.append(e)
            slowest[0] = max(slowest[0], time.perf_counter() - started)
            time.sleep(0.002)

    def wait_for(condition, what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.01)

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: lookups(platform, "hit") >= 20, "hits before the outage")
        redis_server.kill()
        errors_before = lookups(platform, "error")
        wait_for(lambda: lookups(platform, "error") >= errors_before + 20, "errors counted")
        calls_in_outage = len(answers)
        wait_for(lambda: len(answers) >= calls_in_outage + 50, "answers while Redis is down")
        redis_server.start()
        hits_after = lookups(platform, "hit")
        wait_for(lambda: lookups(platform, "hit") >= hits_after + 20, "hits after the restart")
    finally:
        stop.set()
        for w in workers:
            w.join(10)
    assert failures == []
    assert answers and all(a == loan for a in answers)
    assert slowest[0] < 1.0  # a dead Redis costs a call little
    assert platform.cache.ping()


def test_every_command_that_changes_a_listing_evicts_it(
    platform, operator, borrower, loan_request, make_member, clock
) -> None:
    """On the embedded default (in-process cache): before each command the listing and a page
    are cached; after it, both answer what the database says (read in a transaction, which
    bypasses the cache)."""
    loans, payments = platform.service(LoanService), platform.service(PaymentService)
    numbers = iter(range(1, 100))

    def funded(role: str, member_id: int | None = None) -> Principal:
        if member_id is None:
            member_id = make_member(role).member_id
        caller = Principal(member_id=member_id, role=role)
        payments.recharge(Decimal("5000.00"), f"r-{next(numbers)}", caller)
        return caller

    def fresh(loan_id: int):
        tx = platform.tx
        return tx.run(loans.get_loan, loan_id, STAFF), tx.run(loans.list_loans, caller=STAFF)

    def changes(loan_id: int, command: Callable[[], object], status: str) -> None:
        loans.get_loan(loan_id, STAFF), loans.list_loans(caller=STAFF)  # cached now
        command()
        listing, page = fresh(loan_id)
        assert listing.status == status
        assert loans.get_loan(loan_id, STAFF) == listing
        assert loans.list_loans(caller=STAFF) == page

    approve, terms = AuditRequest(True, None), {"amount": Decimal("1000.00"), "term_months": 3}
    one = loans.publish_loan(loan_request(**terms), operator).loan_id
    changes(one, lambda: loans.publish_loan(loan_request(), operator), "PENDING_AUDIT")
    assert loans.list_loans(caller=STAFF).total == 2
    changes(one, lambda: loans.update_loan(one, loan_request(**terms), operator), "PENDING_AUDIT")
    changes(one, lambda: loans.audit_loan(one, approve, operator), "RAISING")
    investor = funded("INVESTOR")
    changes(one, lambda: loans.invest(one, Decimal("400.00"), "i-1", investor), "RAISING")
    assert loans.get_loan(one, STAFF).raised == Decimal("400.00")
    changes(one, lambda: loans.invest(one, Decimal("600.00"), "i-2", investor), "FULL")
    changes(one, lambda: loans.disburse_loan(one, "d-1", operator), "REPAYING")
    owner = funded("BORROWER", borrower.member_id)
    changes(one, lambda: loans.settle_early(one, "s-1", owner), "SETTLED")

    two = loans.publish_loan(loan_request(), operator).loan_id
    loans.audit_loan(two, approve, operator)
    changes(two, lambda: loans.cancel_loan(two, "资料有误", operator), "CANCELLED")
    three = loans.publish_loan(loan_request(raise_days=1), operator).loan_id
    loans.audit_loan(three, approve, operator)
    clock.advance(days=2)
    changes(three, loans.close_expired_loans, "FAILED")


class Web:
    """getLoan and listLoans over REST and SOAP on `platform`, as `who` (a Principal, or None
    for an anonymous caller): the answers' bodies, as callers get them."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http = Client(Application(platform))
        self._tokens: dict[int, str] = {}

    def _token(self, who: Principal) -> str:
        if who.member_id not in self._tokens:
            tokens = self.platform.components["tokens"]
            self._tokens[who.member_id] = tokens.issue(who.member_id, who.role).access
        return self._tokens[who.member_id]

    def _headers(self, who: Principal | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self._token(who)}"}

    def rest(self, loan_id: int, who: Principal | None) -> bytes:
        return self.http.get(f"/api/v1/loans/{loan_id}", headers=self._headers(who)).data

    def page(self, who: Principal | None) -> bytes:
        return self.http.get("/api/v1/loans?pageSize=20", headers=self._headers(who)).data

    def soap(self, loan_id: int, who: Principal | None) -> bytes:
        token = ""
        if who is not None:
            token = f'<c:AuthToken xmlns:c="{COMMON_NS}"><c:token>{self._token(who)}</c:token>'
            token += "</c:AuthToken>"
        envelope = (
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:p="{NS}"><soapenv:Header>{token}</soapenv:Header><soapenv:Body><p:getLoan>'
            f"<p:loanId>{loan_id}</p:loanId></p:getLoan></soapenv:Body></soapenv:Envelope>"
        )
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        return self.http.post("/services/LoanFacade", data=envelope, headers=headers).data


@pytest.fixture
def audiences(make_cached, operator, borrower, make_member, loan_request):
    """A platform on Redis seen over HTTP, a RAISING listing of the test's borrower (with a
    reject reason left from a first audit: only the borrower and operators see it), and
    every audience of it: the operator, its borrower, another borrower, an investor and an
    anonymous caller."""
    platform = make_cached()
    loans = platform.service(LoanService)
    loan = loans.publish_loan(loan_request(), operator)
    loans.audit_loan(loan.loan_id, AuditRequest(False, "材料不全"), operator)
    loans.update_loan(loan.loan_id, loan_request(), operator)
    loans.audit_loan(loan.loan_id, AuditRequest(True, None), operator)
    other = make_member("BORROWER").member_id
    investor = make_member("INVESTOR").member_id
    who = {
        "operator": operator,
        "borrower": Principal(member_id=borrower.member_id, role="BORROWER"),
        "other borrower": Principal(member_id=other, role="BORROWER"),
        "investor": Principal(member_id=investor, role="INVESTOR"),
        "anonymous": None,
    }
    return Web(platform), loans, loan.loan_id, who


FULL = ("operator", "borrower")


def test_every_audience_gets_its_own_answer_from_the_cache(audiences) -> None:
    """Called in turn, over and over (every answer cached and written once by then), each
    caller gets what it may see and nothing another audience sees: the borrower's id only
    by the operator and the borrower, on REST, SOAP and in listLoans' page."""
    web, _, loan_id, who = audiences
    borrower_id = str(who["borrower"].member_id)
    for _ in range(3):
        for name, caller in who.items():
            rest, soap, page = (
                web.rest(loan_id, caller),
                web.soap(loan_id, caller),
                web.page(caller),
            )
            full = name in FULL
            assert json.loads(rest).get("borrowerId") == (int(borrower_id) if full else None)
            assert (f"<tns:borrowerId>{borrower_id}</tns:borrowerId>".encode() in soap) is full
            assert (b"rejectReason" in rest) is False  # approved: the reason was cleared
            items = json.loads(page)["items"]
            assert [item.get("borrowerId") for item in items] == [
                int(borrower_id) if full else None
            ]
    full, public = web.rest(loan_id, who["operator"]), web.rest(loan_id, None)
    assert {web.rest(loan_id, who[name]) for name in FULL} == {full}
    assert {web.rest(loan_id, who[name]) for name in who if name not in FULL} == {public}


def test_a_change_is_answered_at_once_to_every_audience(audiences, operator, loan_request):
    """Each audience's answers cached and written, then the listing changes: the next call of
    every caller answers the change (a cancellation only the parties see, then a new
    listing on the page), never the bytes written before it."""
    web, loans, loan_id, who = audiences
    ask = {
        name: (lambda c=c: (web.rest(loan_id, c), web.soap(loan_id, c), web.page(c)))
        for name, c in who.items()
    }
    before = {name: ask[name]() for name in who}
    assert before == {name: ask[name]() for name in who}  # written once, answered alike
    loans.cancel_loan(loan_id, "资料有误", operator)
    for name in who:
        rest, soap, page = ask[name]()
        assert rest != before[name][0] and soap != before[name][1]
        statuses = [item["status"] for item in json.loads(page)["items"]]
        if name in FULL:
            assert json.loads(rest)["status"] == "CANCELLED"
            assert b"<tns:status>CANCELLED</tns:status>" in soap
            assert statuses == ["CANCELLED"]
        else:
            assert json.loads(rest)["code"] == "LOAN_NOT_FOUND"
            assert b"LOAN_NOT_FOUND" in soap
            assert statuses == []
    loans.publish_loan(loan_request(title="新的标的"), operator)
    titles = [item["title"] for item in json.loads(web.page(who["operator"]))["items"]]
    assert titles == ["新的标的", "周转借款"]
