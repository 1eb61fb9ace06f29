"""The depository gateway: the bank that holds members' money and moves it in and out.

The platform never touches money itself; a recharge or a withdrawal is an instruction to the
depository (存管银行), which answers with success and its reference, or a refusal and why; so
are the owners' funding of the platform's own account there and the platform's payments from
it to a member.
``DepositoryGateway`` is the interface of a depository that answers at once;
``payment.gateway`` in the settings chooses the implementation: ``SandboxGateway``, in-process,
which confirms at once. ``payment.gateway = "BANK"``, the depository bank over HTTP, answers
later: it is no DepositoryGateway but orders (service/ocp/), which the services use instead.
"""

import abc
import uuid
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class GatewayResult:
    """The depository's answer: ``reference`` is its id of the transfer when it succeeded,
    ``reason`` says why it refused when it did not."""

    success: bool
    reference: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class AccountHolder:
    """Who a fund account is opened for, as the depository must know them (real name, ID
    number, the bank card it pays out to and that card's mobile number)."""

    member_id: int
    real_name: str
    id_number: str
    card_number: str
    mobile: str

    def __repr__(self) -> str:  # personal data never reaches a log through a repr
        return f"AccountHolder(member_id={self.member_id!r})"


class DepositoryGateway(abc.ABC):
    """Opens members' accounts at the depository and moves money between a member's bank card
    and that account, into the platform's own account and from it to a member's."""

    @abc.abstractmethod
    def open_account(self, holder: AccountHolder) -> GatewayResult:
        """Open the member's fund account; ``reference`` is the depository's account number."""

    @abc.abstractmethod
    def recharge(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        """Collect ``amount`` from the member into the depository for order ``order_no``."""

    @abc.abstractmethod
    def withdraw(
        self, order_no: str, member_id: int, amount: Decimal, card_number: str
    ) -> GatewayResult:
        """Pay ``amount`` out of the depository to the member's bank card ``card_number``
        for order ``order_no``."""

    @abc.abstractmethod
    def fund(self, order_no: str, amount: Decimal) -> GatewayResult:
        """Bring ``amount`` from the platform's owners into its own account at the depository
        for order ``order_no``."""

    @abc.abstractmethod
    def transfer(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        """Pay ``amount`` from the platform's own account into the member's account for order
        ``order_no``."""


class SandboxGateway(DepositoryGateway):
    """An in-process depository for development and tests: every instruction succeeds at
    once, with a fresh reference."""

    def open_account(self, holder: AccountHolder) -> GatewayResult:
        return GatewayResult(success=True, reference="SANDBOX-ACCT-" + uuid.uuid4().hex)

    def recharge(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=True, reference=_reference())

    def withdraw(
        self, order_no: str, member_id: int, amount: Decimal, card_number: str
    ) -> GatewayResult:
        return GatewayResult(success=True, reference=_reference())

    def fund(self, order_no: str, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=True, reference=_reference())

    def transfer(self, order_no: str, member_id: int, amount: Decimal) -> GatewayResult:
        return GatewayResult(success=True, reference=_reference())


def _reference() -> str:
    return "SANDBOX-" + uuid.uuid4().hex


#: The implementations ``payment.gateway`` may name.
GATEWAYS: dict[str, type[DepositoryGateway]] = {"SANDBOX": SandboxGateway}


def create_gateway(name: str) -> DepositoryGateway | None:
    """The gateway the setting ``payment.gateway`` names (the settings validate the name);
    None for BANK, whose orders the services use (the composition root's "bank")."""
    return None if name == "BANK" else GATEWAYS[name]()
