"""Binds each facade to its service: finds the facades, builds the services, and compiles
each operation into a :class:`BoundOperation` the protocol adapters call.

Operation ``publishLoan`` is served by the service method ``publish_loan``; its parameters
are matched by name (``loanId`` -> ``loan_id``). A complex parameter arrives as a mapping of
Python names and is turned into the dataclass the service method's annotation names. A
service method that takes ``caller`` receives the authenticated principal.
"""

import dataclasses
import importlib
import inspect
import pkgutil
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import facade
from facade.contract import Facade, Operation
from server.binding import Complex, Field, field, snake
from server.faults import fault_codes
from service.language import DEFAULT
from service.partner.scopes import SCOPES


def discover_facades() -> list[type[Facade]]:
    """Every Facade subclass in the facade package, ordered by name."""
    found = {}
    for info in pkgutil.iter_modules(facade.__path__, "facade."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Facade) and value is not Facade:
                found[value.__name__] = value
    return [found[name] for name in sorted(found)]


@dataclass(frozen=True, eq=False)
class BoundOperation:
    facade: type[Facade]
    operation: Operation
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
        return self.facade.__name__

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


def _wrapper(name: str, namespace: str, fields: tuple[Field, ...], doc: str) -> Complex:
    return Complex(name, namespace, doc, fields, {f.name: f for f in fields})


def bind_operation(facade_cls: type[Facade], op: Operation, service: object) -> BoundOperation:
    method_name = snake(op.name)
    method = getattr(service, method_name, None)
    where = f"{facade_cls.__name__}.{op.name}"
    if op.partner and op.partner_scope not in SCOPES:
        raise TypeError(f"{where}: partner scope {op.partner_scope!r} is not one of {SCOPES}")
    if method is None:
        raise TypeError(f"{where}: {type(service).__name__} has no method {method_name}")
    signature = inspect.signature(method)
    hints = typing.get_type_hints(method)
    params = tuple(field(p.name, p.type) for p in op.params)
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
    returns = () if op.returns is None else (field("return", op.returns),)
    try:
        codes = fault_codes(op)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None
    return BoundOperation(
        facade=facade_cls,
        operation=op,
        request=_wrapper(op.name, facade_cls.namespace, params, op.doc),
        response=_wrapper(op.name + "Response", facade_cls.namespace, returns, ""),
        method=method,
        commands=commands,
        passes_caller="caller" in signature.parameters,
        passes_language="language" in signature.parameters,
        fault_codes=codes,
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
    facade: type[Facade]
    operations: tuple[BoundOperation, ...]

    @property
    def name(self) -> str:
        return self.facade.__name__

    def operation(self, name: str) -> BoundOperation | None:
        return next((o for o in self.operations if o.name == name), None)


def bind(facades: list[type[Facade]], services: Mapping[str, object]) -> list[BoundFacade]:
    """Bind every facade to its service instance (keyed by ``Facade.service``); a mismatch
    between a facade and its service fails here, at start-up."""
    return [
        BoundFacade(f, tuple(bind_operation(f, op, services[f.service]) for op in f.operations))
        for f in facades
    ]
