"""Binding facades to services: mismatches fail at start-up, naming facade and service."""

# No "from __future__ import annotations": facade parameters are annotated with spyne types.

from dataclasses import dataclass

import pytest
from spyne import ComplexModel, Long, Unicode

from facade.contract import GET, OPERATOR, POST, Facade, operation
from facade.types import required
from server.declared import compile_contract, discover_facades
from server.registry import bind

NS = "urn:test:registry"


class ThingRequest(ComplexModel):
    __namespace__ = NS
    _type_info = [("thingName", required(Unicode, "Name."))]  # noqa: RUF012 - spyne style


class ThingFacade(Facade):
    """A facade declared only for these tests."""

    namespace = NS
    service = "tests:ThingService"

    @operation(rest=GET("/things/{thingId}"), returns=Unicode)
    def getThing(thingId: required(Long, "Id.")):
        """One thing."""

    @operation(rest=POST("/things", body="request"), returns=Unicode, roles=[OPERATOR])
    def addThing(request: required(ThingRequest, "The thing.")):
        """Add a thing."""


@dataclass(frozen=True)
class ThingCommand:
    thing_name: str


class ThingService:
    def get_thing(self, thing_id: int) -> str:
        return f"thing {thing_id}"

    def add_thing(self, request: ThingCommand, caller) -> str:
        return f"{request.thing_name} by {caller}"


class MissingMethod:
    def get_thing(self, thing_id: int) -> str:
        return ""


class WrongParameters(ThingService):
    def get_thing(self, id: int) -> str:
        return ""


class UntypedCommand(ThingService):
    def add_thing(self, request, caller) -> str:
        return ""


def bind_with(service: object):
    return bind(compile_contract([ThingFacade]), {ThingFacade.service: service})


def test_a_matching_service_binds_and_is_called_by_name() -> None:
    [bound] = bind_with(ThingService())
    get, add = bound.operation("getThing"), bound.operation("addThing")
    assert get.invoke({"thing_id": 3}, None) == "thing 3"
    assert not get.passes_caller
    assert add.passes_caller
    assert add.invoke({"request": {"thing_name": "box"}}, "op-1") == "box by op-1"
    assert bound.operation("nothing") is None


class SpokenService(ThingService):
    def get_thing(self, thing_id: int, language: str) -> str:
        return {"en": f"thing {thing_id}", "zh": f"物品 {thing_id}"}[language]


def test_a_language_parameter_receives_the_caller_s_language() -> None:
    """``language`` is not a contract parameter: the call's language is passed, as the
    caller is, and the default when none is given."""
    [bound] = bind_with(SpokenService())
    get, add = bound.operation("getThing"), bound.operation("addThing")
    assert get.passes_language and not add.passes_language
    assert [f.name for f in get.request.fields] == ["thingId"]
    assert get.invoke({"thing_id": 3}, None, "zh") == "物品 3"
    assert get.invoke({"thing_id": 3}, None) == "thing 3"


def test_a_missing_method_fails_at_bind_time_naming_both() -> None:
    with pytest.raises(TypeError) as e:
        bind_with(MissingMethod())
    message = str(e.value)
    assert "ThingFacade.addThing" in message
    assert "MissingMethod" in message
    assert "add_thing" in message


def test_different_parameters_fail_at_bind_time_naming_both() -> None:
    with pytest.raises(TypeError) as e:
        bind_with(WrongParameters())
    message = str(e.value)
    assert "ThingFacade.getThing" in message
    assert "WrongParameters.get_thing" in message
    assert "thing_id" in message and "'id'" in message


def test_a_complex_parameter_needs_a_dataclass() -> None:
    with pytest.raises(TypeError, match=r"ThingFacade\.addThing: add_thing\(request\)"):
        bind_with(UntypedCommand())


def test_the_real_facades_are_discovered_and_bind(platform) -> None:
    assert [f.__name__ for f in discover_facades()] == [
        "AccountFacade",
        "CampaignFacade",
        "FundFacade",
        "LoanFacade",
        "LoyaltyFacade",
        "MarketingFacade",
        "MemberFacade",
        "MessageFacade",
        "PartnerAdminFacade",
        "PartnerFacade",
        "PaymentFacade",
        "ReconciliationFacade",
        "TreasuryFacade",
    ]
    names = {b.name: {o.name for o in b.operations} for b in platform.facades}
    assert names["MemberFacade"] == {
        "sendVerificationCode",
        "register",
        "resetPassword",
        "login",
        "logout",
        "refreshToken",
        "changePassword",
        "rotateApiSecret",
        "revokeApiSecret",
        "getProfile",
        "verifyIdentity",
        "getMember",
        "findMemberByMobile",
        "bindCard",
        "listCards",
        "unbindCard",
        "openFundAccount",
        "getFundAccount",
        "getPromotion",
        "listInvitees",
        "listPartnerAuthorisations",
        "revokePartnerAuthorisation",
    }
    # The deprecated facade is served by the member module's service, as MemberFacade is.
    assert names["FundFacade"] == {"hasFundAccount"}
    fund = next(b for b in platform.facades if b.name == "FundFacade")
    member = next(b for b in platform.facades if b.name == "MemberFacade")
    assert (
        fund.operation("hasFundAccount").method.__self__
        is member.operation("getProfile").method.__self__
    )
    assert "publishLoan" in names["LoanFacade"]
