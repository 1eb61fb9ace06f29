"""Start-up of a worker: time to /health ready, memory after start and at its peak.

Run from the repository root:
``python bench/startup.py [--starts N] [--calls N] [--logins N]``.

It migrates a SQLite database in a temporary folder, then starts ``p2p serve`` (waitress, the
default threads, no embedded job worker: one web worker as supervisord runs it) again and
again, and for each start prints the seconds from the process's start to its first
``/health`` answering 200, the CPU seconds it and the child compiling its contract spent
until then (steadier than the wall clock on a busy machine), its RSS then and its peak RSS
(VmHWM) so far, and, after ``--calls`` REST calls on one keep-alive connection
(``GET /api/v1/loans``), its RSS and peak again, and after ``--logins`` logins sent at once,
twice (unknown numbers, so each is a full password check), its RSS and peak once more. The
workers hash passwords with the parameters of the started tree's conf/default.toml,
production's, rather than the tests' cheap ones. With
``P2P_TEST_REDIS_URL`` set, each start is made three times, alternating: with the embedded
cache, with Redis as the cache (``cache.url``), and with Redis and the depository bank as the
gateway (``payment.gateway = "BANK"``: its client, keys and signatures loaded), as production
runs it, its keys read from files as an operator's are. ``--base DIR`` starts the
code checked out in DIR (e.g. a ``git worktree`` of the commit before a change) too, each of
its starts beside one of this tree's, alternating, so that a before and an after share the
machine's moments. Then the modules that ``import server.app`` spends its time in
(``python -X importtime``), largest first.

Absolute times depend on the machine and its neighbours: compare starts of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.getloan import ROOT, child_env, cli, cpu_seconds, free_port, read_proc_status

READY_TIMEOUT = 60.0


def _mib(status: dict[str, str], key: str) -> float:
    return int(status.get(key, "0 kB").split()[0]) / 1024


def _health(port: int) -> bool:
    with contextlib.suppress(OSError, http.client.HTTPException):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    return False


def _calls(port: int, count: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(count):
            conn.request("GET", "/api/v1/loans")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET /api/v1/loans answered {response.status}")
    finally:
        conn.close()


def _logins(port: int, count: int) -> None:
    """``count`` logins at once, each of an unknown number: a whole password check each."""
    statuses: list[int] = []

    def login(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            body = {
                "mobile": f"139{time.time_ns() % 10**6:06d}{number:02d}",
                "password": "Pw123456",
            }
            headers = {"Content-Type": "application/json"}
            conn.request("POST", "/api/v1/sessions", json.dumps(body), headers)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=login, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if statuses != [401] * count:
        raise RuntimeError(f"logins of unknown numbers answered {sorted(statuses)}, not 401")


def production_settings(root: Path, tmp: Path, bank: bool) -> list[str]:
    """``--set`` arguments for what the bench's P2P_ENV=test makes cheaper than production:
    the password hashing of ``root``'s conf/default.toml, and with ``bank`` its gateway, the
    depository bank over HTTP and signed with key files of the operator's, as production
    configures it (its address a closed port: a start, calls of listings and logins ask
    nothing of the bank), with the default's schedule, which runs the bank's jobs."""
    with open(root / "conf" / "default.toml", "rb") as f:
        default = tomllib.load(f)
    sets = [f"security.{k}={v}" for k, v in default["security"].items() if k.startswith("argon2_")]
    if bank:
        platform_key, bank_key = _bank_keys(tmp / "bank-keys")
        schedule = ";".join(f"{job}={when}" for job, when in default["jobs"]["schedule"].items())
        sets += ["payment.gateway=BANK", f"jobs.schedule={schedule}"]
        sets += [f"bank.url=http://127.0.0.1:{free_port()}", f"bank.bank_public_keys=B1={bank_key}"]
        sets += [f"bank.platform_private_key={platform_key}"]
    return sets


def _bank_keys(folder: Path) -> tuple[Path, Path]:
    """The platform's private key and the bank's public key, as PEM files in ``folder``
    (made by the first call)."""
    platform_key, bank_key = folder / "platform.pem", folder / "bank.pub.pem"
    if not folder.exists():
        from service.ocp.signing import generate_keypair

        folder.mkdir()
        platform_key.write_bytes(generate_keypair()[0])
        bank_key.write_bytes(generate_keypair()[1])
    return platform_key, bank_key


def one_start(
    url: str,
    tmp: Path,
    cache_url: str,
    calls: int,
    logins: int,
    root: Path = ROOT,
    *,
    bank: bool = False,
) -> dict[str, float]:
    port = free_port()
    argv = [sys.executable, "-m", "server.cli", "serve", "--set", f"database.url={url}"]
    argv += ["--set", f"server.port={port}", "--set", "jobs.embedded_worker=false"]
    for setting in production_settings(root, tmp, bank):
        argv += ["--set", setting]
    if cache_url:
        argv += ["--set", f"cache.url={cache_url}"]
    log = tmp / f"serve-{port}.log"
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join((str(root), env["PYTHONPATH"]))  # root's code first
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not _health(port):
            if proc.poll() is not None or time.perf_counter() - started > READY_TIMEOUT:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"p2p serve did not become ready:\n{tail}")
            time.sleep(0.005)
        ready = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid)
        status = read_proc_status(proc.pid)
        figures = {
            "ready s": ready,
            "CPU s": cpu,
            "RSS MiB": _mib(status, "VmRSS"),
            "peak MiB": _mib(status, "VmHWM"),
        }
        if calls:
            _calls(port, calls)
            status = read_proc_status(proc.pid)
            figures[f"RSS after {calls}"] = _mib(status, "VmRSS")
            figures[f"peak after {calls}"] = _mib(status, "VmHWM")
        if logins:
            for _ in range(2):
                _logins(port, logins)
            status = read_proc_status(proc.pid)
            figures[f"RSS after {logins}x2 logins"] = _mib(status, "VmRSS")
            figures["peak after logins"] = _mib(status, "VmHWM")
        return figures
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def import_profile(top: int) -> list[tuple[int, str]]:
    """The modules ``import server.app`` imports directly, by cumulative microseconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import server.app"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        depth = len(name) - len(name.lstrip(" "))
        if depth == 3:  # imported by server.app itself
            rows.append((int(cumulative), name.strip()))
        elif depth == 1:
            rows.append((int(cumulative), name.strip() + " (in all)"))
    return sorted(rows, reverse=True)[:top]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--starts", type=int, default=3, help="starts per configuration (3)")
    p.add_argument("--calls", type=int, default=2000, help="REST calls after each start (2000)")
    p.add_argument(
        "--logins", type=int, default=4, help="logins at once after the calls, twice (4)"
    )
    p.add_argument("--top", type=int, default=15, help="rows of the import listing (15)")
    p.add_argument("--base", type=Path, help="a checkout of other code to start alternately")
    args = p.parse_args(argv)
    redis_url = os.environ.get("P2P_TEST_REDIS_URL", "")
    setups = {"embedded": ("", False)}
    if redis_url:
        setups |= {"redis cache": (redis_url, False), "redis, BANK": (redis_url, True)}
    configs = {name: (cache, bank, ROOT) for name, (cache, bank) in setups.items()}
    if args.base:
        base = args.base.resolve()
        configs = {
            f"{name}{suffix}": (cache, bank, root)
            for name, (cache, bank) in setups.items()
            for suffix, root in (("", ROOT), (" (base)", base))
        }
    tmp = Path(tempfile.mkdtemp(prefix="p2p-bench-startup-"))
    url = f"sqlite:///{tmp / 'p2p.db'}"
    try:
        cli(url, "migrate")
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}, {args.starts} starts per configuration, "
            f"{args.calls} calls and {args.logins}x2 logins after each",
            flush=True,
        )
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            print(
                "PYTHONDONTWRITEBYTECODE is set: every start compiles the project's sources "
                "(no __pycache__ is written), which a worker that may write __pycache__ does once",
                flush=True,
            )
        results: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        for number in range(args.starts):
            names = list(configs) if number % 2 == 0 else list(reversed(configs))
            for name in names:
                cache, bank, root = configs[name]
                figures = one_start(url, tmp, cache, args.calls, args.logins, root, bank=bank)
                results[name].append(figures)
                shown = ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
                print(f"  start {number + 1} {name:<19} {shown}", flush=True)
        print("\nmedian over starts")
        for name, rows in results.items():
            shown = ", ".join(f"{k} {statistics.median(r[k] for r in rows):.2f}" for k in rows[0])
            print(f"  {name:<19} {shown}")
        print(f"\nimport server.app, cumulative ms (python -X importtime), top {args.top}")
        for micros, name in import_profile(args.top):
            print(f"  {micros / 1000:8.1f}  {name}")
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
