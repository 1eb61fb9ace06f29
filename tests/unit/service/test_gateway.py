"""The depository gateway: every implementation keeps the interface, the setting chooses
one, the sandbox confirms at once, and an account holder's personal data stays out of reprs."""

from __future__ import annotations

import inspect
from decimal import Decimal

import pytest

from conf import load_settings
from conf.settings import ConfigError
from service.gateway import (
    GATEWAYS,
    AccountHolder,
    DepositoryGateway,
    GatewayResult,
    SandboxGateway,
    create_gateway,
)

INTERFACE = {
    name: inspect.signature(member)
    for name, member in vars(DepositoryGateway).items()
    if getattr(member, "__isabstractmethod__", False)
}


HOLDER = AccountHolder(
    member_id=7,
    real_name="张测试",
    id_number="11010519491231002X",
    card_number="6222020200112233445",
    mobile="13812345678",
)
#: Valid arguments for each operation of the interface, the serial number ``i`` in them.
CALLS = {
    "open_account": lambda i: (HOLDER,),
    "recharge": lambda i: (f"R2026030100{i}", 7, Decimal("12.34")),
    "withdraw": lambda i: (f"W2026030100{i}", 7, Decimal("12.34"), "6222020200112233445"),
    "fund": lambda i: (f"F2026030100{i}", Decimal("500.00")),
    "transfer": lambda i: (f"T2026030100{i}", 7, Decimal("8.88")),
}


def test_the_interface_is_accounts_recharge_withdraw_and_the_platforms_own_account() -> None:
    interface = {"open_account", "recharge", "withdraw", "fund", "transfer"}
    assert set(INTERFACE) == interface == set(CALLS)


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_every_implementation_keeps_the_interface(name: str) -> None:
    cls = GATEWAYS[name]
    assert issubclass(cls, DepositoryGateway)
    assert not inspect.isabstract(cls)
    for method, signature in INTERFACE.items():
        assert inspect.signature(getattr(cls, method)) == signature, (name, method)


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_the_setting_chooses_the_implementation(name: str) -> None:
    settings = load_settings({"P2P_ENV": "test"}, {"payment.gateway": name})
    assert type(create_gateway(settings.payment.gateway)) is GATEWAYS[name]


def test_an_unknown_gateway_is_refused_by_the_settings() -> None:
    with pytest.raises(ConfigError, match=r"payment\.gateway"):
        load_settings({"P2P_ENV": "test"}, {"payment.gateway": "NOSUCHBANK"})


@pytest.mark.parametrize("method", sorted(INTERFACE))
def test_the_sandbox_confirms_at_once_with_a_fresh_reference(method: str) -> None:
    call = getattr(SandboxGateway(), method)
    answers = [call(*CALLS[method](i)) for i in range(3)]
    for answer in answers:
        assert isinstance(answer, GatewayResult)
        assert answer.success is True
        assert answer.reason is None
        # payment_order.gateway_ref and member.fund_account_no hold 64 characters.
        assert answer.reference and len(answer.reference) <= 64
    assert len({a.reference for a in answers}) == 3


def test_an_account_holder_shows_no_personal_data_in_its_repr() -> None:
    shown = repr(HOLDER) + str(HOLDER)
    assert "member_id=7" in shown
    for secret in ("张测试", "11010519491231002X", "6222020200112233445", "13812345678"):
        assert secret not in shown
