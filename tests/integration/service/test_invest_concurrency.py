"""No oversubscription, ever: many threads (SQLite and MariaDB) and several processes, each with
its own platform (MariaDB), invest at once in the same listings until they are full. Afterwards
plain SQL checks every fen: raised never above the amount and equal to the investments, every
successful call's investment stored, frozen balances equal to the FROZEN investments, money
neither created nor lost, and every posting balanced; then the ledger audit runs too.

The hot listing's design (service/p2p/investing.py: the investor's writes first, the listing's
row last) under a worker killed mid-way: one process stops inside its transaction (after its
investment's INSERT, or after the listing's UPDATE, holding the row's lock while the others
queue on it) and is SIGKILLed; the others fill the listing; the same checks hold, the killed
request left nothing and every requestNo sent again answers as it first did. The same with
investments made together (service/p2p/hotlisting.py): processes of threads fill listings in
groups, and a worker killed inside a group's transaction (after the group's one INSERT of its
investments, or holding the listing's row after its UPDATE) leaves nothing of the group."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, event, text

import server.app
from conf import load_settings
from server.app import create_platform
from service.audit import LedgerAudit
from service.errors import BusinessError
from service.p2p import LoanService
from service.p2p.listing import AuditRequest
from service.payment import PaymentService
from service.security import Principal

D = Decimal
FUNDS = D("5000.00")
AMOUNTS = [D(a) for a in ("100.00", "150.55", "200.00", "333.33", "500.01", "1000.00")]
#: What a racing investor may legitimately be told; anything else fails the test.
EXPECTED = {"INVEST_ABOVE_REMAINING", "LOAN_STATE_INVALID", "INVEST_BELOW_MINIMUM"}


def invest_until_full(
    loans: LoanService, investor: Principal, loan_ids: list[int], seed: int, tag: str
) -> tuple[list[tuple[int, int, Decimal]], list[str]]:
    """Invest random amounts in random listings until every listing is full or funds run
    out; on "above remaining" take exactly what remains. Returns the investments the calls
    reported, as (investment id, loan id, amount), and the error codes met."""
    rng = random.Random(seed)
    made: list[tuple[int, int, Decimal]] = []
    codes: list[str] = []
    spent = D(0)
    open_ids = list(loan_ids)
    n = 0
    while open_ids and spent < FUNDS:
        loan_id = rng.choice(open_ids)
        loan = loans.get_loan(loan_id)
        remaining = loan.amount - loan.raised
        if loan.status != "RAISING" or remaining == 0:
            open_ids.remove(loan_id)
            continue
        amount = rng.choice(AMOUNTS)
        if remaining < loan.min_invest or rng.random() < 0.2:
            amount = remaining  # race for the last fen
        amount = min(amount, FUNDS - spent)
        if amount < loan.min_invest and amount != remaining:
            break
        n += 1
        try:
            vo = loans.invest(loan_id, amount, f"{tag}-{n}", investor)
        except BusinessError as e:
            codes.append(e.code)
            continue
        made.append((vo.investment_id, vo.loan_id, vo.amount))
        spent += amount
    return made, codes


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def setup(loans, make_member, platform, operator, loan_request):
    """Factory: ``n_loans`` RAISING listings and ``n_investors`` investors with FUNDS each."""
    payments = platform.service(PaymentService)

    def factory(n_loans: int, n_investors: int, amount: str) -> tuple[list[int], list[Principal]]:
        loan_ids = []
        for _ in range(n_loans):
            vo = loans.publish_loan(
                loan_request(amount=D(amount), min_invest=D("100.00")), operator
            )
            loans.audit_loan(vo.loan_id, AuditRequest(approve=True, reason=None), operator)
            loan_ids.append(vo.loan_id)
        people = []
        for i in range(n_investors):
            member = make_member("INVESTOR")
            who = Principal(member_id=member.member_id, role="INVESTOR")
            payments.recharge(FUNDS, f"fund-{i}", who)
            people.append(who)
        return loan_ids, people

    return factory


def check_every_fen(sql, platform, loan_ids, people, made) -> None:
    with sql.connect() as conn:

        def q(statement: str, **params):
            return conn.execute(text(statement), params).all()

        for loan_id, amount, raised, status in q(
            "SELECT id, amount, raised, status FROM loan ORDER BY id"
        ):
            assert raised <= amount, f"listing {loan_id} oversubscribed: {raised} > {amount}"
            assert (raised, status) == (amount, "FULL"), (loan_id, raised, amount, status)
        assert (
            q(
                "SELECT l.id FROM loan l LEFT JOIN investment i"
                " ON i.loan_id = l.id AND i.status <> 'RELEASED'"
                " GROUP BY l.id, l.raised HAVING l.raised <> COALESCE(SUM(i.amount), 0)"
            )
            == []
        )
        stored = {
            r[0]: (r[1], D(r[2]) / 100)
            for r in q("SELECT id, loan_id, amount FROM investment WHERE status = 'FROZEN'")
        }
        assert stored == {i: (loan, amt) for i, loan, amt in made}, "investments lost or extra"
        assert len(made) == len({i for i, _, _ in made})
        for who in people:
            [(available, frozen)] = q(
                "SELECT available, frozen FROM account WHERE member_id = :m", m=who.member_id
            )
            [(held,)] = q(
                "SELECT COALESCE(SUM(amount), 0) FROM investment"
                " WHERE investor_id = :m AND status = 'FROZEN'",
                m=who.member_id,
            )
            assert frozen == held, f"member {who.member_id}: frozen {frozen}, investments {held}"
            assert available + frozen == int(FUNDS * 100)
        assert (
            q(
                "SELECT posting_id FROM posting_entry GROUP BY posting_id HAVING"
                " SUM(CASE WHEN direction = 'D' THEN amount ELSE -amount END) <> 0"
            )
            == []
        )
        [(freezes,)] = q("SELECT COUNT(*) FROM posting WHERE business_type = 'INVEST'")
        assert freezes == len(made)
    report = LedgerAudit(platform.tx).run()
    assert report.ok, [(c.name, c.problems) for c in report.checks if not c.ok]


# -- threads, on SQLite and MariaDB ----------------------------------------------------------


def test_threads_never_oversubscribe(setup, platform, sql) -> None:
    loan_ids, people = setup(n_loans=3, n_investors=12, amount="9000.00")
    loans = platform.service(LoanService)
    results: list = [None] * len(people)
    start = threading.Barrier(len(people))

    def run(i: int) -> None:
        start.wait()
        results[i] = invest_until_full(loans, people[i], loan_ids, seed=i, tag=f"t{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(people))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in results), "a thread died"
    codes = {c for _, cs in results for c in cs}
    assert codes <= EXPECTED, codes
    made = [m for ms, _ in results for m in ms]
    check_every_fen(sql, platform, loan_ids, people, made)


def test_one_investors_parallel_invests_keep_the_cap_exact(
    setup, loans, platform, operator, loan_request, sql
) -> None:
    """maxInvestPerInvestor under one investor's own concurrent invests (the investor's account
    row is locked before what they hold is summed): of eight 300.00 invests at once under a
    1,000.00 cap, exactly three are taken and the others refused INVEST_CAP_EXCEEDED."""
    _, [who] = setup(n_loans=0, n_investors=1, amount="9000.00")
    vo = loans.publish_loan(
        loan_request(amount=D("9000.00"), max_invest_per_investor=D("1000.00")), operator
    )
    loans.audit_loan(vo.loan_id, AuditRequest(approve=True, reason=None), operator)
    service = platform.service(LoanService)
    outcomes: list = [None] * 8
    start = threading.Barrier(len(outcomes))

    def run(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = service.invest(vo.loan_id, D("300.00"), f"cap-{i}", who).status
        except BusinessError as e:
            outcomes[i] = e.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(outcomes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["FROZEN"] * 3 + ["INVEST_CAP_EXCEEDED"] * 5
    with sql.connect() as conn:
        raised, held = conn.execute(
            text(
                "SELECT l.raised, (SELECT SUM(amount) FROM investment WHERE loan_id = l.id)"
                " FROM loan l WHERE l.id = :l"
            ),
            {"l": vo.loan_id},
        ).one()
    assert raised == held == 90000  # fen


# -- processes, each its own platform, on MariaDB --------------------------------------------


def _process(url: str, now, investor: Principal, loan_ids: list[int], seed: int, out) -> None:
    """One process: its own platform on the shared database, the test's clock."""
    server.app.utc_now = lambda: now
    platform = create_platform(load_settings({"P2P_ENV": "test"}, {"database.url": url}))
    try:
        made, codes = invest_until_full(
            platform.service(LoanService), investor, loan_ids, seed, f"p{seed}"
        )
        out.put((seed, made, codes))
    except BaseException as e:  # report, so the parent fails with the cause
        out.put((seed, None, [repr(e)]))
    finally:
        platform.close()


