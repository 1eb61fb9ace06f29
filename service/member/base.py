"""What every part of the member module's service shares: the transaction, settings, clock,
the security components, repositories and the rules for mobile numbers and passwords."""

import re

from dao.bank_card import BankCardRepository
from dao.member import MemberRepository
from dao.ocp import BankOrderRepository
from dao.payment import PaymentOrderRepository
from service import pii
from service.errors import invalid
from service.gateway import DepositoryGateway
from service.ledger import Ledger
from service.lifecycle import Lifecycle
from service.ocp.orders import BankOrders, Effects
from service.pii import PersonalData
from service.security import Lockout, Passwords, Tokens
from service.verification import VerificationCodes
from service.wsse import ApiSecrets

_MOBILE = re.compile(r"1[3-9][0-9]{9}\Z")

#: The password policy: 8 to 64 characters with an ASCII letter and an ASCII digit anywhere.
#: The contract declares the same (facade/member/account.py, NewPassword), with the pattern
#: written as XSD, ECMA-262 and Python all read it; a test keeps the two equal.
PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH = 8, 64
PASSWORD_PATTERN = r"[^\t\n\r]*([A-Za-z][^\t\n\r]*[0-9]|[0-9][^\t\n\r]*[A-Za-z])[^\t\n\r]*"  # noqa: S105


def check_mobile(mobile: str, field: str = "mobile") -> None:
    if not _MOBILE.match(mobile):
        raise invalid(field, "must be an 11-digit mainland mobile number")


def check_password(password: str, field: str = "password") -> None:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise invalid(field, f"must have {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters")
    if not re.fullmatch(PASSWORD_PATTERN, password):
        raise invalid(field, "must contain a letter (A-Z or a-z) and a digit (0-9)")


class MemberBase:
    def __init__(
        self,
        tx,
        settings,
        clock,
        passwords: Passwords,
        tokens: Tokens,
        api_secrets: ApiSecrets,
        lockout: Lockout,
        verification: VerificationCodes,
        pii: PersonalData | None,
        gateway: DepositoryGateway,
        lifecycle: Lifecycle,
        bank: BankOrders | None = None,
    ):
        self.tx = tx
        self._lifecycle = lifecycle  # other modules' listeners (service/lifecycle.py)
        self._settings = settings  # LiveSettings: reloadable keys are read at call time
        self._clock = clock
        self._passwords = passwords
        self._tokens = tokens
        self._lockout = lockout
        self._api_secrets = api_secrets
        self._codes = verification
        self._pii_box = pii
        self._gateway = gateway
        self._bank = bank  # the depository over HTTP (payment.gateway BANK), else None
        self._members = MemberRepository(tx.session)
        self._cards = BankCardRepository(tx.session)
        self._bank_orders = BankOrderRepository(tx.session)
        self._payment_orders = PaymentOrderRepository(tx.session)
        self._ledger = Ledger(tx)
        if bank is not None:
            for order_type, effects in self._bank_effects().items():
                bank.register(order_type, effects)

    def _bank_effects(self) -> dict[str, Effects]:
        """The bank order types this service owns (the fund account's OPEN_ACCOUNT)."""
        return {}

    @property
    def _pii(self) -> PersonalData:
        """The sealer of personal data (SERVICE_UNAVAILABLE without security.secret_key)."""
        return pii.available(self._pii_box)
