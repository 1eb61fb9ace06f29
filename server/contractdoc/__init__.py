"""Human-readable contract documents: one HTML page per facade, and the changelog page.

A facade's document is generated from the same binding model as its WSDL and the OpenAPI
document (never by reading them back): every operation with its documentation and roles, its
SOAP element names and REST route, its input and output fields with their types and facets,
the fault codes it can raise, and an example call on each protocol (server/contractdoc/
examples.py); then each structure (DTO) it uses, and the error catalogue. The changelog page
renders the releases server/compat finds in contracts/released/.

The platform serves them beside the WSDL (``GET /services/<Facade>?doc``, ``GET
/services/changelog``), built once at start-up with only the base URL filled in per caller, as
the WSDL's address is; ``p2p export-docs`` writes the same pages, linked to each other and to
the committed wsdl/ and swagger/, into docs/contracts/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from server import compat
from server.contractdoc import page
from server.contractdoc.examples import example
from server.contractdoc.faults import operation_faults
from server.registry import BoundFacade
from server.rest import body_fields, path_params, query_fields
from server.soap import SOAP11, SOAP12, fault_response
from service.errors import CATALOGUE, BusinessError, ErrorCode

#: The repository the running code comes from: its contracts/released/ holds the releases.
REPOSITORY = Path(__file__).resolve().parents[2]
#: Where the static copies go, under the repository.
STATIC_DIR = Path("docs") / "contracts"
CHANGELOG_PAGE = "changelog.html"
_BASE = "urn:p2p:base-url-placeholder"


@dataclass(frozen=True)
class Links:
    """Where a document's links lead: the pages a running platform serves under ``base`` (its
    external URL), or, ``static``, the copies side by side in docs/contracts/, linked to the
    committed contracts. ``base`` is also the address the examples call."""

    base: str
    static: bool = False

    @property
    def services(self) -> str | None:
        return None if self.static else f"{self.base}/services"

    @property
    def changelog(self) -> str:
        return CHANGELOG_PAGE if self.static else f"{self.base}/services/changelog"

    @property
    def openapi(self) -> str:
        return "../../swagger/openapi.json" if self.static else f"{self.base}/openapi.json"

    @property
    def policy(self) -> str | None:
        """docs/contracts.md, which only the static copy can link to."""
        return "../contracts.md" if self.static else None

    def document(self, facade: str) -> str:
        return f"{facade}.html" if self.static else f"{self.base}/services/{facade}?doc"

    def wsdl(self, facade: str) -> str:
        return f"../../wsdl/{facade}.wsdl" if self.static else f"{self.base}/services/{facade}?wsdl"


def _catalogue() -> list[tuple[ErrorCode, list[tuple[str, str]]]]:
    """Every code with the HTTP status and fault code its fault answers with in SOAP 1.1, then
    in SOAP 1.2."""
    entries = []
    for code in sorted(CATALOGUE):
        error = BusinessError(CATALOGUE[code])
        soap = [
            (str(fault_response(error, "-", v).status_code), v.fault_code(error))
            for v in (SOAP11, SOAP12)
        ]
        entries.append((CATALOGUE[code], soap))
    return entries


def _footer(version: str) -> str:
    return (
        f"Contract version {page.esc(version)}. Generated from the facade declarations by "
        "server/contractdoc; the WSDL and the OpenAPI document state the same contract. The "
        "copies in docs/contracts/ are written by <code>make docs</code>: do not edit them."
    )


def facade_document(bound: BoundFacade, version: str, links: Links, names: list[str]) -> str:
    """The HTML document of one facade; ``names``: every facade, for the navigation."""
    endpoint = f"{links.base}/services/{bound.name}"
    types = page.structures(bound)
    sections = []
    for op in bound.operations:
        places = page.rest_places(op, path_params(op), query_fields(op), body_fields(op))
        sections.append(
            page.operation_section(
                op, endpoint, places, operation_faults(op), example(op, links.base)
            )
        )
    esc = page.esc
    meta = (
        '<dl class="facts">'
        f"<dt>Contract version</dt><dd>{esc(version)} "
        f'(<a href="{esc(links.changelog)}">changelog</a>)</dd>'
        f"<dt>Namespace</dt><dd><code>{esc(bound.facade.namespace)}</code></dd>"
        f"<dt>SOAP 1.1 and 1.2</dt><dd><code>{esc(endpoint)}</code>, told apart by the "
        "Content-Type (<code>text/xml</code>, <code>application/soap+xml</code>) "
        f'(<a href="{esc(links.wsdl(bound.name))}">WSDL</a>: ports <code>{esc(bound.name)}Port'
        f"</code> and <code>{esc(bound.name)}Soap12Port</code>)</dd>"
        f"<dt>REST</dt><dd><code>{esc(links.base)}/api/v1</code> "
        f'(<a href="{esc(links.openapi)}">OpenAPI</a>)</dd></dl>'
    )
    main = (
        f"<h1>{esc(bound.name)}</h1>{page.prose(bound.facade.doc)}{meta}"
        f"{page.toc(bound, types)}"
        f'<section id="authentication"><h2>Authentication</h2>{page.authentication(bound)}'
        "</section>"
        f'<section id="wire"><h2>Values on the wire</h2>{page.wire_rules()}</section>'
        '<section id="operations"><h2>Operations</h2><p>'
        f"{len(bound.operations)} operation(s), each on both protocols.</p></section>"
        + "".join(sections)
        + '<section id="types"><h2>Types</h2><p>The structures the operations send and answer, '
        "by name.</p>" + "".join(page.type_section(t) for t in types) + "</section>"
        f'<section id="errors"><h2>Error catalogue</h2>{page.error_catalogue(_catalogue())}'
        "</section>"
    )
    title = f"{bound.name}: P2P lending platform contract"
    return page.page(title, page.chrome(links, names, bound.name), main, _footer(version))


def changelog_document(releases: list[compat.Release], links: Links, names: list[str]) -> str:
    main = page.changelog_main(releases, links.policy)
    title = "Contract changelog: P2P lending platform"
    footer = "Generated from contracts/released/ by server/compat and server/contractdoc."
    return page.page(title, page.chrome(links, names, None), main, footer)


class Documents:
    """The documents a running platform serves, built once at start-up; only the base URL
    differs per caller (as the WSDL's address does), filled in by :meth:`render`."""

    def __init__(self, facades: list[BoundFacade], version: str, root: Path = REPOSITORY):
        links = Links(_BASE)
        names = [f.name for f in facades]
        self._facades = {
            f.name: facade_document(f, version, links, names).encode() for f in facades
        }
        history = compat.history(root)
        self._changelog = changelog_document(history, links, names).encode()

    @staticmethod
    def _render(template: bytes, base_url: str) -> bytes:
        return template.replace(_BASE.encode(), escape(base_url, {'"': "&quot;"}).encode())

    def facade(self, name: str, base_url: str) -> bytes | None:
        template = self._facades.get(name)
        return None if template is None else self._render(template, base_url)

    def changelog(self, base_url: str) -> bytes:
        return self._render(self._changelog, base_url)


def export(
    facades: list[BoundFacade], version: str, base_url: str, root: Path, out: Path
) -> list[Path]:
    """Write docs/contracts/<Facade>.html and the changelog page under ``out``, the releases
    read from ``root``; the paths written."""
    links = Links(base_url, static=True)
    names = [f.name for f in facades]
    folder = out / STATIC_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for bound in facades:
        path = folder / f"{bound.name}.html"
        path.write_text(facade_document(bound, version, links, names), "utf-8")
        written.append(path)
    path = folder / CHANGELOG_PAGE
    path.write_text(changelog_document(compat.history(root), links, names), "utf-8")
    written.append(path)
    return written
