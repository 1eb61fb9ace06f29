"""The interest service fee's arithmetic (service/p2p/fees.py): interest x rate x (1 -
discount), rounded down to the fen, in the investor's favour."""

from decimal import Decimal

import pytest

from service.p2p.fees import interest_fee

D = Decimal


@pytest.mark.parametrize(
    ("interest", "rate", "discount", "fee"),
    [
        (D("104.17"), D("0.1000"), D("0"), D("10.41")),  # 10.417: the 0.007 is the investor's
        (D("104.17"), D("0.1000"), D("0.05"), D("9.89")),  # 9.89615
        (D("104.17"), D("0.1000"), D("0.10"), D("9.37")),  # 9.3753
        (D("0.09"), D("0.1000"), D("0"), D("0.00")),  # under a fen: nothing
        (D("0.10"), D("0.1000"), D("0"), D("0.01")),  # exactly a fen
        (D("0.20"), D("0.1000"), D("0.05"), D("0.01")),  # 0.019
        (D("0.00"), D("0.1000"), D("0"), D("0.00")),  # no interest, no fee
        (D("104.17"), D("0.0000"), D("0"), D("0.00")),  # rate 0: nothing, discount or not
        (D("104.17"), D("0.0000"), D("0.20"), D("0.00")),
        (D("104.17"), D("0.1000"), D("1"), D("0.00")),  # all of it waived
        (D("999999.99"), D("0.9999"), D("0.0001"), D("999800.00")),  # 999800.0000019999
    ],
)
def test_the_fee_is_the_discounted_share_of_the_interest_rounded_down(
    interest, rate, discount, fee
) -> None:
    got = interest_fee(interest, rate, discount)
    assert got == fee
    assert got.as_tuple().exponent == -2  # always to the fen


def test_the_fee_never_exceeds_the_interest_nor_goes_below_zero() -> None:
    for fen in range(0, 2000, 7):
        interest = D(fen) / 100
        for rate in (D("0.0001"), D("0.1000"), D("0.9999")):
            fee = interest_fee(interest, rate, D("0.05"))
            assert D("0.00") <= fee <= interest
            # Rounded down: less than a fen below the exact product, never above it.
            exact = interest * rate * (1 - D("0.05"))
            assert fee <= exact < fee + D("0.01")