def _made_by(procs, out) -> list[tuple[int, int, Decimal]]:
    """The investments the processes' calls reported, once each has exited cleanly having
    met only the refusals a racing investor may be told."""
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(made is not None for _, made, _ in results), results
    assert {c for _, _, cs in results for c in cs} <= EXPECTED
    return [m for _, ms, _ in results for m in ms]


@pytest.mark.parametrize(
    "database", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True
)
def test_processes_never_oversubscribe(setup, platform, sql, service_url, clock, database) -> None:
    loan_ids, people = setup(n_loans=2, n_investors=8, amount="6000.00")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(service_url, clock.now, who, loan_ids, i, out))
        for i, who in enumerate(people)
    ]
    for p in procs:
        p.start()
    check_every_fen(sql, platform, loan_ids, people, _made_by(procs, out))


# -- a worker killed inside its transaction, on MariaDB ----------------------------------------


VICTIM_AMOUNT = D("500.00")
VICTIM_REQUEST = "killed-1"


def _stopped(url: str, now, investor: Principal, loan_id: int, stop_after: str, paused) -> None:
    """One process invests VICTIM_AMOUNT as VICTIM_REQUEST and stops for good right after the
    first statement beginning with ``stop_after``, inside the transaction, telling ``paused``:
    the test kills it there."""
    server.app.utc_now = lambda: now
    platform = create_platform(load_settings({"P2P_ENV": "test"}, {"database.url": url}))

    def stop(conn, cursor, statement: str, *_) -> None:
        if statement.startswith(stop_after):
            paused.set()
            time.sleep(600)

    event.listen(platform.database.engine, "after_cursor_execute", stop)
    platform.service(LoanService).invest(loan_id, VICTIM_AMOUNT, VICTIM_REQUEST, investor)


