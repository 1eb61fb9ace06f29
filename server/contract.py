"""The contract compiled: each facade and operation as the framework serves it, every type a
binding description (server/binding.py), no spyne class among them.

server/declared.py compiles the facades' declarations into a :class:`Contract`. ``p2p serve``
has a child process do it (:func:`compile_in_child`) and reads the result, so the worker never
imports spyne nor holds its classes: what they took (some 8 MiB, bench/README.md) stays in the
child, which exits. Every other command, and the tests, compile in process; both ways give
the same contract, and the same WSDL and OpenAPI documents
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
    facades: tuple[CompiledFacade, ...]  # ordered by name
    shared: Shared


class ContractError(RuntimeError):
    """The child could not compile the contract; its message is the child's error output."""


def compile_in_child(timeout: float = 60.0) -> Contract:
    """The contract compiled by a child Python process (``python -m server.declared``) of
    this code: -P leaves the working folder off its path, which starts with this code's."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(CODE_ROOT), env.get("PYTHONPATH"))))
    done = subprocess.run(  # noqa: S603 - this interpreter, a module of ours
        [sys.executable, "-P", "-m", CHILD_MODULE],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise ContractError(done.stderr.decode(errors="replace").strip())
    # The child's output, made by this same code: nothing from outside is unpickled.
    contract = pickle.loads(done.stdout)  # noqa: S301
    if not isinstance(contract, Contract):
        raise ContractError(f"the child wrote a {type(contract).__name__}, not a Contract")
    return contract
