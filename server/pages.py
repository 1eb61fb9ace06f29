"""The pages around the contract: the service list, Swagger UI, the health check and the
platform's public key for partners."""

import functools
import html
import json
import mimetypes
from pathlib import Path

from werkzeug.wrappers import Response

from server.lifecycle import CONNECTIONS, STOPPING
from server.registry import BoundFacade
from service import errors
from service.errors import BusinessError
from service.partner.signing import PlatformKey

#: Where partners fetch the public key that verifies the platform's answers to RSA apps.
PLATFORM_KEY_PATH = "/partner/platform-key"

_DOCS = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>P2P platform API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body></html>
"""

_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout", deepLinking: true});
"""


def service_list(facades: list[BoundFacade]) -> Response:
    """CXF's service list: every facade with its operations and links to its contracts and
    its document (server/contractdoc/), and the contracts' changelog."""
    rows = []
    for f in facades:
        name = html.escape(f.name)
        ops = ", ".join(html.escape(o.name) for o in f.operations)
        rows.append(
            f"<tr><td><b>{name}</b><br><small>{html.escape(f.facade.doc)}</small></td>"
            f"<td>{ops}</td>"
            f'<td><a href="/services/{name}?wsdl">WSDL</a></td>'
            f'<td><a href="/docs#/{name}">REST (Swagger UI)</a></td>'
            f'<td><a href="/services/{name}?doc">Document</a></td></tr>'
        )
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Available services</title></head><body><h1>Available SOAP and REST services</h1>"
        '<p>OpenAPI 3: <a href="/openapi.json">/openapi.json</a> &middot; '
        'Swagger UI: <a href="/docs">/docs</a> &middot; '
        'Contract changelog: <a href="/services/changelog">/services/changelog</a></p>'
        '<table border="1" cellpadding="6"><tr><th>Facade</th><th>Operations</th>'
        "<th>SOAP 1.1 and 1.2</th><th>REST</th><th>Both, to read</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return Response(body, mimetype="text/html")


@functools.cache
def _assets() -> dict[str, Path]:
    """Swagger UI's files by name, looked up on the first request for one (not at start)."""
    import swagger_ui_bundle

    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return {p.name: p for p in folder.iterdir() if p.suffix in (".js", ".css", ".png")}


def docs(asset: str) -> Response:
    """Swagger UI from the swagger-ui-bundle package: no CDN, these machines are offline.
    An asset it does not have is UNKNOWN_OPERATION, answered as every error."""
    if asset in ("", "index.html"):
        return Response(_DOCS, mimetype="text/html")
    if asset == "init.js":
        return Response(_INIT, mimetype="text/javascript")
    path = _assets().get(asset)
    if path is None:
        raise BusinessError(errors.UNKNOWN_OPERATION, "no such resource")
    content_type = mimetypes.guess_type(asset)[0] or "application/octet-stream"
    response = Response(path.read_bytes(), mimetype=content_type)
    response.cache_control.max_age = 86400
    return response


def health(database, cache) -> Response:
    """Liveness is answering at all; readiness needs the database (the balancer stops
    sending to a worker that answers 503). The cache is reported but not required. A worker
    that is stopping (server/lifecycle.py) is not ready either, so the balancer drains it;
    nor is one whose connections near its limit (SATURATED), until they fall again."""
    db_up = database.ping()
    checks = {"database": "UP" if db_up else "DOWN", "cache": "UP" if cache.ping() else "DOWN"}
    saturated = CONNECTIONS.saturated()
    ready = db_up and not STOPPING.is_set() and not saturated
    if STOPPING.is_set():
        checks["server"] = "STOPPING"
    elif saturated:
        checks["server"] = "SATURATED"
    body = {"status": "UP" if ready else "DOWN", "checks": checks}
    return Response(json.dumps(body), 200 if ready else 503, mimetype="application/json")


def platform_key(key: PlatformKey | None) -> Response:
    """The platform's partner key, public half: ``{"keyId", "algorithm", "publicKey"}``
    (README "Signed partner calls"); UNKNOWN_OPERATION when none is configured."""
    if key is None:
        raise BusinessError(errors.UNKNOWN_OPERATION, "no platform key is configured")
    body = {"keyId": key.key_id, "algorithm": "RSA_SHA256", "publicKey": key.public_pem()}
    return Response(json.dumps(body), mimetype="application/json")
