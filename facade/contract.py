"""The vocabulary a facade is declared in: facades, operations, REST bindings and roles.

A facade is a class whose methods, decorated with :func:`operation`, are the operations
partners call. The framework in ``server/`` publishes every facade over SOAP 1.1
(document/literal wrapped) and JSON REST from this one declaration.
"""

import inspect
from dataclasses import dataclass, fields

INVESTOR = "INVESTOR"
BORROWER = "BORROWER"
OPERATOR = "OPERATOR"
ROLES = (INVESTOR, BORROWER, OPERATOR)
MEMBERS = frozenset(ROLES)
#: The namespace of the types every facade shares (facade/types.py): money, the fault, the
#: auth header.
COMMON_NS = "http://p2p.hry.com/facade/common"


def roles_in_words(roles: frozenset[str] | None) -> str:
    """The roles that may call an operation, in words: "anyone" (public), "any member",
    "OPERATOR", "INVESTOR or BORROWER"."""
    if roles is None:
        return "anyone"
    if roles == MEMBERS:
        return "any member"
    return " or ".join(r for r in ROLES if r in roles)


@dataclass(frozen=True)
class Rest:
    """Where an operation sits on the REST side: an HTTP method and a path under /api/v1.

    Path parameters are written ``{name}`` with the operation's parameter name. ``body`` names
    the one complex parameter that is the whole JSON body; the other parameters come from the
    path, then the query string (GET, DELETE) or the fields of the JSON body (POST, PUT).
    """

    method: str
    path: str
    body: str | None = None
    status: int = 200


def GET(path: str) -> Rest:
    return Rest("GET", path)


def POST(path: str, *, body: str | None = None, status: int = 200) -> Rest:
    return Rest("POST", path, body=body, status=status)


def PUT(path: str, *, body: str | None = None) -> Rest:
    return Rest("PUT", path, body=body)


def DELETE(path: str) -> Rest:
    return Rest("DELETE", path, status=204)


@dataclass(frozen=True)
class Param:
    name: str
    type: type


@dataclass(frozen=True, kw_only=True)
class Terms:
    """What an operation promises besides its types: its name and text, who may call it, where
    it sits on REST, the codes it declares. A serving worker holds these alone (with its
    types compiled: server/contract.py), never the spyne declarations."""

    name: str
    doc: str
    roles: frozenset[str] | None
    rest: Rest
    deprecated: bool = False
    sensitive: bool = False
    errors: frozenset[str] = frozenset()
    partner_scope: str | None = None
    partner_rate: tuple[int, int] | None = None

    @property
    def public(self) -> bool:
        return self.roles is None and self.partner_scope is None

    @property
    def partner(self) -> bool:
        """Whether only a partner app's signed request may call it (no member credentials)."""
        return self.partner_scope is not None

    def terms(self) -> "Terms":
        """These terms alone, without the declaration's types (on an :class:`Operation`)."""
        return Terms(**{f.name: getattr(self, f.name) for f in fields(Terms)})


@dataclass(frozen=True, kw_only=True)
class Operation(Terms):
    """One operation of a facade; its name is the partner-facing contract on both protocols."""

    params: tuple[Param, ...]
    returns: type | None


def operation(
    *,
    rest: Rest,
    returns: type | None = None,
    roles=None,
    deprecated: bool = False,
    sensitive: bool = False,
    errors=(),
    partner_scope: str | None = None,
    partner_rate: tuple[int, int] | None = None,
):
    """Declare an operation. Its parameters are the function's annotated parameters, in order.

    ``roles`` is None for a public operation, else the roles allowed to call it.
    ``sensitive`` marks an operation whose response carries a secret or a token: no cache
    (browser, proxy) may keep it, on either protocol.
    ``errors`` names the catalogue codes (service/errors.py) the operation itself may raise,
    beyond those every call may meet (server/faults.py adds them); both contracts publish
    them, and a code raised that is not declared is logged as an error.
    ``partner_scope`` makes it a partner operation: called by a partner app's server with a
    signed request (README "Signed partner calls"), never with a member's credentials, and
    only by an app granted that scope (service/partner/scopes.py names them); it has no roles.
    ``partner_rate`` (calls a minute, burst) limits each app's calls of it, beyond the app's
    own limit.
    """
    if partner_scope is not None and roles is not None:
        raise ValueError("a partner operation is called by apps, not members: it has no roles")
    if partner_rate is not None and (partner_scope is None or min(partner_rate) < 1):
        raise ValueError("partner_rate is a partner operation's (calls a minute, burst), both >= 1")
    if roles is not None:
        roles = frozenset(roles)
        unknown = roles - MEMBERS
        if not roles or unknown:
            raise ValueError(f"roles must be a non-empty subset of {ROLES}, got {sorted(roles)}")

    def declare(fn) -> Operation:
        signature = inspect.signature(fn, eval_str=False)
        params = tuple(Param(p.name, p.annotation) for p in signature.parameters.values())
        for p in params:
            if p.type is inspect.Parameter.empty:
                raise TypeError(f"{fn.__name__}: parameter {p.name} has no type")
        return Operation(
            name=fn.__name__,
            doc=inspect.cleandoc(fn.__doc__ or ""),
            params=params,
            returns=returns,
            roles=roles,
            rest=rest,
            deprecated=deprecated,
            sensitive=sensitive,
            errors=frozenset(errors),
            partner_scope=partner_scope,
            partner_rate=partner_rate,
        )

    return declare


class Facade:
    """Base of every facade. Subclasses set ``namespace`` and ``service``.

    A large facade may be composed of plain classes grouping its operations (one module a
    group); the facade class lists them as bases and is the one contract partners see.

    ``service`` is the implementing class as ``"module:Class"``; operation ``getLoan`` is
    served by its method ``get_loan``, parameters matched by name in snake_case.
    """

    namespace: str
    service: str
    operations: tuple[Operation, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared: dict[str, Operation] = {}
        for klass in cls.__mro__:  # the facade's own, then its groups in the order listed
            for name, value in vars(klass).items():
                if isinstance(value, Operation):
                    declared.setdefault(name, value)
        cls.operations = tuple(declared.values())
        if not getattr(cls, "namespace", None) or not getattr(cls, "service", None):
            raise TypeError(f"{cls.__name__} must set namespace and service")

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")
