"""REST validation errors name a field as the JSON spells it, from the body down: ``role``,
``request.role`` never (``request`` is the SOAP wrapper's element, not in the JSON); a
nested field is ``a.b``, a list's item ``a[0]``. Checked for every operation with a body."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from server.binding import Complex
from server.rest import RestEndpoint, body_fields, path_params
from service.errors import BusinessError


def _request(body: object) -> Request:
    data = json.dumps(body).encode()
    return Request(
        EnvironBuilder(method="POST", data=data, content_type="application/json").get_environ()
    )


def _refusal(endpoint: RestEndpoint, op, body: object) -> str:
    path_values = {name: "1" for name in path_params(op)}
    with pytest.raises(BusinessError) as e:
        endpoint._read_args(op, path_values, _request(body))
    assert e.value.code == "VALIDATION_FAILED"
    return e.value.message


def _operations(platform, with_body: bool):
    return [
        op
        for f in platform.facades
        for op in f.operations
        if bool(op.operation.rest.body) == with_body and (with_body or body_fields(op))
    ]


def test_every_named_body_s_fields_are_named_from_the_body(platform) -> None:
    endpoint = RestEndpoint(platform.facades, dispatcher=None, proxies=None, max_body_bytes=10**6)
    ops = _operations(platform, with_body=True)
    assert ops  # e.g. register, publishLoan, bindCard
    for op in ops:
        declared = op.request.by_name[op.operation.rest.body].type
        assert isinstance(declared, Complex)
        assert _refusal(endpoint, op, {"zzz": 1}) == "zzz: is not a known field", op.name
        required = next((f for f in declared.fields if f.required), None)
        if required is not None:  # a body of optional fields only (a list of events) takes {}
            message = _refusal(endpoint, op, {})
            assert message == f"{required.name}: is required", op.name
        assert _refusal(endpoint, op, [1]) == "body: must be a JSON object", op.name


def test_the_fields_of_a_plain_body_are_named_alike(platform) -> None:
    endpoint = RestEndpoint(platform.facades, dispatcher=None, proxies=None, max_body_bytes=10**6)
    for op in _operations(platform, with_body=False):
        assert _refusal(endpoint, op, {"zzz": 1}) == "zzz: is not a known field", op.name
