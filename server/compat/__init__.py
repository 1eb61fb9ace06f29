"""The breaking-change gate: the published contracts (wsdl/, swagger/) against the last
released ones (contracts/released/<version>/), by the rules of server/compat/compare.py.

A release is a copy of wsdl/ and swagger/ under the version the OpenAPI document states
(``info.version``, server/version.py VERSION), made by ``p2p release-contracts``: never over an
existing version, never a version lower than the last, and a contract that breaks the last
release only under a new major version. ``p2p check-contracts`` (and the test suite) fail while
the published contracts break the last release; contracts/CHANGELOG.md lists what each
release changed, written by the release, with the release's notes to partners
(contracts/NOTES.md, which a release moves into its folder; a major version needs them).
docs/contracts.md is the policy.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from server.compat.compare import compare
from server.compat.model import Change, Contract
from server.compat.openapishape import read_openapi
from server.compat.wsdlshape import read_wsdl

RELEASED = Path("contracts") / "released"
CHANGELOG = Path("contracts") / "CHANGELOG.md"
#: The next release's notes to partners (what changed for them and what to do), written with
#: the change; the release moves them to its own folder, as RELEASE_NOTES.
NOTES = Path("contracts") / "NOTES.md"
RELEASE_NOTES = "NOTES.md"
OPENAPI = Path("swagger") / "openapi.json"
WSDL_DIR = Path("wsdl")


class ReleaseRefused(Exception):
    """Why ``release`` will not release the published contracts."""


@dataclass(frozen=True)
class Check:
    """The published contracts against the last release (None before the first)."""

    released: str | None
    changes: list[Change]

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]


def version_key(version: str) -> tuple[int, int, int]:
    """``major.minor.patch`` as numbers; ValueError for anything else."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a version of the form major.minor.patch: {version!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def released_versions(root: Path) -> list[str]:
    """The released versions, oldest first."""
    folder = root / RELEASED
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if p.is_dir()), key=version_key)


def load(folder: Path) -> dict[str, Contract]:
    """The contracts in ``folder`` (holding wsdl/ and swagger/), by name: each facade's WSDL,
    and the OpenAPI document as ``openapi``."""
    paths = sorted((folder / WSDL_DIR).glob("*.wsdl"))
    contracts = {path.stem: read_wsdl(path.read_bytes()) for path in paths}
    contracts["openapi"] = read_openapi(json.loads((folder / OPENAPI).read_text("utf-8")))
    return contracts


def differences(old: dict[str, Contract], new: dict[str, Contract]) -> list[Change]:
    changes = []
    for name in sorted(old.keys() - new.keys()):
        changes.append(Change(name, "contract removed", True))
    for name in sorted(new.keys() - old.keys()):
        changes.append(Change(name, "contract added", False))
    for name in sorted(old.keys() & new.keys()):
        changes.extend(compare(old[name], new[name]))
    return changes


def check(root: Path) -> Check:
    versions = released_versions(root)
    if not versions:
        return Check(None, [])
    released = load(root / RELEASED / versions[-1])
    return Check(versions[-1], differences(released, load(root)))


def published_version(root: Path) -> str:
    return json.loads((root / OPENAPI).read_text("utf-8"))["info"]["version"]


def release(root: Path) -> str:
    """Release the published contracts under their version; the version released."""
    version = published_version(root)
    key = version_key(version)
    versions = released_versions(root)
    if versions:
        last = versions[-1]
        if key <= version_key(last):
            raise ReleaseRefused(
                f"version {version} is not after the last release, {last}: raise VERSION in "
                "server/version.py and run `make contracts` first"
            )
        found = check(root)
        if not found.changes:
            raise ReleaseRefused(f"nothing changed since {last}")
        if found.breaking and key[0] <= version_key(last)[0]:
            raise ReleaseRefused(
                f"{len(found.breaking)} breaking change(s) since {last} need a new major "
                f"version, not {version}"
            )
        if found.breaking and not _notes(root / NOTES):
            raise ReleaseRefused(
                f"a new major version breaks clients: write what changed for them and what "
                f"to do in {NOTES} first"
            )
    target = root / RELEASED / version
    (target / WSDL_DIR).mkdir(parents=True)
    (target / OPENAPI.parent).mkdir(parents=True)
    for path in sorted((root / WSDL_DIR).glob("*.wsdl")):
        shutil.copyfile(path, target / WSDL_DIR / path.name)
    shutil.copyfile(root / OPENAPI, target / OPENAPI)
    if (root / NOTES).exists():
        (root / NOTES).rename(target / RELEASE_NOTES)
    (root / CHANGELOG).write_text(changelog(root), "utf-8")
    return version


@dataclass(frozen=True)
class Release:
    """One released version, what it changed from the one before (None for the first) and
    its notes to partners (None when it has none)."""

    version: str
    changes: list[Change] | None
    notes: str | None = None


def _notes(path: Path) -> str | None:
    text = path.read_text("utf-8").strip() if path.exists() else ""
    return text or None


def history(root: Path) -> list[Release]:
    """Every release, newest first, with its changes: what the changelog says, as data for
    whatever else shows it."""
    versions = released_versions(root)
    releases = []
    for older, newer in zip([None, *versions], versions, strict=False):
        changes = None
        if older is not None:
            changes = differences(load(root / RELEASED / older), load(root / RELEASED / newer))
        releases.append(Release(newer, changes, _notes(root / RELEASED / newer / RELEASE_NOTES)))
    return releases[::-1]


def changelog(root: Path) -> str:
    """contracts/CHANGELOG.md: each release, newest first, with what it changed."""
    lines = [
        "# Contract changelog",
        "",
        "What each released version of the published contracts (wsdl/, swagger/) changed "
        "from the one before, as `p2p release-contracts` found it; the policy is in "
        "[docs/contracts.md](../docs/contracts.md). Generated: do not edit.",
    ]
    for release in history(root):
        lines += ["", f"## {release.version}", ""]
        if release.notes:
            lines += [release.notes, ""]
        if release.changes is None:
            lines.append("The first released version.")
            continue
        breaking = [c for c in release.changes if c.breaking]
        if breaking:
            lines.append(f"Breaking ({len(breaking)}), a new major version:")
            lines.append("")
            lines += [f"- {c.where}: {c.what}" for c in breaking]
            lines.append("")
        lines.append("Added or changed, compatible:" if breaking else "Compatible changes:")
        lines.append("")
        lines += [f"- {c.where}: {c.what}" for c in release.changes if not c.breaking] or ["- none"]
    return "\n".join(lines) + "\n"
