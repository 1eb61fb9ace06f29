"""Benchmark the cost of a partner call's signature: the same page of listings read unsigned
(LoanFacade.listLoans, public) and signed (PartnerFacade.listPartnerListings) by an HMAC app
and by an RSA app, side by side in one run, and each verification alone.

Run from the repository root: ``python bench/partner_signature.py [--count 400] [--rounds 3]``.

The platform is the composition root's on a fresh SQLite file with the in-process cache (the
embedded default; no listing cache there, so both reads query the database), its WSGI
application called in process through werkzeug's test client, one call at a time. Ten RAISING
listings are on the page. The partner's signatures (fresh nonces) are made before each
measurement: the partner's cost, not the platform's. A signed call costs the platform: the
app and key read from the database, the signature verified over the raw bytes, the nonce
claimed in the cache, two token buckets, and the answer signed (HMAC with the app's key; RSA
apps with the platform's 2048-bit key). Each round measures, in alternating order:
``unsigned``, ``hmac``, ``rsa`` (calls), ``verify-hmac`` and ``verify-rsa`` (the primitive
alone) and ``sign-answer-rsa`` (the platform's signature of an RSA app's answer alone). The
figures to read are the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "clients" / "python"))

from p2p_partner import HmacKey, PartnerClient, RsaKey  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from bench.members import sign_up  # noqa: E402
from conf import load_settings  # noqa: E402
from dao import migrate  # noqa: E402
from server.app import Application, create_platform  # noqa: E402
from service.jobs import InProcessPublisher  # noqa: E402
from service.ocp.signing import generate_keypair  # noqa: E402
from service.p2p import AuditRequest, LoanRequest, LoanService  # noqa: E402
from service.partner import PartnerAdminService, PartnerAppRequest, signing  # noqa: E402
from service.security import Principal  # noqa: E402

PASSWORD = "Bench2024pass"  # noqa: S105 - a throwaway benchmark database
LISTINGS = "/api/v1/partner/listings"
QUERY = "page=1&pageSize=10"
KINDS = ("unsigned", "hmac", "rsa", "verify-hmac", "verify-rsa", "sign-answer-rsa")
#: Calls an app makes in one measurement: well within listPartnerListings' own limit for
#: each app (60 at once), so the bench measures signed calls, never refusals.
CALLS_AN_APP = 20


class Bench:
    def __init__(self, url: str, count: int):
        migrate.upgrade(url)
        platform_private, _ = generate_keypair()
        settings = load_settings(
            {"P2P_ENV": "test"},
            {
                "database.url": url,
                "partner.platform_private_key": platform_private.decode(),
                "logging.level": "WARNING",
            },
        )
        self.platform = create_platform(settings, publisher=InProcessPublisher)
        self.http = Client(Application(self.platform))
        borrower = sign_up(self.platform, "13900000001", PASSWORD, "BORROWER", 1)
        operator = Principal(borrower.member_id, "OPERATOR")
        loans = self.platform.service(LoanService)
        for k in range(10):
            terms = LoanRequest(
                f"listing {k}", "bench", borrower.member_id, Decimal("10000.00"),
                Decimal("9.5"), 12, "EQUAL_INSTALLMENT", Decimal("100.00"), None, 30,
            )  # fmt: skip
            loans.audit_loan(
                loans.publish_loan(terms, operator).loan_id, AuditRequest(True, None), operator
            )
        admin = self.platform.service(PartnerAdminService)
        app_private, self.app_public = generate_keypair()
        self.platform_key = self.platform.components["partner_auth"].platform_key
        platform_public = self.platform_key.public_pem()
        self.clients: dict[str, list[PartnerClient]] = {"hmac": [], "rsa": []}
        for n in range(-(-count // CALLS_AN_APP)):
            for kind in ("hmac", "rsa"):
                request = PartnerAppRequest(
                    f"bench {kind} {n}", "bench", None, ["LISTING_READ"], 100_000, 10_000
                )
                app = admin.register_partner_app(request, operator).app_id
                if kind == "hmac":
                    self.secret = admin.issue_partner_key(
                        app, "h1", kind.upper() + "_SHA256", operator
                    ).secret
                    key = HmacKey("h1", self.secret)
                else:
                    admin.issue_partner_key(
                        app, "r1", "RSA_SHA256", operator, self.app_public.decode()
                    )
                    key = RsaKey("r1", app_private)
                self.clients[kind].append(
                    PartnerClient("http://bench", app, key, platform_public_key=platform_public)
                )

    def call(self, headers: dict | None) -> None:
        path = LISTINGS if headers is not None else "/api/v1/loans"
        answer = self.http.get(path, query_string=QUERY, headers=headers or {})
        if answer.status_code != 200:
            raise SystemExit(f"{path} answered {answer.status_code}: {answer.data!r}")
        if headers is not None and "X-P2P-Signature" not in answer.headers:
            raise SystemExit("a signed call's answer is not signed")


def timed(calls: int, call: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for k in range(calls):
        call(k)
    return calls / (time.perf_counter() - start)


def work(bench: Bench, count: int) -> dict[str, Callable[[int], object]]:
    """What each measurement does its k-th time; the partners' signatures made beforehand."""
    signed = {
        kind: [
            clients[k % len(clients)].signature_headers("GET", LISTINGS, QUERY, b"")
            for k in range(count)
        ]
        for kind, clients in bench.clients.items()
    }
    text = signing.canonical_request(
        "GET", LISTINGS.encode(), QUERY.encode(), "app", "k", "1", "n" * 16, "0" * 64
    )
    hmac_signature = signing.sign_hmac(bench.secret, text)
    rsa_signature = bench.clients["rsa"][0].key.sign(text)
    return {
        "unsigned": lambda k: bench.call(None),
        "hmac": lambda k: bench.call(signed["hmac"][k]),
        "rsa": lambda k: bench.call(signed["rsa"][k]),
        "verify-hmac": lambda k: signing.verify_hmac(bench.secret, text, hmac_signature),
        "verify-rsa": lambda k: signing.verify_rsa(bench.app_public, text, rsa_signature),
        "sign-answer-rsa": lambda k: bench.platform_key.sign(text),
    }


def measure(bench: Bench, count: int, rounds: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for r in range(rounds):
        calls = work(bench, count)
        order = KINDS if r % 2 == 0 else tuple(reversed(KINDS))
        line = []
        for kind in order:
            rate = timed(count, calls[kind])
            rates[kind].append(rate)
            line.append(f"{kind} {rate:7.0f}/s")
        print(f"  round {r + 1}: " + ", ".join(line))
    return rates


def report(rates: dict[str, list[float]]) -> None:
    mean = {kind: statistics.mean(values) for kind, values in rates.items()}
    print("\n  kind             per second   us a call   spread")
    for kind in KINDS:
        spread = max(rates[kind]) / min(rates[kind]) - 1
        print(f"  {kind:15} {mean[kind]:11.0f} {1e6 / mean[kind]:11.1f} {spread:8.1%}")
    base = 1e6 / mean["unsigned"]
    for kind in ("hmac", "rsa"):
        cost = 1e6 / mean[kind]
        print(
            f"  signed {kind:4}: {cost / base:4.2f}x an unsigned call "
            f"(+{cost - base:6.1f} us; verifying alone {1e6 / mean['verify-' + kind]:6.1f} us)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=400, help="calls a measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"partner signatures in process, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load:.2f}; {args.count} calls a measurement"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(f"sqlite:///{tmp}/bench.db", args.count)
        try:
            report(measure(bench, args.count, args.rounds))
        finally:
            bench.platform.close()


if __name__ == "__main__":
    main()
