"""Bank cards on SQLite and MariaDB: binding (stored hashed and sealed, checked with plain SQL),
the masked list, unbinding, ownership, every refusal, and bindings racing on MariaDB."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from service import pii
from service.member import BindCardRequest, IdentityRequest, MemberService
from tests.integration.service.support import START, caller, error_of, race, sealer
from tests.support import card_number_for

BANK = "中国工商银行"
CARD_MOBILE = "13987654321"
#: A valid number with its check digit changed.
LUHN_BROKEN = card_number_for(1)[:-1] + str((int(card_number_for(1)[-1]) + 1) % 10)


@pytest.fixture
def verified(members, make_member, identities):
    """Factory: a member whose real name is verified, without cards or fund account."""

    def factory(role: str = "INVESTOR"):
        vo = make_member(role, onboarded=False)
        who = identities()
        members.verify_identity(IdentityRequest(who.real_name, who.id_number), caller(vo))
        return vo

    return factory


@pytest.fixture
def card_numbers(identities):
    """Fresh valid card numbers."""
    return lambda: identities().card_number


def bind(members: MemberService, vo, number: str, bank: str = BANK, mobile: str = CARD_MOBILE):
    return members.bind_card(BindCardRequest(number, bank, mobile), caller(vo))


def card_rows(sql, member_id: int):
    with sql.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, card_hash, card_sealed, last4, bank_name, mobile_sealed, status,"
                " created_at, unbound_at FROM bank_card WHERE member_id = :m ORDER BY id"
            ),
            {"m": member_id},
        ).all()


# -- binding ---------------------------------------------------------------------------------


def test_a_bound_card_is_stored_hashed_and_sealed_and_shown_masked(
    members, verified, card_numbers, sql
) -> None:
    vo = verified()
    number = card_numbers()
    card = bind(members, vo, number, bank="  招商银行 ")
    assert card.card_number == "**** **** **** " + number[-4:]
    assert (card.bank_name, card.mobile, card.bound_at) == ("招商银行", "139****4321", START)

    [row] = card_rows(sql, vo.member_id)
    box = sealer()
    assert row.id == card.card_id
    assert row.card_hash == box.lookup_hash(pii.CARD_NUMBER, number)
    assert box.open(pii.CARD_NUMBER, row.card_sealed, vo.member_id) == number
    assert box.open(pii.CARD_MOBILE, row.mobile_sealed, vo.member_id) == CARD_MOBILE
    assert number not in row.card_sealed and CARD_MOBILE not in row.mobile_sealed
    assert (row.last4, row.bank_name, row.status, row.unbound_at) == (
        number[-4:],
        "招商银行",
        "BOUND",
        None,
    )


def test_spaces_in_the_number_do_not_make_another_card(
    members, verified, card_numbers, sql
) -> None:
    vo, other = verified(), verified("BORROWER")
    number = card_numbers()
    bind(members, vo, " ".join(number[i : i + 4] for i in range(0, 16, 4)))
    assert (
        sealer().open(pii.CARD_NUMBER, card_rows(sql, vo.member_id)[0].card_sealed, vo.member_id)
        == number
    )
    assert error_of(bind, members, other, number).code == "CARD_TAKEN"


def test_an_unverified_member_cannot_bind(members, make_member, card_numbers, sql) -> None:
    vo = make_member("INVESTOR", onboarded=False)
    e = error_of(bind, members, vo, card_numbers())
    assert e.code == "IDENTITY_NOT_VERIFIED"
    assert card_rows(sql, vo.member_id) == []


@pytest.mark.parametrize(
    ("number", "bank", "mobile", "field"),
    [
        (LUHN_BROKEN, BANK, CARD_MOBILE, "cardNumber"),
        (card_number_for(2)[:15], BANK, CARD_MOBILE, "cardNumber"),
        (card_number_for(3) + "0000", BANK, CARD_MOBILE, "cardNumber"),
        (card_number_for(4), "银", CARD_MOBILE, "bankName"),
        (card_number_for(5), "   ", CARD_MOBILE, "bankName"),
        (card_number_for(6), "银" * 51, CARD_MOBILE, "bankName"),
        (card_number_for(7), BANK, "12987654321", "mobile"),
        (card_number_for(8), BANK, "1398765432", "mobile"),
    ],
)
def test_invalid_cards_are_refused_naming_the_field(
    members, verified, sql, number, bank, mobile, field
) -> None:
    vo = verified()
    e = error_of(bind, members, vo, number, bank, mobile)
    assert e.code == "VALIDATION_FAILED"
    assert e.message.startswith(field + ":")
    assert card_rows(sql, vo.member_id) == []


def test_a_card_bound_already_is_card_taken_for_its_owner_and_for_others(
    members, verified, card_numbers, sql
) -> None:
    owner, other = verified(), verified("BORROWER")
    number = card_numbers()
    bind(members, owner, number)
    for who in (owner, other):
        e = error_of(bind, members, who, number)
        assert e.code == "CARD_TAKEN"
        assert number not in e.message
    assert len(card_rows(sql, owner.member_id)) == 1
    assert card_rows(sql, other.member_id) == []


def test_binding_past_the_limit_is_card_limit_reached(
    make_platform, verified, card_numbers, sql
) -> None:
    members = make_platform(**{"member.max_bound_cards": 2}).service(MemberService)
    vo = verified()
    first = bind(members, vo, card_numbers())
    bind(members, vo, card_numbers())
    e = error_of(bind, members, vo, card_numbers())
    assert e.code == "CARD_LIMIT_REACHED"
    assert len(card_rows(sql, vo.member_id)) == 2
    members.unbind_card(first.card_id, caller(vo))  # an unbound card no longer counts
    bind(members, vo, card_numbers())
    assert [r.status for r in card_rows(sql, vo.member_id)] == ["UNBOUND", "BOUND", "BOUND"]


# -- listing ---------------------------------------------------------------------------------


def test_the_list_holds_the_callers_bound_cards_oldest_first_masked(
    members, verified, card_numbers, clock
) -> None:
    vo, other = verified(), verified("BORROWER")
    numbers = [card_numbers() for _ in range(3)]
    cards = []
    for number in numbers:
        cards.append(bind(members, vo, number))
        clock.advance(minutes=1)
    bind(members, other, card_numbers())
    members.unbind_card(cards[1].card_id, caller(vo))

    page = members.list_cards(caller(vo))
    listed = page.items
    # Every card on one page, sized by the limit (member.max_bound_cards, 5 by default).
    assert (page.total, page.page, page.page_size) == (2, 1, 5)
    assert [c.card_id for c in listed] == [cards[0].card_id, cards[2].card_id]
    assert [c.card_number for c in listed] == ["**** **** **** " + numbers[i][-4:] for i in (0, 2)]
    assert {c.mobile for c in listed} == {"139****4321"}
    assert [c.bound_at for c in listed] == [START, START + dt.timedelta(minutes=2)]
    none = members.list_cards(caller(verified()))
    assert (none.items, none.total, none.page, none.page_size) == ((), 0, 1, 5)


def test_cards_bound_before_the_limit_was_lowered_are_all_on_the_one_page(
    make_platform, verified, card_numbers
) -> None:
    vo = verified()
    before = make_platform(**{"member.max_bound_cards": 3}).service(MemberService)
    for _ in range(3):
        bind(before, vo, card_numbers())
    after = make_platform(**{"member.max_bound_cards": 2}).service(MemberService)
    page = after.list_cards(caller(vo))
    assert (len(page.items), page.total, page.page, page.page_size) == (3, 3, 1, 3)


# -- unbinding -------------------------------------------------------------------------------


def test_unbinding_frees_the_number_and_keeps_the_row(
    members, verified, card_numbers, sql, clock
) -> None:
    vo, other = verified(), verified("BORROWER")
    number = card_numbers()
    card = bind(members, vo, number)
    clock.advance(hours=1)
    members.unbind_card(card.card_id, caller(vo))
    [row] = card_rows(sql, vo.member_id)
    assert (row.status, row.card_hash) == ("UNBOUND", None)
    assert row.unbound_at is not None
    assert members.list_cards(caller(vo)).items == ()
    # Unbound, the number may be bound again: by another member, or later by its owner.
    again = bind(members, other, number)
    assert again.card_id != card.card_id
    assert error_of(members.unbind_card, card.card_id, caller(vo)).code == "CARD_NOT_FOUND"


def test_nobody_unbinds_another_members_card(members, verified, card_numbers, sql) -> None:
    owner, other = verified(), verified("BORROWER")
    card = bind(members, owner, card_numbers())
    e = error_of(members.unbind_card, card.card_id, caller(other))
    assert e.code == "CARD_NOT_FOUND"
    assert [r.status for r in card_rows(sql, owner.member_id)] == ["BOUND"]
    assert error_of(members.unbind_card, card.card_id + 1000, caller(owner)).code == (
        "CARD_NOT_FOUND"
    )


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_one_card_bound_by_two_members_at_once_is_bound_once(
    members, verified, card_numbers, sql
) -> None:
    for _ in range(5):
        one, two = verified(), verified("BORROWER")
        number = card_numbers()
        outcomes = race([(bind, members, one, number), (bind, members, two, number)])
        codes = sorted(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
        assert codes == ["BankCardVo", "CARD_TAKEN"], outcomes
        with sql.connect() as conn:
            bound = conn.execute(
                text("SELECT COUNT(*) FROM bank_card WHERE card_hash = :h"),
                {"h": sealer().lookup_hash(pii.CARD_NUMBER, number)},
            ).scalar_one()
        assert bound == 1


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_binding_many_cards_at_once_never_passes_the_limit(
    make_platform, verified, card_numbers, sql
) -> None:
    members = make_platform(**{"member.max_bound_cards": 3}).service(MemberService)
    vo = verified()
    outcomes = race([(bind, members, vo, card_numbers()) for _ in range(8)])
    codes = sorted(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
    assert codes == ["BankCardVo"] * 3 + ["CARD_LIMIT_REACHED"] * 5, outcomes
    assert [r.status for r in card_rows(sql, vo.member_id)] == ["BOUND"] * 3


@pytest.mark.mysql
@pytest.mark.parametrize("database", ["mysql"], indirect=True)
def test_one_card_unbound_twice_at_once_is_unbound_once(
    members, verified, card_numbers, sql
) -> None:
    for _ in range(5):
        vo = verified()
        card = bind(members, vo, card_numbers())
        outcomes = race([(members.unbind_card, card.card_id, caller(vo))] * 2)
        assert sorted(map(str, outcomes)) == ["CARD_NOT_FOUND", "None"], outcomes
        assert [r.status for r in card_rows(sql, vo.member_id)] == ["UNBOUND"]
