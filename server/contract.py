"""The contract compiled: each facade and operation as the framework serves it, every type a
binding description (server/binding.py), no spyne class among them.

server/declared.py compiles the facades' declarations into a :class:`Contract`. ``p2p serve``
and ``p2p worker`` have a child process do it (:class:`Compiler`) and read the result, so they
never import spyne nor hold its classes: what those took (some 9 MiB, bench/README.md) stays in
the child, which exits. ``p2p serve`` starts the child before its own imports load
(server/cli.py), so that both run at once. Every other command, and the tests, compile in
process; both ways give the same contract, and the same WSDL, OpenAPI and contract documents
(tests/unit/server/test_compiled_contract.py).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from facade.contract import Terms
from server.binding import Complex

#: The child's module: it writes a pickle of the :class:`Contract` on its standard output.
CHILD_MODULE = "server.declared"
#: Where this code's packages are: the child imports the same code as its parent.
CODE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, eq=False)
class CompiledOperation:
    terms: Terms
    request: Complex  # the wrapper: one field a parameter
    response: Complex  # the wrapper: a field "return", or none for a void operation
    fault_codes: frozenset[str]  # every catalogue code it may raise (server/faults.py)


@dataclass(frozen=True, eq=False)
class CompiledFacade:
    name: str
    namespace: str
    service: str  # the implementing class, "module:Class"
    doc: str
    operations: tuple[CompiledOperation, ...]


@dataclass(frozen=True, eq=False)
class Shared:
    """The types every facade's WSDL may carry besides its operations' own."""

    fault: Complex  # BusinessFault, the detail of every SOAP fault
    token: Complex  # AuthToken, the member's SOAP header
    signature: Complex  # PartnerSignature, a partner app's SOAP header


@dataclass(frozen=True, eq=False)
class Contract:
    facades: tuple[CompiledFacade, ...]  # as compile_contract was given them (every one: by name)
    shared: Shared


class ContractError(RuntimeError):
    """The child could not compile the contract; its message is the child's error output."""


class Compiler:
    """A child Python process (``python -m server.declared``) of this code compiling the
    contract, from the moment it is made: -P leaves the working folder off its path, which
    starts with this code's. :meth:`contract` waits for its result."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(CODE_ROOT), env.get("PYTHONPATH"))))
        self._child = subprocess.Popen(  # noqa: S603 - this interpreter, a module of ours
            [sys.executable, "-P", "-m", CHILD_MODULE],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def contract(self, timeout: float = 60.0) -> Contract:
        try:
            out, err = self._child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.communicate()
            raise ContractError(f"compiling the contract took over {timeout:g} s") from None
        if self._child.returncode != 0:
            raise ContractError(err.decode(errors="replace").strip())
        try:
            # The child's output, made by this same code: nothing from outside is unpickled.
            contract = pickle.loads(out)  # noqa: S301
        except Exception as e:
            raise ContractError(f"the child wrote no contract ({e})") from None
        if not isinstance(contract, Contract):
            raise ContractError(f"the child wrote a {type(contract).__name__}, not a Contract")
        return contract


def compile_in_child() -> Contract:
    """The contract compiled by a child (:class:`Compiler`), waited for."""
    return Compiler().contract()
