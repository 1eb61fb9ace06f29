"""``p2p bank-sim``: the simulator's keys, its worker thread and its server.

Keys live in ``--keys-dir`` (default var/bank): the bank's own pair (bank.pem, bank.pub.pem,
made at first start) and, unless ``--platform-key`` names the platform's public keys, a
development pair for the platform (platform.pem, platform.pub.pem, made alike), so a newcomer
points the platform at var/bank/platform.pem and var/bank/bank.pub.pem and nothing else.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from decimal import Decimal
from pathlib import Path

from banksim.bank import Bank, BankConfig
from banksim.books import Books
from banksim.faults import Faults, parse_option
from banksim.keys import PLATFORM_KEY_ID, key_pair
from banksim.options import ADMIN_TOKEN_ENV
from service.ocp import protocol
from service.ocp.signing import KeyRing, Signer

log = logging.getLogger("banksim")


def build(args: argparse.Namespace) -> Bank:
    """The bank the options describe, its books open; ValueError for a bad option."""
    keys_dir = Path(args.keys_dir)
    signer = Signer(args.key_id, key_pair(keys_dir, "bank")[0])
    if args.platform_key:
        ring = {}
        for item in args.platform_key:
            key_id, sep, path = item.partition("=")
            if not sep:
                raise ValueError(f"--platform-key {item!r}: must be ID=PATH")
            ring[key_id] = Path(path).read_bytes()
    else:
        ring = {PLATFORM_KEY_ID: key_pair(keys_dir, "platform")[1]}
    fees = {}
    for item in args.fee or ():
        order_type, _, amount = item.partition("=")
        if order_type not in protocol.ORDER_FIELDS and order_type not in protocol.BATCH_TYPES:
            raise ValueError(f"--fee {item!r}: no such order type")
        fees[order_type] = _amount(amount, "--fee")
    config = BankConfig(
        merchant_id=args.merchant_id,
        public_url=(args.public_url or f"http://{args.host}:{args.port}").rstrip("/"),
        delay_seconds=args.delay,
        auto_authorize=args.auto_authorize,
        authorize_timeout_seconds=args.authorize_timeout,
        timestamp_window_seconds=args.timestamp_window,
        query_min_interval_seconds=args.query_min_interval,
        hang_seconds=args.hang,
        reverse_after_seconds=args.reverse_after,
        fees=fees,
    )
    faults = Faults(tuple(parse_option(item) for item in args.fault or ()))
    return Bank(config, Books(args.data), signer, KeyRing(ring), faults)


def run(args: argparse.Namespace) -> int:
    """Serve the bank until interrupted, its worker finishing orders and notifying."""
    import waitress

    from banksim.web import BankApp

    try:
        bank = build(args)
    except (OSError, ValueError) as exc:
        log.error("bank-sim: %s", exc)
        return 2
    worker = Worker(bank)
    worker.start()
    log.info(
        "bank simulator for merchant %s on %s:%d (data %s, delay %.1f s, auto-authorize %s)",
        bank.config.merchant_id,
        args.host,
        args.port,
        args.data,
        bank.config.delay_seconds,
        bank.config.auto_authorize,
    )
    try:
        waitress.serve(
            BankApp(bank, admin_token=args.admin_token or os.environ.get(ADMIN_TOKEN_ENV, "")),
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="bank-sim",
        )
    finally:
        worker.stop()
        bank.books.close()
    return 0


class Worker(threading.Thread):
    """Runs the bank's asynchronous half every ``interval`` seconds; what it has not done
    when the process stops is in the books, and done after the next start."""

    def __init__(self, bank: Bank, interval: float = 0.2):
        super().__init__(name="bank-sim-worker", daemon=True)
        self._bank = bank
        self._interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._bank.run_due()
                self._bank.deliver_due()
            except Exception:
                log.exception("bank-sim worker failed; trying again")

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=10)


def _amount(text: str, option: str) -> Decimal:
    try:
        return protocol.parse_amount(text)
    except protocol.MessageInvalid:
        raise ValueError(f"{option}: {text!r} is not an amount such as 1.00") from None
