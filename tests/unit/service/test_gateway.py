"""The depository gateway: every implementation keeps the interface, the setting chooses
one, and the sandbox confirms at once."""

from __future__ import annotations

import inspect
from decimal import Decimal

import pytest

from conf import load_settings
from conf.settings import ConfigError
from service.gateway import (
    GATEWAYS,
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


def test_the_interface_is_recharge_and_withdraw() -> None:
    assert set(INTERFACE) == {"recharge", "withdraw"}


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
    answers = [call(f"R2026030100{i}", 7, Decimal("12.34")) for i in range(3)]
    for answer in answers:
        assert isinstance(answer, GatewayResult)
        assert answer.success is True
        assert answer.reason is None
        assert answer.reference and len(answer.reference) <= 64  # payment_order.gateway_ref
    assert len({a.reference for a in answers}) == 3
