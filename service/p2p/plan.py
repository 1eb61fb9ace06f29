"""Writing a listing's repayment plan: the borrower's installments and each investor's receipts.

This is the contract between disbursement (which calls :func:`write_plan` once, when the listing
starts REPAYING) and repayment (which reads the rows back). Every installment is split among the
investments exactly: principal and interest each by the largest-remainder rule in proportion to
the investments' holdings, ties to the earlier investment, so the receipts of an installment sum
to it to the fen.

The holding an installment is split by is each investment's principal still outstanding before
it (the amount invested, for the first). Splitting every installment by the amounts invested
would let rounding accumulate, so an investor could get back a few fen more or less principal
than they put in; splitting by what is outstanding keeps the shares proportional and makes each
investor's principal receipts sum exactly to their investment.
"""

import datetime
from decimal import Decimal

from dao.p2p import InstallmentEntity, InvestmentEntity, LoanEntity, PlanRepository, ReceiptEntity
from service.schedule import due_dates, schedule, split

PENDING = "PENDING"


def write_plan(
    plans: PlanRepository,
    loan: LoanEntity,
    investments: list[InvestmentEntity],
    start: datetime.date,
) -> None:
    """Store ``loan``'s installments, due monthly from ``start`` (a BULLET listing's single
    installment is numbered ``term_months`` and due at maturity), and one receipt per
    installment and investment (zero once an investment's principal is repaid).
    ``investments`` must be the listing's funded investments; they are taken in id order
    whatever order they are given in."""
    if not investments:
        raise ValueError(f"listing {loan.id} has no investments to split its plan among")
    if sum(inv.amount for inv in investments) != loan.amount:
        raise ValueError(f"listing {loan.id}'s investments do not add up to its amount")
    holders = sorted(investments, key=lambda inv: inv.id)
    outstanding = {inv.id: inv.amount for inv in holders}
    rows = schedule(loan.amount, loan.annual_rate, loan.term_months, loan.repayment_method)
    dates = due_dates(start, loan.term_months)
    installments = [
        InstallmentEntity(
            loan_id=loan.id,
            period=row.period,
            due_date=dates[row.period - 1],
            principal=row.principal,
            interest=row.interest,
            penalty=0,
            remaining=row.remaining,
            status=PENDING,
        )
        for row in rows
    ]
    plans.add_all(installments)
    receipts = []
    for installment in installments:
        shares = _shares(installment, outstanding)
        for inv in holders:
            principal, interest = shares.get(inv.id, (Decimal(0), Decimal(0)))
            outstanding[inv.id] -= principal
            receipts.append(
                ReceiptEntity(
                    installment_id=installment.id,
                    investment_id=inv.id,
                    loan_id=loan.id,
                    investor_id=inv.investor_id,
                    period=installment.period,
                    principal=principal,
                    interest=interest,
                    penalty=0,
                    status=PENDING,
                )
            )
    plans.add_all(receipts)


def _shares(
    installment: InstallmentEntity, outstanding: dict[int, Decimal]
) -> dict[int, tuple[Decimal, Decimal]]:
    """Investment id -> (principal, interest) of ``installment`` for every investment with
    principal still outstanding, in proportion to it; none when nothing is outstanding (a plan
    of a few fen can end with empty periods)."""
    owed = [inv_id for inv_id, amount in outstanding.items() if amount > 0]
    if not owed:
        return {}
    weights = [outstanding[inv_id] for inv_id in owed]
    principals = split(installment.principal, weights)
    interests = split(installment.interest, weights)
    return {i: (p, r) for i, p, r in zip(owed, principals, interests, strict=True)}
