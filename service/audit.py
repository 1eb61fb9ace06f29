"""The ledger's invariants, checked over the whole database (``p2p check-ledger``).

1. every posting balances (debits equal credits, at least two entries);
2. every balance equals the sum of its entries;
3. no balance below zero;
4. the books close: debit-normal balances equal credit-normal ones, and the money at the
   depository bank (its two mirrors, CLEARING and PLATFORM_FUNDS) equals what entered minus
   what left through payment orders (SUCCESS ones: a PENDING one moved nothing yet, a
   REVERSED withdrawal's money came back), plus the owners' funding (OWNER_FUNDING's balance),
   minus the fees the bank took (those of its orders that succeeded, REVERSED included);
5. CLEARING equals the members' total (available + frozen over every member's account): the
   platform's own money is in PLATFORM_FUNDS, never in the members' mirror;
6. each listing's raised amount equals its investments that count in it (PENDING ones, whose
   capacity is reserved while the bank freezes, included; RELEASING, RELEASED and FAILED
   ones not);
7. every frozen fen is accounted for: a member's frozen balance equals their FROZEN and
   RELEASING investments plus their pending withdrawals (a PENDING investment is not frozen
   yet) plus, for a borrower, the repayments the bank is paying (REPAY_FREEZE: every REPAY
   item not yet SUCCEEDED and not re-issued); a listing DISBURSING keeps its investments
   FROZEN until their DISBURSE items succeed; PLATFORM_FUNDS' frozen balance equals its
   PENDING transfers to members;
8. each installment's receipts add up to it;
9. every payment order agrees with its order at the depository bank (payment.gateway BANK):
   SUCCESS for SUCCEEDED, FAILED for FAILED, REVERSED for REVERSED, PENDING while it is open;
10. no investment stays frozen because the bank failed its release (UNFREEZE): each such one
    is listed until a person has dealt with it;
11. every receipt paid at the bank agrees with its REPAY items: RECEIVED after exactly one
    SUCCEEDED item, PENDING before, each item's service fee the receipt's interest service
    fee (what the bank paid the platform out of it); every investment lent at the bank with
    its DISBURSE items: ACTIVE (SETTLED) after exactly one SUCCEEDED item, FROZEN before;
12. marketing's (service/marketing/audit.py): campaigns within budget, coupons consumed
    equal to payouts, no coupon or reward paid twice;
13. loyalty's: experience gold, the points ledger and referral rewards
    (service/loyalty/audit.py).
"""

from dataclasses import dataclass
from decimal import Decimal

from dao.audit import AuditQueries
from service.loyalty.audit import loyalty_checks
from service.marketing.audit import marketing_checks
from service.transaction import transactional

CENT = Decimal("0.01")


def _yuan(fen: int) -> str:
    return str((Decimal(fen) * CENT).quantize(CENT))


@dataclass(frozen=True)
class Check:
    name: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class AuditReport:
    checks: tuple[Check, ...]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


class LedgerAudit:
    def __init__(self, tx):
        self.tx = tx
        self._q = AuditQueries(tx.session)

    @transactional(read_only=True)
    def run(self) -> AuditReport:
        q = self._q
        debits, credits = q.side_totals()
        clearing, platform = q.platform_balance("CLEARING"), q.platform_balance("PLATFORM_FUNDS")
        inflow, funding, fees = q.net_inflow(), q.platform_balance("OWNER_FUNDING"), q.bank_fees()
        members = q.members_total()
        checks = (
            Check(
                "every posting balances",
                tuple(
                    f"posting {p}: debits {_yuan(d)} credits {_yuan(c)} in {n} entries"
                    for p, d, c, n in q.unbalanced_postings()
                ),
            ),
            Check(
                "every balance equals its entries",
                tuple(
                    f"account {a}: available {_yuan(av)} (entries {_yuan(eav)}),"
                    f" frozen {_yuan(fr)} (entries {_yuan(efr)})"
                    for a, av, eav, fr, efr in q.balances_off_their_entries()
                ),
            ),
            Check(
                "no balance below zero",
                tuple(
                    f"account {a}: available {_yuan(av)}, frozen {_yuan(fr)}"
                    for a, av, fr in q.negative_balances()
                ),
            ),
            Check(
                "the books close",
                tuple(
                    problem
                    for problem in (
                        debits != credits
                        and f"debit-normal {_yuan(debits)} != credit-normal {_yuan(credits)}",
                        clearing + platform != inflow + funding - fees
                        and f"clearing + platform funds {_yuan(clearing)} + {_yuan(platform)}"
                        " != recharged - withdrawn + owners' funding - bank fees"
                        f" {_yuan(inflow)} + {_yuan(funding)} - {_yuan(fees)}",
                    )
                    if problem
                ),
            ),
            Check(
                "clearing equals the members' money",
                ()
                if clearing == members
                else (
                    f"clearing {_yuan(clearing)} != members' available + frozen {_yuan(members)}",
                ),
            ),
            Check(
                "raised equals investments",
                tuple(
                    f"loan {loan}: raised {_yuan(r)}, investments {_yuan(s)}"
                    for loan, r, s in q.loans_off_their_investments()
                ),
            ),
            Check(
                "every frozen fen is accounted for",
                tuple(
                    f"member {m}: frozen {_yuan(f)}, held for investments, withdrawals and"
                    f" repayments {_yuan(h)}"
                    for m, f, h in q.frozen_not_accounted_for()
                )
                + tuple(
                    f"the platform's own account: frozen {_yuan(f)}, held for transfers {_yuan(h)}"
                    for f, h in q.platform_frozen_not_accounted_for()
                ),
            ),
            Check(
                "receipts add up to installments",
                tuple(
                    f"installment {i}: {_yuan(p)}+{_yuan(n)} vs receipts {_yuan(rp)}+{_yuan(rn)}"
                    for i, p, n, rp, rn in q.receipts_off_their_installments()
                ),
            ),
            Check(
                "payment orders agree with the bank's",
                tuple(
                    f"payment order {no}: {status}, its bank order {bank}"
                    for no, status, bank in q.payment_orders_off_their_bank_orders()
                ),
            ),
            Check(
                "every release reached the bank",
                tuple(
                    f"investment {i} of member {m}: still frozen, {why}"
                    for i, m, why in q.releases_the_bank_failed()
                ),
            ),
            Check(
                "receipts agree with the bank's items",
                tuple(
                    f"receipt {r}: {status}, {paid} SUCCEEDED REPAY item(s)"
                    for r, status, paid in q.receipts_off_their_bank_items()
                ),
            ),
            Check(
                "receipts' fees agree with the bank's items",
                tuple(
                    f"receipt {r}: fee {_yuan(fee)}, item {no} service fee {_yuan(charged)}"
                    for r, fee, no, charged in q.receipt_fees_off_their_bank_items()
                ),
            ),
            Check(
                "investments agree with the bank's items",
                tuple(
                    f"investment {i}: {status}, {lent} SUCCEEDED DISBURSE item(s)"
                    for i, status, lent in q.investments_off_their_bank_items()
                ),
            ),
            *loyalty_checks(self.tx.session, Check),
            *marketing_checks(self.tx, Check),
        )
        return AuditReport(checks, q.counts())