def _queued_on_the_listing(sql) -> int:
    """How many connections to the test's database are inside an UPDATE of a listing now (the
    stopped worker's finished, so the others', waiting for its row lock)."""
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
                " AND command = 'Query' AND info LIKE 'UPDATE loan %'"
            )
        ).scalar_one()


def _others_wait_on_the_listing(sql) -> None:
    """Until another connection waits for the stopped worker's lock on the listing's row."""
    for _ in range(600):
        if _queued_on_the_listing(sql):
            return
        time.sleep(0.05)
    raise AssertionError("nobody waited on the stopped worker's lock")


@pytest.mark.slow
@pytest.mark.parametrize(
    "database", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True
)
@pytest.mark.parametrize("stop_after", ["INSERT INTO investment", "UPDATE loan"])
def test_a_worker_killed_inside_its_transaction_leaves_every_guarantee(
    setup, platform, sql, service_url, clock, database, stop_after
) -> None:
    [loan_id], people = setup(n_loans=1, n_investors=4, amount="9000.00")
    victim, survivors = people[0], people[1:]
    ctx = multiprocessing.get_context("fork")
    paused = ctx.Event()
    killed = ctx.Process(
        target=_stopped, args=(service_url, clock.now, victim, loan_id, stop_after, paused)
    )
    killed.start()
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(service_url, clock.now, who, [loan_id], i, out))
        for i, who in enumerate(survivors, start=1)
    ]
    try:
        assert paused.wait(120), "the worker never reached the statement it stops after"
        for p in procs:
            p.start()
        if stop_after == "UPDATE loan":  # killed holding the listing's row: others queue on it
            _others_wait_on_the_listing(sql)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
    killed.join(timeout=60)
    assert killed.exitcode == -signal.SIGKILL

    made = _made_by(procs, out)
    check_every_fen(sql, platform, [loan_id], people, made)

    with sql.connect() as conn:  # the killed transaction rolled back whole
        left = conn.execute(
            text(
                "SELECT (SELECT COUNT(*) FROM investment WHERE investor_id = :m)"
                " + (SELECT COUNT(*) FROM request_record WHERE request_no = :r)"
            ),
            {"m": victim.member_id, "r": VICTIM_REQUEST},
        ).scalar_one()
        stored = conn.execute(
            text("SELECT id, investor_id, amount, request_no FROM investment ORDER BY id")
        ).all()
    assert left == 0
    loans = platform.service(LoanService)
    codes = []
    for _ in range(2):  # the killed request sent again, the listing full now: refused alike
        with pytest.raises(BusinessError) as refused:
            loans.invest(loan_id, VICTIM_AMOUNT, VICTIM_REQUEST, victim)
        codes.append(refused.value.code)
    assert codes == ["LOAN_STATE_INVALID"] * 2
    by_id = {who.member_id: who for who in people}
    for investment_id, investor_id, fen, request_no in stored:
        again = loans.invest(loan_id, D(fen) / 100, request_no, by_id[investor_id])
        assert (again.investment_id, again.status) == (investment_id, "FROZEN")
    check_every_fen(sql, platform, [loan_id], people, made)


