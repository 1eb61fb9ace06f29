"""Request fingerprints: the same request in other spellings is the same request."""

from decimal import Decimal

from service.idempotency import fingerprint


def test_equal_amounts_in_other_spellings_fingerprint_alike() -> None:
    base = fingerprint(loan_id=7, amount=Decimal("100.00"))
    assert fingerprint(loan_id=7, amount=Decimal("100")) == base
    assert fingerprint(amount=Decimal("1E+2"), loan_id=7) == base


def test_different_content_fingerprints_differently() -> None:
    base = fingerprint(loan_id=7, amount=Decimal("100.00"))
    assert fingerprint(loan_id=7, amount=Decimal("100.01")) != base
    assert fingerprint(loan_id=8, amount=Decimal("100.00")) != base
    assert fingerprint(loan_id=7, amount=Decimal("100.00"), extra=None) != base
