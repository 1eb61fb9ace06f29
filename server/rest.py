"""JSON REST endpoint: resource paths under ``/api/v1`` with strict HTTP verbs.

Routes are compiled from each operation's REST binding. Path parameters come from the path,
the parameter named in ``Rest.body`` is the JSON body, and the rest come from the query
string (GET, DELETE, or when a body parameter is named) or from the fields of the JSON body.

A path parameter never takes a segment that names another resource: a whole number matches
ASCII digits only, and any other parameter never matches a literal word that another route
has in the same place. So ``GET /messages/read`` is not ``getMessage("read")`` but a 405
whose Allow lists the methods of ``/messages/read`` alone, as JAX-RS matches a path before
its method.
"""

import functools
import re
from collections.abc import Mapping
from typing import Any, cast

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from server import jsoncodec
from server.answer import Answer
from server.binding import shown
from server.body import read_body
from server.dispatcher import Credentials, Dispatcher, Invocation, request_id
from server.headers import error_headers, success_headers
from server.language import negotiate
from server.partnerauth import finish, rest_request
from server.proxy import Proxies
from server.registry import BoundFacade, BoundOperation
from service import errors
from service.derived import Derived
from service.errors import BusinessError, invalid
from service.language import DEFAULT

PREFIX = "/api/v1"
ROUTES_KEPT = 1024  # the (path, method) pairs whose match a REST endpoint keeps
KEPT_PATH_LENGTH = 200  # the longest path kept: a path parameter's length has no bound
_PARAM = re.compile(r"\{(\w+)\}")
_WHOLE_NUMBERS = ("long", "int")


class WholeNumber(BaseConverter):
    """A path parameter declared a whole number: 1 to 19 ASCII digits (a long has at most 19).
    ``[0-9]``, not ``\\d``, which takes the digits of every script (Arabic-Indic ``١``)."""

    regex = "[0-9]{1,19}"


class Segment(BaseConverter):
    """Any other path parameter: one segment, but none of ``literals``, the words other
    routes have in its place (``/payments/recharges`` is not the order ``recharges``)."""

    def __init__(self, url_map: Map, *literals: str):
        super().__init__(url_map)
        if literals:
            words = "|".join(re.escape(w) for w in literals)
            self.regex = f"(?!(?:{words})\\Z)[^/]+"


def _segments(op: BoundOperation) -> list[str]:
    return op.operation.rest.path.strip("/").split("/")


def _shape(segments: list[str]) -> tuple[str, ...]:
    """A path prefix with every parameter written ``{}``: routes that share it compete."""
    return tuple("{}" if _PARAM.fullmatch(s) else s for s in segments)


def route_literals(ops) -> dict[tuple[str, ...], set[str]]:
    """For every path prefix, the literal words that routes have right after it."""
    literals: dict[tuple[str, ...], set[str]] = {}
    for op in ops:
        segments = _segments(op)
        for i, segment in enumerate(segments):
            if not _PARAM.fullmatch(segment):
                literals.setdefault(_shape(segments[:i]), set()).add(segment)
    return literals


def rule_path(op: BoundOperation, literals: dict[tuple[str, ...], set[str]]) -> str:
    """The werkzeug rule of `op`'s path; `literals` from :func:`route_literals`."""
    segments = _segments(op)
    parts = []
    for i, segment in enumerate(segments):
        param = _PARAM.fullmatch(segment)
        if param is None:
            parts.append(segment)
        elif op.request.by_name[param[1]].type.kind in _WHOLE_NUMBERS:
            parts.append(f"<number:{param[1]}>")
        else:
            words = ", ".join(repr(w) for w in sorted(literals.get(_shape(segments[:i]), ())))
            parts.append(f"<segment({words}):{param[1]}>" if words else f"<segment:{param[1]}>")
    return PREFIX + "/" + "/".join(parts)


def openapi_path(op: BoundOperation) -> str:
    return PREFIX + op.operation.rest.path


def path_params(op: BoundOperation) -> set[str]:
    return set(_PARAM.findall(op.operation.rest.path))


def body_fields(op: BoundOperation):
    """The parameters read from the JSON body's fields (not path, query, or the named body)."""
    rest = op.operation.rest
    if rest.method in ("GET", "DELETE") or rest.body:
        return ()
    return tuple(f for f in op.request.fields if f.name not in path_params(op))


def query_fields(op: BoundOperation):
    rest = op.operation.rest
    if rest.method not in ("GET", "DELETE") and not rest.body:
        return ()
    skip = path_params(op) | {rest.body}
    return tuple(f for f in op.request.fields if f.name not in skip)


def error_response(e: BusinessError, rid: str, headers=(), language: str = DEFAULT) -> Response:
    """``{"code", "message", "requestId"}``, and ``"detail"`` when the error has one; the
    message in ``language``, which Content-Language names."""
    answer = {"code": e.code, "message": e.error.text(language), "requestId": rid}
    if e.detail:
        answer["detail"] = e.detail
    return Response(
        jsoncodec.dumps(answer),
        e.error.status,
        content_type="application/json",
        headers=[
            ("X-Request-Id", rid),
            ("Content-Language", language),
            *error_headers(e).items(),
            *headers,
        ],
    )


def _bearer(request: Request) -> Credentials:
    header = request.headers.get("Authorization")
    if header is None:
        return Credentials()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BusinessError(errors.UNAUTHENTICATED, "use Authorization: Bearer <token>")
    return Credentials(token=token.strip())


