"""The HTML of the contract documents: one self-contained page per facade, and the changelog.

A page carries its own style sheet and no script: it reads the same offline, in a browser and
printed (``@media print``: no navigation bar; the operations, each further operation, the
structures and the error catalogue each from a new page; the address of every link written
after it). Every text that comes from the contract is escaped here, and runs of Chinese
characters are marked ``lang="zh-Hans"`` so a browser picks a font that has them.
"""

from __future__ import annotations

import html
import re
from http import HTTPStatus

from facade.contract import COMMON_NS
from server.binding import TEXT_RULES, Complex, Field
from server.compat import Release
from server.contractdoc.examples import LOGIN_PLACEHOLDER, PARTNER_PLACEHOLDERS, Example
from server.contractdoc.faults import PROVENANCE, Fault
from server.contractdoc.fields import constraints, json_type, occurrence, xs_type
from server.registry import BoundFacade, BoundOperation
from server.soap import ENV12
from server.wsdl import AUTH_DOC, soap_action
from service.errors import ErrorCode

_HAN = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+"
)

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
html { font-size: 15px; -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: #1b1f24; background: #ffffff; line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans",
    "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif;
}
main { max-width: 64rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
nav.chrome { background: #f3f5f8; border-bottom: 1px solid #d0d7de; font-size: .9rem; }
nav.chrome ul { max-width: 64rem; margin: 0 auto; padding: .45rem 1.25rem; list-style: none;
  display: flex; flex-wrap: wrap; gap: .2rem 1.1rem; }
nav.chrome [aria-current] { font-weight: 600; color: #1b1f24; text-decoration: none; }
a { color: #0a4b94; }
a:visited { color: #5a3d8a; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: .5rem 0 .75rem; }
h2 { font-size: 1.4rem; line-height: 1.25; margin: 2.5rem 0 .75rem; padding-bottom: .25rem;
  border-bottom: 2px solid #d0d7de; }
h3 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
p { margin: .5rem 0; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono",
  "DejaVu Sans Mono", "Noto Sans Mono CJK SC", monospace; font-size: .87em; }
code { background: #f1f3f6; border-radius: 3px; padding: 0 .2em; overflow-wrap: anywhere; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px; padding: .6rem .75rem;
  margin: .4rem 0 1rem; white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.4; }
pre code, th code { background: none; padding: 0; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; margin: .5rem 0 1rem;
  font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .35rem .5rem; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #eef1f5; font-weight: 600; }
td ul { margin: 0; padding-left: 1.1rem; }
.note { color: #3d4751; font-size: .92rem; }
.json { color: #3d4751; }
.badge { display: inline-block; font-size: .75rem; font-weight: 600; vertical-align: middle;
  border: 1px solid #9a6700; color: #7a5200; border-radius: 3px; padding: 0 .35rem; }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .25rem 1rem;
  margin: .75rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
blockquote { margin: .5rem 0; padding: .1rem 0 .1rem 1rem; border-left: 3px solid #d0d7de; }
nav.toc ol { padding-left: 1.4rem; }
nav.toc ol ol { columns: 2 14rem; }
.top { font-size: .85rem; text-align: right; }
footer { max-width: 64rem; margin: 0 auto; padding: 1rem 1.25rem 2rem; color: #3d4751;
  font-size: .85rem; border-top: 1px solid #d0d7de; }
@media print {
  @page { size: A4; margin: 16mm 14mm 18mm; }
  html { font-size: 10pt; }
  nav.chrome, .top { display: none; }
  main, footer { max-width: none; padding-left: 0; padding-right: 0; }
  #operations, section.operation + section.operation, #types, #errors { break-before: page; }
  h2, h3, h4 { break-after: avoid; }
  tr, dl.facts { break-inside: avoid; }
  pre, code, th { background: none; }
  a, a:visited { color: inherit; }
  a[href]:not([href^="#"])::after { content: " <" attr(href) ">"; font-size: .85em;
    overflow-wrap: anywhere; }
}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def text(value: str) -> str:
    """``value`` escaped, its runs of Chinese characters marked as such."""
    return _HAN.sub(lambda m: f'<span lang="zh-Hans">{m.group()}</span>', esc(value))


def prose(doc: str) -> str:
    """A docstring as paragraphs (a blank line between them)."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc.strip())]
    return "".join(f"<p>{text(p)}</p>" for p in paragraphs if p)


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def page(title: str, chrome: str, main: str, footer: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{chrome}\n<main>\n{main}\n</main>\n<footer>{footer}</footer>\n</body>\n</html>\n"
    )


def chrome(links, names: list[str], current: str | None) -> str:
    """The navigation bar (hidden in print): the service list, every facade's document, the
    changelog."""
    items = []
    if links.services is not None:
        items.append(f'<li><a href="{esc(links.services)}">All services</a></li>')
    for name in names:
        mark = ' aria-current="page"' if name == current else ""
        items.append(f'<li><a href="{esc(links.document(name))}"{mark}>{esc(name)}</a></li>')
    mark = ' aria-current="page"' if current is None else ""
    items.append(f'<li><a href="{esc(links.changelog)}"{mark}>Changelog</a></li>')
    return f'<nav class="chrome" aria-label="Contract documents"><ul>{"".join(items)}</ul></nav>'


# -- facade documents --------------------------------------------------------------------


def _segment(namespace: str) -> str:
    return namespace.rstrip("/").rsplit("/", 1)[-1]


def type_id(t: Complex) -> str:
    return f"type-{_segment(t.namespace)}-{t.name}"


def structures(bound: BoundFacade) -> list[Complex]:
    """Every structure (DTO) a facade's operations send or answer, by name."""
    found: dict[tuple[str, str], Complex] = {}

    def add(t) -> None:
        if isinstance(t, Complex) and (t.namespace, t.name) not in found:
            found[(t.namespace, t.name)] = t
            for f in t.fields:
                add(f.type)

    for op in bound.operations:
        for f in op.request.fields + op.response.fields:
            add(f.type)
    return sorted(found.values(), key=lambda t: (t.name, t.namespace))


def _type_cell(f: Field) -> str:
    t = f.type
    xs = esc(xs_type(t))
    if isinstance(t, Complex):
        xs = f'<a href="#{esc(type_id(t))}">{xs}</a>'
    kind = json_type(t)
    json = f"array of {kind}" if f.repeated else kind
    return f'{xs}<br><span class="json">JSON: {esc(json)}</span>'


def _constraints_cell(f: Field) -> str:
    items = []
    for words, code in constraints(f.type):
        items.append(esc(words) + ("" if code is None else f" <code>{esc(code)}</code>"))
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>" if items else ""


def _description(f: Field) -> str:
    """The field's documentation, else its structure's (an operation's ``return``)."""
    if f.doc or not isinstance(f.type, Complex):
        return f.doc
    return f.type.doc


def field_table(fields, places: dict[str, str] | None = None) -> str:
    """The fields as a table; ``places`` says where each is sent over REST (inputs only)."""
    rows = []
    for f in fields:
        where = ""
        if places is not None:
            where = f'<br><span class="note">REST: {esc(places[f.name])}</span>'
        rows.append(
            f'<tr data-field="{esc(f.name)}"><td><code>{esc(f.name)}</code>{where}</td>'
            f"<td>{_type_cell(f)}</td><td>{esc(occurrence(f))}</td>"
            f"<td>{_constraints_cell(f)}</td><td>{text(_description(f))}</td></tr>"
        )
    return (
        '<table class="fields"><colgroup><col style="width:17%"><col style="width:19%">'
        '<col style="width:10%"><col style="width:24%"><col style="width:30%"></colgroup>'
        "<thead><tr><th>Field</th><th>Type</th><th>Use</th><th>Constraints</th>"
        "<th>Description</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _roles(op: BoundOperation) -> str:
    if op.operation.partner:
        return f"partner apps: a signed request, scope {op.operation.partner_scope}"
    if op.operation.public:
        return "public: anyone, logged in or not"
    return "roles: " + ", ".join(sorted(op.roles))


def _facts(op: BoundOperation, endpoint: str) -> str:
    rest = op.operation.rest
    success = 204 if op.result is None else rest.status
    facts = [
        ("Access", esc(_roles(op))),
        (
            "SOAP 1.1",
            f"POST <code>{esc(endpoint)}</code>, body element <code>{esc(op.request.name)}"
            f"</code>, answered by <code>{esc(op.response.name)}</code>; SOAPAction "
            '<code>""</code>',
        ),
        (
            "SOAP 1.2",
            "the same, as <code>application/soap+xml</code>; its <code>action</code> "
            f"parameter, optional, is <code>{esc(soap_action(op))}</code>",
        ),
        (
            "REST",
            f"<code>{esc(rest.method)} /api/v1{esc(rest.path)}</code>, answered "
            f"<code>{esc(status_line(success))}</code>",
        ),
    ]
    if op.operation.deprecated:
        facts.append(("Deprecated", "kept for partners that call it; do not use it in new code"))
    if op.operation.sensitive:
        facts.append(
            (
                "Caching",
                "answered with <code>Cache-Control: no-store</code>: the answer carries a token "
                "or a secret",
            )
        )
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
        + "</dl>"
    )


def _fault_table(faults: list[Fault]) -> str:
    rows = "".join(
        f'<tr data-code="{esc(f.error.code)}"><td><a href="#error-{esc(f.error.code)}">'
        f"<code>{esc(f.error.code)}</code></a></td><td>{f.error.status}</td>"
        f"<td>{text(f.error.message)}</td><td>{esc(f.when)}</td></tr>"
        for f in faults
    )
    return (
        '<table class="faults"><colgroup><col style="width:30%"><col style="width:9%">'
        '<col style="width:33%"><col style="width:28%"></colgroup>'
        "<thead><tr><th>Code</th><th>REST status</th><th>Meaning</th><th>When</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _examples(op: BoundOperation, example: Example, endpoint: str) -> str:
    rest_answer = (
        f"<p>Answer: <code>{esc(status_line(example.rest_status))}</code>, "
        "<code>application/json</code>:</p>"
        f'<pre data-example="rest-response"><code>{text(example.rest_response)}</code></pre>'
        if example.rest_response is not None
        else f"<p>Answer: <code>{esc(status_line(example.rest_status))}</code>, no body.</p>"
    )
    return (
        "<h3>Example over SOAP 1.1</h3>"
        f"<p>POST to <code>{esc(endpoint)}</code> with <code>Content-Type: text/xml; "
        'charset=utf-8</code> and <code>SOAPAction: ""</code>:</p>'
        f'<pre data-example="soap-request"><code>{text(example.soap_request)}</code></pre>'
        "<p>Answer: <code>200 OK</code>, <code>text/xml; charset=utf-8</code>:</p>"
        f'<pre data-example="soap-response"><code>{text(example.soap_response)}</code></pre>'
        "<p>Over SOAP 1.2 the same envelopes are in the namespace <code>"
        f"{esc(ENV12)}</code>, sent and answered as <code>application/soap+xml; "
        "charset=utf-8</code>.</p>"
        "<h3>Example over REST</h3>"
        f'<pre data-example="rest-request"><code>{text(example.rest_request)}</code></pre>'
        + rest_answer
    )


def rest_places(op: BoundOperation, path: set[str], query, body) -> dict[str, str]:
    places = {name: "in the path" for name in path}
    places.update({f.name: "a query parameter" for f in query})
    places.update({f.name: "a field of the JSON body" for f in body})
    if op.operation.rest.body:
        places[op.operation.rest.body] = "the whole JSON body"
    return places


def operation_section(
    op: BoundOperation,
    endpoint: str,
    places: dict[str, str],
    faults: list[Fault],
    example: Example,
) -> str:
    badge = ' <span class="badge">deprecated</span>' if op.operation.deprecated else ""
    inputs = (
        field_table(op.request.fields, places)
        if op.request.fields
        else "<p>None: the request element is empty, and REST takes no parameters.</p>"
    )
    if op.result is None:
        outputs = "<p>None: the response element is empty, and REST answers 204 with no body.</p>"
    else:
        outputs = (
            f'<p class="note">Over SOAP the <code>return</code> element of '
            f"<code>{esc(op.response.name)}</code>; over REST the JSON body itself.</p>"
            + field_table(op.response.fields)
        )
    return (
        f'<section class="operation" id="op-{esc(op.name)}">'
        f"<h2>{esc(op.name)}{badge}</h2>{_facts(op, endpoint)}{prose(op.operation.doc)}"
        f"<h3>Input</h3>{inputs}<h3>Output</h3>{outputs}"
        f'<h3>Faults</h3><p class="note">{esc(PROVENANCE)}</p>{_fault_table(faults)}'
        f"{_examples(op, example, endpoint)}"
        '<p class="top"><a href="#contents">Contents</a></p></section>'
    )


def type_section(t: Complex) -> str:
    return (
        f'<section class="type" id="{esc(type_id(t))}"><h3>{esc(t.name)}</h3>'
        f'<p class="note">Namespace <code>{esc(t.namespace)}</code></p>{prose(t.doc)}'
        f"{field_table(t.fields)}</section>"
    )


def authentication(bound: BoundFacade) -> str:
    if all(op.operation.partner for op in bound.operations):
        return (
            "<p>Every operation of this facade is called by a partner app's server with a "
            "signed request, never with a member's credentials; the app needs the scope each "
            "operation names. Over REST the request carries the headers <code>X-P2P-App-Id"
            "</code>, <code>X-P2P-Key-Id</code>, <code>X-P2P-Timestamp</code>, <code>X-P2P-"
            "Nonce</code> and <code>X-P2P-Signature</code>; over SOAP the same fields in the "
            "<code>PartnerSignature</code> header. Answers are signed in the same X-P2P "
            "headers. The platform's README, section Signed partner calls, states what is "
            "signed, with a worked example.</p>"
            f"<p>In the examples below, <code>{esc(PARTNER_PLACEHOLDERS)}</code> stand for "
            "those values.</p>"
        )
    public = [op.name for op in bound.operations if op.operation.public]
    if len(public) == len(bound.operations):
        return (
            "<p>Every operation of this facade is public: no credentials are needed. "
            "Credentials sent anyway are checked, and refused with UNAUTHENTICATED when they "
            "are not valid.</p>"
        )
    listed = (
        "<p>Public, needing no credentials: "
        + ", ".join(f'<a href="#op-{esc(n)}"><code>{esc(n)}</code></a>' for n in public)
        + ".</p>"
        if public
        else "<p>Every operation of this facade needs a login.</p>"
    )
    return (
        "<p>Over SOAP, as the WSDL states it:</p>"
        f"<blockquote>{text(AUTH_DOC)}</blockquote>"
        "<p>Over REST, send the token from <code>MemberFacade.login</code> as "
        "<code>Authorization: Bearer &lt;token&gt;</code>.</p>"
        f"<p>In the examples below, <code>{esc(LOGIN_PLACEHOLDER)}</code> (<code>$"
        f"{esc(LOGIN_PLACEHOLDER)}</code> in the shell) stands for that token.</p>" + listed
    )


def wire_rules() -> str:
    return (
        "<p>Money is an exact decimal in yuan: <code>xs:decimal</code> in SOAP, a string such "
        'as <code>"100.00"</code> in JSON, never a binary floating-point number; rates '
        "likewise. Times are UTC with a time zone (<code>2026-01-31T08:00:00Z</code>). Field "
        "names are the same on both protocols.</p>"
        f"<p>{text(TEXT_RULES)}</p>"
        "<p>The examples are generated from the types: each value satisfies its field's type "
        "and constraints, and the platform's readers accept every example request. Rules the "
        "services check beyond the types (a card number's check digit, an amount within the "
        "configured limits, who may see what) may still refuse an example's values.</p>"
    )


def error_catalogue(entries: list[tuple[ErrorCode, list[tuple[str, str]]]]) -> str:
    """``entries``: each code with its fault's HTTP status and fault code in SOAP 1.1, then in
    SOAP 1.2."""
    rows = "".join(
        f'<tr id="error-{esc(e.code)}"><td><code>{esc(e.code)}</code></td>'
        f"<td>{text(e.message)}<br>{text(e.zh)}</td><td>{e.status}</td>"
        + "".join(
            f"<td>{esc(status)}</td><td><code>{esc(code)}</code></td>" for status, code in soap
        )
        + "</tr>"
        for e, soap in entries
    )
    return (
        "<p>Every refusal carries one of these codes: over REST a JSON body <code>{code, "
        "message, requestId, detail}</code> with the status below; over SOAP a Fault whose "
        f"detail holds a <code>BusinessFault</code> (namespace <code>"
        f"{esc(COMMON_NS)}</code>) with the same code, message, request id and detail (in SOAP "
        "1.2 the code is the Subcode's value too). Quote the request id to support. The "
        "message is the one below, in English, or in Chinese when the request's "
        "Accept-Language prefers it (Content-Language names the one sent); the detail, when "
        "there is one, says exactly what (the field and the rule, the id not found), in "
        "English.</p>"
        '<table class="catalogue"><colgroup><col style="width:22%"><col style="width:28%">'
        '<col style="width:8%"><col style="width:7%"><col style="width:14%">'
        '<col style="width:7%"><col style="width:14%"></colgroup>'
        "<thead><tr><th>Code</th><th>Meaning</th><th>REST status</th><th>SOAP 1.1 status</th>"
        "<th>SOAP 1.1 faultcode</th><th>SOAP 1.2 status</th><th>SOAP 1.2 Code</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def toc(bound: BoundFacade, types: list[Complex]) -> str:
    ops = "".join(
        f'<li><a href="#op-{esc(op.name)}">{esc(op.name)}</a></li>' for op in bound.operations
    )
    kinds = "".join(f'<li><a href="#{esc(type_id(t))}">{esc(t.name)}</a></li>' for t in types)
    return (
        '<nav class="toc" id="contents" aria-label="Contents"><h2>Contents</h2><ol>'
        '<li><a href="#authentication">Authentication</a></li>'
        '<li><a href="#wire">Values on the wire</a></li>'
        f'<li><a href="#operations">Operations</a><ol>{ops}</ol></li>'
        f'<li><a href="#types">Types</a><ol>{kinds}</ol></li>'
        '<li><a href="#errors">Error catalogue</a></li></ol></nav>'
    )


# -- the changelog -----------------------------------------------------------------------


def _changes(title: str, changes) -> str:
    items = (
        "".join(f"<li><code>{esc(c.where)}</code>: {text(c.what)}</li>" for c in changes)
        or "<li>none</li>"
    )
    return f"<h3>{esc(title)}</h3><ul>{items}</ul>"


def notes(markdown: str) -> str:
    """A release's notes: paragraphs, and lists whose items begin with "- " (an item's
    following lines indented)."""
    out = []
    for block in re.split(r"\n\s*\n", markdown.strip()):
        lines = block.splitlines()
        if not lines[0].startswith("- "):
            out.append(f"<p>{text(' '.join(block.split()))}</p>")
            continue
        items: list[str] = []
        for line in lines:
            if line.startswith("- "):
                items.append(line[2:])
            else:
                items[-1] += " " + line
        out.append(
            "<ul>" + "".join(f"<li>{text(' '.join(i.split()))}</li>" for i in items) + "</ul>"
        )
    return '<div class="notes">' + "".join(out) + "</div>"


def release_section(release: Release) -> str:
    head = f'<section class="release" id="v{esc(release.version)}"><h2>{esc(release.version)}</h2>'
    head += notes(release.notes) if release.notes else ""
    if release.changes is None:
        return head + "<p>The first released version.</p></section>"
    breaking = [c for c in release.changes if c.breaking]
    compatible = [c for c in release.changes if not c.breaking]
    body = ""
    if breaking:
        body += _changes(f"Breaking ({len(breaking)}), a new major version", breaking)
    body += _changes(
        "Added or changed, compatible" if breaking else "Compatible changes", compatible
    )
    return head + body + "</section>"


def changelog_main(releases: list[Release], policy: str | None) -> str:
    where = f' The policy is in <a href="{esc(policy)}">docs/contracts.md</a>.' if policy else ""
    intro = (
        "<h1>Contract changelog</h1><p>What each released version of the published contracts "
        "(the WSDL of every facade and the OpenAPI document) changed from the one before, as "
        f"the release found it, newest first.{where}</p>"
    )
    if not releases:
        return intro + (
            '<p class="empty"><strong>No release yet.</strong> No version of the contracts has '
            "been released, so there is nothing to compare: the documents describe the contract "
            "as it is now.</p>"
        )
    return intro + "".join(release_section(r) for r in releases)
