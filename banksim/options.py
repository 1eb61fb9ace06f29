"""The options of ``p2p bank-sim`` (banksim/main.py runs it), apart so that the ``p2p`` command
can list them without loading the simulator."""

from __future__ import annotations

import argparse

from banksim.faults import FAULTS
from banksim.keys import BANK_KEY_ID

ADMIN_TOKEN_ENV = "BANKSIM_ADMIN_TOKEN"  # noqa: S105 - the name of a variable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's options, on the ``p2p bank-sim`` sub-command."""
    a = parser.add_argument
    a("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    a("--port", type=int, default=8070, help="port to listen on (default 8070, bank.url's)")
    a("--threads", type=int, default=8, help="server threads (default 8)")
    a("--public-url", help="base URL of the member's confirmation pages (default http://HOST:PORT)")
    a("--data", default="var/banksim.db", help="the bank's SQLite file (default var/banksim.db)")
    a("--keys-dir", default="var/bank", help="where the key files are (default var/bank)")
    a("--key-id", default=BANK_KEY_ID, help=f"the bank's signing key id (default {BANK_KEY_ID})")
    a(
        "--platform-key",
        action="append",
        metavar="ID=PATH",
        help="a public key of the platform, by key id (repeatable; default "
        "platform-dev=KEYS_DIR/platform.pub.pem, made with its private key if missing)",
    )
    a("--merchant-id", default="P2PDEV", help="the platform's merchant id (default P2PDEV)")
    a(
        "--delay",
        type=float,
        default=2.0,
        help="seconds from acceptance (or the member's confirmation) to finishing an order and "
        "notifying (default 2)",
    )
    a(
        "--auto-authorize",
        action="store_true",
        help="member-authorised orders need no confirmation on the bank's page",
    )
    a(
        "--authorize-timeout",
        type=float,
        default=1800.0,
        help="seconds a member has to confirm before the order fails (default 1800)",
    )
    a("--timestamp-window", type=int, default=300, help="seconds either way (default 300)")
    a(
        "--query-min-interval",
        type=float,
        default=30.0,
        help="seconds between two queries of one order (default 30; 0 = no limit)",
    )
    a(
        "--hang",
        type=float,
        default=30.0,
        help="seconds a timeout fault holds the answer (default 30; beyond the client's read "
        "timeout)",
    )
    a(
        "--reverse-after",
        type=float,
        default=10.0,
        help="seconds after success that reverse_after_success returns a withdrawal (default 10)",
    )
    a(
        "--fee",
        action="append",
        metavar="TYPE=AMOUNT",
        help="a fee per order of TYPE, charged to the platform's account, which starts empty: "
        "FUND orders fund it (repeatable)",
    )
    a(
        "--fault",
        action="append",
        metavar="TYPE:FAULT[:COUNT[:SECONDS]]",
        help="arm a fault for orders of TYPE (or *), COUNT times (default every order); "
        f"FAULT is one of {', '.join(FAULTS)}",
    )
    a(
        "--admin-token",
        default="",
        help=f"admin endpoints need 'Authorization: Bearer TOKEN' (default ${ADMIN_TOKEN_ENV}; "
        "empty = loopback clients only)",
    )