#: Answers' bodies by the result they were written from (service/derived.py): a cached read's
#: value, shared by every caller who sees it alike, is written once.
_BODIES = Derived()


def _render(inv: Invocation, result) -> Answer:
    """The answer to a call that succeeded (run by the dispatcher, inside its error funnel)."""
    op = inv.operation
    if op.result is None:
        return Answer(b"", 204, {"X-Request-Id": inv.request_id})
    body = _BODIES.get(
        result, op, lambda: jsoncodec.dumps(jsoncodec.to_json(result, op.result.type))
    )
    headers = {
        "Content-Type": "application/json",
        "X-Request-Id": inv.request_id,
        "Content-Language": inv.language,
        **success_headers(op),
    }
    return Answer(body, op.operation.rest.status, headers)


class RestEndpoint:
    def __init__(
        self,
        facades: list[BoundFacade],
        dispatcher: Dispatcher,
        proxies: Proxies,
        max_body_bytes: int,
    ):
        ops = [op for f in facades for op in f.operations]
        literals = route_literals(ops)
        rules = [
            Rule(rule_path(op, literals), methods=[op.operation.rest.method], endpoint=op)
            for op in ops
        ]
        url_map = Map(
            rules,
            strict_slashes=False,
            merge_slashes=False,
            converters={"number": WholeNumber, "segment": Segment},
        )
        # Bound once: the routes match the path alone (no host, no scheme), and match() takes
        # the path and the method as arguments, so one adapter serves every request and thread.
        # What a path and method matched is kept for the paths asked most (a listing's page
        # is asked again and again); the routes never change once made, and a path that
        # matches nothing raises, which is never kept. The values found are only read.
        self._routes = url_map.bind("localhost")
        self._kept = functools.lru_cache(maxsize=ROUTES_KEPT)(self._routes.match)
        self._dispatcher = dispatcher
        self._proxies = proxies
        self._max_body = max_body_bytes

    def __call__(self, request: Request) -> Answer | Response:
        rid = request_id(request.headers.get("X-Request-Id"))
        allow: list[str] = []
        inv = Invocation(
            protocol="rest",
            request_id=rid,
            client_addr=self._proxies.client_addr(request.environ),
            resolve=lambda inv: self._resolve(inv, request, allow),
            render=_render,
            language=negotiate(request.headers.get("Accept-Language")),
        )
        try:
            response: Answer | Response = cast(Answer, self._dispatcher.dispatch(inv))
        except BusinessError as e:  # the dispatcher's answer is what _render made
            allowed = [("Allow", ", ".join(allow))] if allow else ()
            response = error_response(e, rid, allowed, inv.language)
        return finish(inv, response)

    def _match(self, path: str, method: str) -> tuple[BoundOperation, Mapping[str, Any]]:
        """The operation of `path` and `method` and the path's values, kept for a path of
        at most KEPT_PATH_LENGTH characters (what is kept stays small whatever is asked)."""
        if len(path) > KEPT_PATH_LENGTH:
            return self._routes.match(path, method)
        return self._kept(path, method)

    def _resolve(self, inv: Invocation, request: Request, allow: list[str]):
        try:
            op, path_values = self._match(request.path, request.method)
        except MethodNotAllowed as e:
            allow.extend(sorted(e.valid_methods or ()))
            raise BusinessError(errors.METHOD_NOT_ALLOWED) from None
        except NotFound:
            raise BusinessError(errors.UNKNOWN_OPERATION, "no such resource") from None
        inv.operation = op
        if op.operation.partner:  # signed by a partner app, never a member's token
            inv.credentials = Credentials(partner=rest_request(request, self._max_body))
        else:
            inv.credentials = _bearer(request)
        return lambda: self._read_args(op, path_values, request)

    def _read_args(
        self, op: BoundOperation, path_values: Mapping[str, Any], request: Request
    ) -> dict:
        args = {}
        by_name = op.request.by_name
        for name, text in path_values.items():
            f = by_name[name]
            args[f.attr] = jsoncodec.read_text(text, f, name)
        for f in query_fields(op):
            values = request.args.getlist(f.name)
            if f.repeated:
                args[f.attr] = [jsoncodec.read_text(v, f, f.name) for v in values]
            elif len(values) > 1:
                raise invalid(f.name, "appears more than once")
            elif values:
                args[f.attr] = jsoncodec.read_text(values[0], f, f.name)
            elif f.required:
                raise invalid(f.name, "is required")
            else:
                args[f.attr] = None
        rest = op.operation.rest
        fields = body_fields(op)
        if rest.body or fields:
            body = self._json_body(request)
            if rest.body:
                # The body is the parameter itself: errors name its fields as the JSON
                # does (``role``), not by the parameter's name (the SOAP element's).
                f = by_name[rest.body]
                args[f.attr] = jsoncodec.read_field(body, f, "")
            else:
                if not isinstance(body, dict):
                    raise invalid("body", "must be a JSON object")
                known = {f.name for f in fields}
                for key in body:
                    if key not in known:
                        raise invalid(shown(key), "is not a known field")
                for f in fields:
                    args[f.attr] = jsoncodec.read_field(body.get(f.name), f, f.name)
        return args

    def _json_body(self, request: Request):
        return jsoncodec.parse(read_body(request, "application/json", self._max_body))