# -- investments made together (service/p2p/hotlisting.py), on MariaDB ------------------------


def _threaded_process(url: str, now, investors: list[Principal], loan_ids, seed: int, out) -> None:
    """One process, a thread per investor, all investing at once: the worker's concurrent
    investments in a listing are made in groups."""
    server.app.utc_now = lambda: now
    platform = create_platform(load_settings({"P2P_ENV": "test"}, {"database.url": url}))
    loans = platform.service(LoanService)
    results: list = [None] * len(investors)
    start = threading.Barrier(len(investors))

    def run(i: int) -> None:
        start.wait()
        results[i] = invest_until_full(
            loans, investors[i], loan_ids, seed * 100 + i, f"p{seed}t{i}"
        )

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(investors))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        made = [m for r in results if r is not None for m in r[0]]
        codes = [c for r in results if r is not None for c in r[1]]
        out.put((seed, made if None not in results else None, codes))
    finally:
        platform.close()


@pytest.mark.parametrize(
    "database", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True
)
def test_processes_of_threads_never_oversubscribe(
    setup, platform, sql, service_url, clock, database
) -> None:
    loan_ids, people = setup(n_loans=2, n_investors=12, amount="20000.00")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_threaded_process,
            args=(service_url, clock.now, people[i::3], loan_ids, i, out),
        )
        for i in range(3)
    ]
    for p in procs:
        p.start()
    check_every_fen(sql, platform, loan_ids, people, _made_by(procs, out))


GROUP = 4  # the killed worker's investments: one alone, then a group of the others


