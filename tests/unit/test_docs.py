"""The project's documents stand on their own: every relative link and every repository path
they name in backquotes resolves inside the repository, and none points outside it."""

import re
from pathlib import Path

import pytest

from facade.contract import roles_in_words
from server.declared import discover_facades

ROOT = Path(__file__).resolve().parents[2]
IGNORED = {
    line.strip().strip("/")
    for line in (ROOT / ".gitignore").read_text().splitlines()
    if line.strip().endswith("/")
}
DOCUMENTS = sorted(
    p
    for p in [ROOT / "README.md", *ROOT.glob("*/README.md"), *ROOT.glob("docs/*.md")]
    if ".venv" not in p.parts
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# A backquoted path of ours: a top-level folder of the repository, then a file with an ending.
# Folders the checkout makes as it runs (var/, ignored) are not the repository's: what the
# documents name there exists only on a running machine.
TOP = "|".join(
    sorted(
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in IGNORED
    )
)
NAMED_PATH = re.compile(rf"`((?:{TOP})/[\w./-]*\.\w+)`")


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve_inside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    assert ".." + "/shared" not in text  # the design notes beside a checkout, not in a clone
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_files_exist(doc):
    text = doc.read_text(encoding="utf-8")
    missing = [p for p in NAMED_PATH.findall(text) if "<" not in p and not (ROOT / p).exists()]
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def test_the_facade_table_names_every_operation_with_its_route_and_roles():
    """README's facade table lists each declared operation once, as
    `name` (METHOD /path, roles), the roles as the declaration says them (a partner
    operation: the scope a signing partner app needs)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("### Facades") : text.index("**Who sees which listing**")]
    listed = {
        name: (method, path, roles)
        for name, method, path, roles in re.findall(
            r"`(\w+)` \((GET|POST|PUT|DELETE) (\S+), ([^,;)]+)[,;)]", table
        )
    }
    declared = {op.name: op for f in discover_facades() for op in f.operations}
    assert set(listed) == set(declared)
    for name, op in declared.items():
        who = (
            f"a partner app with scope {op.partner_scope}"
            if op.partner_scope
            else roles_in_words(op.roles)
        )
        assert listed[name] == (op.rest.method, op.rest.path, who), name


def test_the_architecture_covers_what_a_newcomer_needs():
    """docs/architecture.md has a part for the layers, the dispatcher, transactions and money,
    and adding a facade; each names the code it describes, which exists (above)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (?:\d+\. )?(.+)$", text, flags=re.MULTILINE)
    for part in ("Layers", "The dispatcher", "Data, transactions, money", "Adding a facade"):
        assert part in headings, part
    for named in ("server/dispatcher.py", "service/transaction.py", "service/ledger.py"):
        assert f"`{named}`" in text, named
