"""The production layout's files agree with deploy/layout.env, its one place for addresses,
ports and counts: supervisord's programs, HAProxy's server lines (written by
deploy/configure.sh) and Prometheus' targets name the same workers, for the shipped layout and
for a changed one. And what the deploy scripts refuse or leave alone."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _deploy_root(tmp_path: Path) -> Path:
    """A deploy root holding the files the layout is made of."""
    for folder in ("deploy", "lb", "conf", "supervisor"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def _layout(root: Path, **changes: str) -> dict[str, str]:
    """The environment deploy/layout.env gives, each of `changes` (NAME=value) replacing the
    value its line sets."""
    path = root / "deploy/layout.env"
    text = path.read_text()
    for name, value in changes.items():
        line = f"{name}={shlex.quote(value)}"
        text, count = re.subn(rf"(?m)^{name}=.*$", lambda _m, line=line: line, text)
        assert count == 1, f"{name} is set once in deploy/layout.env"
    path.write_text(text)
    done = subprocess.run(
        ["sh", "-c", "set -a; . deploy/layout.env; set +a; exec env -0"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith(("P2P_", "PATH"))}


def _configure(root: Path, environ: dict[str, str]) -> None:
    subprocess.run(["deploy/configure.sh"], cwd=root, env=environ, check=True, capture_output=True)


def _supervised(root: Path, environ: dict[str, str], monkeypatch) -> dict[str, list[str]]:
    """supervisord's own reading of supervisord.conf: each program's command lines."""
    from supervisor.options import ServerOptions

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    options = ServerOptions()
    options.stderr = sys.stderr  # its class keeps the stream of its import
    options.realize(args=["-c", str(root / "supervisor/supervisord.conf")])
    return {
        group.name: [process.command for process in group.process_configs]
        for group in options.process_group_configs
    }


def _haproxy_servers(root: Path) -> list[str]:
    text = (root / "var/haproxy.cfg").read_text()
    return re.findall(r"(?m)^    server p2p-(\d+) ([\d.]+:\d+)$", text)


def _prometheus_targets(root: Path) -> dict[str, list[str]]:
    found, job = {}, None
    for line in (root / "var/prometheus.yml").read_text().splitlines():
        if m := re.match(r"  - job_name: (\S+)", line):
            job = m[1]
        elif m := re.match(r"      - targets: (\[.*\])", line):
            found[job] = json.loads(m[1])
    return found


def test_the_shipped_files_are_what_configure_writes_for_the_shipped_layout(tmp_path) -> None:
    root = _deploy_root(tmp_path)
    _configure(root, _layout(root))

    assert (root / "var/haproxy.cfg").read_text() == (ROOT / "lb/haproxy.cfg").read_text()
    assert (root / "var/prometheus.yml").read_text() == (ROOT / "conf/prometheus.yml").read_text()
    for folder in ("log", "run", "prometheus", "prometheus-jobs"):
        assert (root / "var" / folder).is_dir()


@pytest.mark.parametrize(
    ("workers", "first", "job_workers", "job_first"),
    [("2", "8081", "2", "9180"), ("3", "9001", "4", "9300")],
)
def test_supervisord_haproxy_and_prometheus_name_the_same_workers(
    tmp_path, monkeypatch, workers, first, job_workers, job_first
) -> None:
    root = _deploy_root(tmp_path)
    environ = _layout(
        root,
        P2P_LAYOUT_WORKERS=workers,
        P2P_LAYOUT_WORKER_FIRST_PORT=first,
        P2P_LAYOUT_JOB_WORKERS=job_workers,
        P2P_LAYOUT_JOB_METRICS_FIRST_PORT=job_first,
        P2P_SERVER_HOST="10.0.0.11",
    )
    _configure(root, environ)
    programs = _supervised(root, environ, monkeypatch)

    web_ports = [int(re.search(r"server\.port=(\d+)$", c)[1]) for c in programs["p2p"]]
    job_ports = [int(re.search(r"metrics_port=(\d+)$", c)[1]) for c in programs["p2p-worker"]]
    assert web_ports == list(range(int(first), int(first) + int(workers)))
    assert job_ports == list(range(int(job_first), int(job_first) + int(job_workers)))
    # The workers listen on P2P_SERVER_HOST, a setting they read from the environment.
    web = [f"10.0.0.11:{port}" for port in web_ports]
    assert _haproxy_servers(root) == [
        (str(port), addr) for port, addr in zip(web_ports, web, strict=True)
    ]
    assert _prometheus_targets(root) == {
        "p2p": web,
        "p2p-jobs": [f"10.0.0.11:{port}" for port in job_ports],
    }
    assert programs["haproxy"] == [f"/usr/sbin/haproxy -db -f {root}/supervisor/../var/haproxy.cfg"]


def test_supervisord_refuses_to_start_without_the_layout_naming_what_is_missing(
    tmp_path, monkeypatch, capsys
) -> None:
    root = _deploy_root(tmp_path)
    environ = _layout(root)
    _configure(root, environ)
    del environ["P2P_LAYOUT_WORKERS"]
    monkeypatch.delenv("P2P_LAYOUT_WORKERS", raising=False)

    with pytest.raises(SystemExit):
        _supervised(root, environ, monkeypatch)
    assert "'ENV_P2P_LAYOUT_WORKERS') which cannot be expanded" in capsys.readouterr().err


def test_haproxy_accepts_the_written_configuration(tmp_path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed (deploy/prerequisites.sh --install)")
    root = _deploy_root(tmp_path)
    environ = _layout(root, P2P_LAYOUT_WORKERS="5")
    _configure(root, environ)

    done = subprocess.run(
        [haproxy, "-c", "-f", "var/haproxy.cfg"], cwd=root, env=environ, capture_output=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(_haproxy_servers(root)) == 5


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_prerequisites_name_the_servers_that_do_not_answer(tmp_path) -> None:
    if not shutil.which("dpkg-query"):
        pytest.skip("deploy/prerequisites.sh checks a Debian machine's packages")
    root = _deploy_root(tmp_path)
    db, cache = _closed_port(), _closed_port()
    environ = _layout(
        root,
        P2P_LAYOUT_DATABASE_SERVER=f"127.0.0.1:{db}",
        P2P_CACHE_URL=f"redis://127.0.0.1:{cache}/0",
    )

    done = subprocess.run(
        ["deploy/prerequisites.sh"], cwd=root, env=environ, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert f"MariaDB does not answer at 127.0.0.1:{db}" in done.stdout
    assert f"Redis does not answer at redis://127.0.0.1:{cache}/0" in done.stdout


def test_create_database_leaves_a_configured_database_alone(tmp_path) -> None:
    root = _deploy_root(tmp_path)
    config = tmp_path / "p2p.toml"
    config.write_text('[database]\nurl = "mysql+mysqldb://p2p:x@127.0.0.1:3306/p2p"\n')
    # The administrator's command fails if it runs at all.
    environ = _layout(root, P2P_CONFIG=str(config), P2P_LAYOUT_DATABASE_ADMIN="false")

    done = subprocess.run(
        ["deploy/create-database.sh"], cwd=root, env=environ, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert "names a database already: nothing changed" in done.stdout
    assert config.read_text().count("[database]") == 1


def test_create_database_refuses_a_name_that_is_not_an_identifier(tmp_path) -> None:
    root = _deploy_root(tmp_path)
    environ = _layout(
        root,
        P2P_CONFIG=str(tmp_path / "p2p.toml"),
        P2P_LAYOUT_DATABASE_NAME="p2p`; DROP DATABASE mysql; --",
        P2P_LAYOUT_DATABASE_ADMIN="false",
    )

    done = subprocess.run(
        ["deploy/create-database.sh"], cwd=root, env=environ, capture_output=True, text=True
    )

    assert done.returncode == 2
    assert "letters, digits and _ only" in done.stderr
    assert not (tmp_path / "p2p.toml").exists()