def _stopped_in_a_group(url: str, now, investors, loan_id: int, stop_after: str, paused, out):
    """One process whose first investment (alone) waits, at each statement, until its
    GROUP - 1 other threads' are queued behind it, so that those are made as one group; it
    reports the first one's outcome, and stops for good inside the group's transaction right
    after the group's first statement beginning with ``stop_after``, telling ``paused`` that
    statement's parameters: the test kills it there."""
    server.app.utc_now = lambda: now
    platform = create_platform(load_settings({"P2P_ENV": "test"}, {"database.url": url}))
    loans = platform.service(LoanService)

    def wait_for_the_group(conn, cursor, statement: str, *_) -> None:
        if threading.current_thread().name == "alone":
            for _ in range(2000):
                queue = loans._groups._keys.get(loan_id)
                if queue is not None and len(queue.waiting) == GROUP - 1:
                    return
                time.sleep(0.005)
            raise AssertionError("the group never queued")

    def stop(conn, cursor, statement: str, parameters, *_) -> None:
        if threading.current_thread().name != "alone" and statement.startswith(stop_after):
            paused.put(tuple(parameters))
            time.sleep(600)

    event.listen(platform.database.engine, "before_cursor_execute", wait_for_the_group)
    event.listen(platform.database.engine, "after_cursor_execute", stop)

    def invest(i: int) -> None:
        vo = loans.invest(loan_id, VICTIM_AMOUNT, f"{VICTIM_REQUEST}-{i}", investors[i])
        out.put((vo.investment_id, vo.loan_id, vo.amount))

    threads = [threading.Thread(target=invest, args=(0,), name="alone")]
    threads[0].start()
    for _ in range(2000):  # the first is running alone before the others arrive
        if loan_id in loans._groups._keys:
            break
        time.sleep(0.005)
    for i in range(1, GROUP):
        threads.append(threading.Thread(target=invest, args=(i,), name=f"grouped-{i}"))
        threads[-1].start()
    for t in threads:
        t.join()


@pytest.mark.slow
@pytest.mark.parametrize(
    "database", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True
)
@pytest.mark.parametrize("stop_after", ["INSERT INTO investment", "UPDATE loan"])
def test_a_worker_killed_inside_a_group_leaves_every_guarantee(
    setup, platform, sql, service_url, clock, database, stop_after
) -> None:
    [loan_id], people = setup(n_loans=1, n_investors=GROUP + 3, amount="9000.00")
    victims, survivors = people[:GROUP], people[GROUP:]
    ctx = multiprocessing.get_context("fork")
    paused, reported = ctx.Queue(), ctx.Queue()
    killed = ctx.Process(
        target=_stopped_in_a_group,
        args=(service_url, clock.now, victims, loan_id, stop_after, paused, reported),
    )
    killed.start()
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(service_url, clock.now, who, [loan_id], i, out))
        for i, who in enumerate(survivors, start=1)
    ]
    try:
        parameters = paused.get(timeout=120)
        alone = reported.get(timeout=60)
        if stop_after == "INSERT INTO investment":  # the group's one INSERT of its rows
            assert len(parameters) == 9 * (GROUP - 1), parameters
        else:  # the group's sum into raised, in fen, holding the listing's row
            assert int(VICTIM_AMOUNT * 100) * (GROUP - 1) in parameters, parameters
        for p in procs:
            p.start()
        if stop_after == "UPDATE loan":
            _others_wait_on_the_listing(sql)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
    killed.join(timeout=60)
    assert killed.exitcode == -signal.SIGKILL

    made = [alone, *_made_by(procs, out)]
    check_every_fen(sql, platform, [loan_id], people, made)

    grouped = [f"{VICTIM_REQUEST}-{i}" for i in range(1, GROUP)]
    with sql.connect() as conn:  # the group's transaction rolled back whole
        left = conn.execute(
            text(
                "SELECT (SELECT COUNT(*) FROM investment WHERE request_no IN :r)"
                " + (SELECT COUNT(*) FROM request_record WHERE request_no IN :r)"
            ).bindparams(bindparam("r", expanding=True)),
            {"r": grouped},
        ).scalar_one()
    assert left == 0
    loans = platform.service(LoanService)
    for i, request_no in enumerate(grouped, start=1):  # sent again: the listing is full now
        with pytest.raises(BusinessError) as refused:
            loans.invest(loan_id, VICTIM_AMOUNT, request_no, victims[i])
        assert refused.value.code == "LOAN_STATE_INVALID"
    again = loans.invest(loan_id, VICTIM_AMOUNT, f"{VICTIM_REQUEST}-0", victims[0])
    assert (again.investment_id, again.status) == (alone[0], "FROZEN")
    check_every_fen(sql, platform, [loan_id], people, made)
