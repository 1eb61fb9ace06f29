"""The bank simulator beside the platform in development (``bank.simulator``): ``p2p serve``
runs ``p2p bank-sim`` as its child process, listening on ``bank.url``, so a newcomer's
``make run`` shows the bank's asynchronous flow (orders accepted, the member's confirmation on
the bank's page, signed notifications) with nothing else installed.

Keys: a [bank] key left unset is taken from the simulator's development pairs in
``bank.simulator_dir`` (banksim/keys.py, made at first start): the platform signs with
platform.pem and trusts bank.pub.pem under the simulator's key id; the simulator trusts the
platform's public key (derived from the platform's private key, whichever it is) under
``bank.platform_key_id``.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from banksim.keys import BANK_KEY_ID, key_pair, key_paths
from conf import ConfigError
from conf.settings import BankSettings, Pem
from service.ocp.signing import public_key_of

log = logging.getLogger("p2p.bank")

#: Seconds the simulator has to answer on its port after it is started.
START_SECONDS = 30.0


def with_simulator_keys(bank: BankSettings) -> BankSettings:
    """``bank`` with each unset key replaced by the simulator's development key."""
    keys_dir = Path(bank.simulator_dir)
    private = bank.platform_private_key
    if private is None:
        private = Pem(key_pair(keys_dir, "platform")[0], str(key_paths(keys_dir, "platform")[0]))
    public_keys = bank.bank_public_keys
    if not public_keys:
        public = Pem(key_pair(keys_dir, "bank")[1], str(key_paths(keys_dir, "bank")[1]))
        public_keys = ((BANK_KEY_ID, public),)
    return dataclasses.replace(bank, platform_private_key=private, bank_public_keys=public_keys)


class EmbeddedBank:
    """``p2p bank-sim`` as a child process of ``p2p serve``, with the [bank] settings' keys,
    merchant id and address; stopped with the server. Its books persist in simulator_dir."""

    def __init__(self, bank: BankSettings) -> None:
        self._bank = with_simulator_keys(bank)
        address = urlsplit(bank.url)
        if address.scheme != "http" or address.hostname is None:
            raise ConfigError(f"bank.url: must be an http URL for bank.simulator, got {bank.url!r}")
        self._host, self._port = address.hostname, address.port or 80
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the simulator and wait until it accepts connections."""
        bank = self._bank
        if self._listening():
            raise RuntimeError(
                f"something already listens on {bank.url} (another bank simulator?): stop it, "
                "or set bank.url to a free port"
            )
        keys_dir = Path(bank.simulator_dir)
        platform_public = keys_dir / f"trusted-{bank.platform_key_id}.pub.pem"
        platform_public.write_bytes(public_key_of(bank.platform_private_key.data))
        command = [sys.executable, "-m", "server.cli", "bank-sim"]
        command += ["--host", self._host, "--port", str(self._port)]
        command += ["--data", str(keys_dir / "books.db"), "--keys-dir", str(keys_dir)]
        command += ["--merchant-id", bank.merchant_id, "--key-id", BANK_KEY_ID]
        command += ["--platform-key", f"{bank.platform_key_id}={platform_public}"]
        command += ["--delay", str(bank.simulator_delay_seconds)]
        command += ["--timestamp-window", str(bank.timestamp_window_seconds)]
        command += ["--query-min-interval", str(bank.query_min_interval_seconds)]
        if bank.simulator_auto_authorize:
            command.append("--auto-authorize")
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + START_SECONDS
        while not self._listening():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop(timeout=5)
                raise RuntimeError(f"the bank simulator did not start on {bank.url}")
            time.sleep(0.1)
        log.info("embedded bank simulator started on %s (pid %d)", bank.url, self._proc.pid)

    def stop(self, timeout: float) -> None:
        """SIGTERM, then wait up to ``timeout``, then SIGKILL."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("embedded bank simulator did not stop within %.0f s; killing it", timeout)
            proc.kill()
            proc.wait()
        log.info("embedded bank simulator stopped (%s)", proc.returncode)

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self._host, self._port), timeout=0.5):
                return True
        except OSError:
            return False
