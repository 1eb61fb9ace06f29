"""What a log line costs threads that serve at once: the standard StreamHandler against
server/logwriter.py's LogWriter, given the line made (``handle``) or its values to make it
from (``later``, as the dispatcher's access log does).

Run from the repository root: ``python bench/logwriter.py [--threads 4] [--lines 20000]
[--rounds 3] [--format plain|json]``.

Each of ``--threads`` threads does a little work (a loop of 300 additions, a few
microseconds) and then logs one access-log-shaped line, ``--lines`` times, as a worker's
serving threads do under load. Per way, alternating in rounds, it prints the process's
CPU (user and system) per line, beyond what the same loop without a line costs, and the
context switches the run made. Every line is checked to be in the file once.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.dispatcher import AccessLine
from server.logformat import JsonFormatter, SafeFormatter
from server.logwriter import LogWriter

WORK = 300  # additions between two lines: a few microseconds of a call's own work


def _run(
    threads: int,
    lines: int,
    log: Callable[[int, int], None] | None,
    done: Callable[[], None] = lambda: None,
) -> tuple[float, int]:
    """CPU seconds and context switches of ``threads`` threads each working and logging
    ``lines`` times (``log`` None: working only), and of ``done`` after them: the writer's
    stop, which makes and writes the lines still waiting, counts."""

    def work(thread: int) -> None:
        x = 0
        for n in range(lines):
            for _ in range(WORK):
                x += 1
            if log is not None:
                log(thread, n)

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    done()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    switches = (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw)
    return cpu, switches


def _access_line(name: str, thread: int, n: int) -> AccessLine:
    return AccessLine(
        name, time.time(), f"t{thread}-{n}", "rest", "LoanFacade", "getLoan", "OK", 1.2,
        "10.0.0.7", "-", None,
    )  # fmt: skip


def _logger(handler: logging.Handler) -> Callable[[int, int], None]:
    """A line logged as the dispatcher's access log logs it without a writer: its record
    made by the serving thread and handled by the logger."""
    log = logging.getLogger(f"bench.logwriter.{id(handler)}")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False

    def line(thread: int, n: int) -> None:
        if log.isEnabledFor(logging.INFO):
            log.handle(_access_line(log.name, thread, n).record())

    return line


def _later(writer: LogWriter) -> Callable[[int, int], None]:
    """A line logged as the dispatcher's access log logs it given ``p2p serve``'s writer: its
    values handed over, the record made and formatted by the writer's thread."""
    log = logging.getLogger(f"bench.logwriter.later.{id(writer)}")
    log.setLevel(logging.INFO)

    def line(thread: int, n: int) -> None:
        if log.isEnabledFor(logging.INFO):
            writer.later(_access_line(log.name, thread, n))

    return line


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--lines", type=int, default=20_000, help="lines a thread (20000)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--format", choices=("plain", "json"), default="plain")
    args = p.parse_args()
    make_formatter = JsonFormatter if args.format == "json" else SafeFormatter
    total = args.threads * args.lines
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}, {args.threads} threads x {args.lines} lines, "
        f"{args.format} lines to a file"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log"

        def stream() -> tuple[logging.Handler, Callable[[], None]]:
            out = path.open("w", encoding="utf-8")
            handler = logging.StreamHandler(out)
            handler.setFormatter(make_formatter())
            return handler, out.close

        def writer() -> tuple[LogWriter, Callable[[], None]]:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            handler = LogWriter(fd)
            handler.setFormatter(make_formatter())
            handler.start()

            def done() -> None:
                handler.stop()
                os.close(fd)

            return handler, done

        # Each way: how its handler is made, and how a line is logged to it.
        ways: dict[str, tuple[Callable[[], tuple[Any, Callable[[], None]]], Callable]] = {
            "StreamHandler": (stream, _logger),
            "LogWriter": (writer, _logger),
            "LogWriter.later": (writer, _later),
        }
        for number in range(1, args.rounds + 1):
            base_cpu, base_switches = _run(args.threads, args.lines, None)
            order = list(ways) if number % 2 else list(reversed(ways))
            for name in order:
                make, logger = ways[name]
                handler, done = make()
                cpu, switches = _run(args.threads, args.lines, logger(handler), done)
                written = path.read_text(encoding="utf-8").count("LoanFacade.getLoan")
                if written != total:
                    raise SystemExit(f"{name}: {written} lines written of {total}")
                print(
                    f"  round {number}: {name:<15} {(cpu - base_cpu) / total * 1e6:6.1f} us "
                    f"CPU a line, {(switches - base_switches) / total:5.2f} context switches "
                    "a line"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
