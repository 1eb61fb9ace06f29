"""constraints.txt pins every distribution `.[mysql,deploy,test]` installs, each within the
ranges setup.cfg declares, and this environment (installed with it) runs exactly those pins."""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = ("mysql", "deploy", "test")
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")
# The virtualenv's own tools: frozen too, reached by no requirement.
TOOLS = {"pip", "setuptools"}


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = PIN.fullmatch(line)
        assert match, f"constraints.txt: {line!r} is not name==version"
        name = canonicalize_name(match[1])
        assert name not in found, f"constraints.txt pins {name} twice"
        found[name] = Version(match[2])
    return found


def declared() -> list[Requirement]:
    """setup.cfg's install_requires and the extras constraints.txt covers."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    texts = [cfg["options"]["install_requires"]]
    texts += [cfg["options.extras_require"][extra] for extra in EXTRAS]
    return [
        Requirement(line.strip())
        for text in texts
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**default_environment(), "extra": e}) for e in extras or {""})


def test_every_line_is_one_pin_in_order() -> None:
    names = list(pins())
    assert names == sorted(names), "constraints.txt is in pip freeze's order, by name"


def test_each_declared_requirement_is_pinned_within_its_range() -> None:
    pinned = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req} is not pinned in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside setup.cfg's {req}"
        )


def test_every_installed_dependency_is_pinned_and_installed_as_pinned() -> None:
    """Walks the dependencies from setup.cfg's requirements through the installed
    distributions' own metadata: each one reached is pinned, at the version installed."""
    pinned = pins()
    seen: set[str] = set()
    missing: list[str] = []
    todo = [(req, set(req.extras)) for req in declared()]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        assert name in pinned, f"{name} (for {req}) is installed but not pinned"
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            missing.append(name)  # e.g. mysqlclient without the MariaDB client headers
            continue
        assert Version(dist.version) == pinned[name], (
            f"{name} {dist.version} is installed, constraints.txt pins {pinned[name]}"
        )
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for text in dist.requires or ():
            dep = Requirement(text)
            if applies(dep, extras):
                todo.append((dep, set(dep.extras)))
    reached = {key.partition("[")[0] for key in seen}
    if missing:
        pytest.skip(f"not installed here, so their dependencies were not walked: {missing}")
    stale = set(pinned) - reached - TOOLS
    assert not stale, f"constraints.txt pins what nothing requires: {sorted(stale)}"
