"""Binds each facade of the compiled contract (server/contract.py) to its service: builds the
services and makes each operation a :class:`BoundOperation` the protocol adapters call.

Operation ``publishLoan`` is served by the service method ``publish_loan``; its parameters
are matched by name (``loanId`` -> ``loan_id``). A complex parameter arrives as a mapping of
Python names and is turned into the dataclass the service method's annotation names. A
service method that takes ``caller`` receives the authenticated principal.
"""

import dataclasses
import importlib
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facade.contract import Terms
from server.binding import Complex, Field, snake
from server.contract import CompiledFacade, CompiledOperation, Contract, Shared
from service.language import DEFAULT
from service.partner.scopes import SCOPES


@dataclass(frozen=True, eq=False)
class BoundOperation:
    facade: CompiledFacade
    operation: Terms
    request: Complex  # the wrapper: one field a parameter
    response: Complex  # the wrapper: a field "return", or none for a void operation
    method: typing.Callable
    commands: Mapping[str, type]  # parameter attr -> the dataclass the service takes
    passes_caller: bool
    passes_language: bool  # a parameter ``language``: what the caller is told in
    fault_codes: frozenset[str]  # every catalogue code it may raise (server/faults.py)

    @property
    def name(self) -> str:
        return self.operation.name

    @property
    def facade_name(self) -> str:
        return self.facade.name

    @property
    def namespace(self) -> str:
        return self.facade.namespace

    @property
    def roles(self):
        return self.operation.roles

    @property
    def partner_scope(self) -> str | None:
        """The scope a partner app needs to call it; None for an operation members call."""
        return self.operation.partner_scope

    @property
    def result(self) -> Field | None:
        return self.response.fields[0] if self.response.fields else None

    def invoke(self, args: Mapping[str, Any], principal, language: str = DEFAULT) -> object:
        kwargs = {}
        for name, value in args.items():
            command = self.commands.get(name)
            kwargs[name] = command(**value) if command and value is not None else value
        if self.passes_caller:
            kwargs["caller"] = principal
        if self.passes_language:
            kwargs["language"] = language
        return self.method(**kwargs)


def bind_operation(
    facade: CompiledFacade, compiled: CompiledOperation, service: object
) -> BoundOperation:
    op = compiled.terms
    method_name = snake(op.name)
    method = getattr(service, method_name, None)
    where = f"{facade.name}.{op.name}"
    if op.partner and op.partner_scope not in SCOPES:
        raise TypeError(f"{where}: partner scope {op.partner_scope!r} is not one of {SCOPES}")
    if method is None:
        raise TypeError(f"{where}: {type(service).__name__} has no method {method_name}")
    signature = inspect.signature(method)
    hints = typing.get_type_hints(method)
    params = compiled.request.fields
    expected = {f.attr for f in params}
    accepted = set(signature.parameters) - {"caller", "language"}
    if expected != accepted:
        raise TypeError(
            f"{where}: parameters {sorted(expected)} do not match "
            f"{type(service).__name__}.{method_name}{sorted(accepted)}"
        )
    commands: dict[str, type] = {}
    for f in params:
        if isinstance(f.type, Complex):
            command = hints.get(f.attr)
            if not (isinstance(command, type) and dataclasses.is_dataclass(command)):
                raise TypeError(
                    f"{where}: {method_name}({f.attr}) must be annotated with a dataclass"
                )
            names = {x.name for x in dataclasses.fields(command)}
            if names != {x.attr for x in f.type.fields}:
                raise TypeError(f"{where}: {command.__name__} fields do not match {f.type.name}")
            commands[f.attr] = command
    return BoundOperation(
        facade=facade,
        operation=op,
        request=compiled.request,
        response=compiled.response,
        method=method,
        commands=commands,
        passes_caller="caller" in signature.parameters,
        passes_language="language" in signature.parameters,
        fault_codes=compiled.fault_codes,
    )


def build_service(path: str, components: Mapping[str, object]) -> object:
    """Instantiate ``module:Class`` with its constructor's parameters taken by name from
    ``components`` (the composition root's tx, cache, settings, clock, …)."""
    module_name, _, class_name = path.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    wanted = inspect.signature(cls).parameters
    missing = [name for name in wanted if name not in components]
    if missing:
        raise TypeError(f"{path} needs {missing}, which the platform does not provide")
    return cls(**{name: components[name] for name in wanted})


@dataclass(frozen=True, eq=False)
class BoundFacade:
    facade: CompiledFacade
    operations: tuple[BoundOperation, ...]
    shared: Shared  # the types its WSDL may carry besides its operations' own

    @property
    def name(self) -> str:
        return self.facade.name

    def operation(self, name: str) -> BoundOperation | None:
        return next((o for o in self.operations if o.name == name), None)


def bind(contract: Contract, services: Mapping[str, object]) -> list[BoundFacade]:
    """Bind every facade of ``contract`` to its service instance (keyed by its ``service``); a
    mismatch between a facade and its service fails here, at start-up."""
    return [
        BoundFacade(
            f,
            tuple(bind_operation(f, op, services[f.service]) for op in f.operations),
            contract.shared,
        )
        for f in contract.facades
    ]
