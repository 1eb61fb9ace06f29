"""Business events for operations dashboards: listings published, money invested and repaid,
how many investments a popular listing's groups made together.

Counted only once the transaction that caused them commits (``tx.after_commit``), so a
rolled-back investment, or a retried one, is counted never or once. Services call
:class:`BusinessEvents`; where the counts go is the recorder the composition root gives it
(Prometheus counters, server/metrics.py), so service/ knows nothing of the metrics library.
"""

from decimal import Decimal
from functools import partial
from typing import Protocol

from dao.types import to_scaled_int


class EventRecorder(Protocol):
    """Receives committed events; amounts in integer fen, exact."""

    def loan_published(self) -> None: ...
    def invested(self, fen: int) -> None: ...
    def repaid(self, fen: int) -> None: ...
    def invested_together(self, count: int) -> None: ...


class BusinessEvents:
    """What services report; each event reaches the recorder after its commit only."""

    def __init__(self, tx, recorder: EventRecorder):
        self._tx = tx
        self._recorder = recorder

    def loan_published(self) -> None:
        self._tx.after_commit(self._recorder.loan_published)

    def invested(self, amount: Decimal) -> None:
        self._tx.after_commit(partial(self._recorder.invested, to_scaled_int(amount, 2)))

    def repaid(self, amount: Decimal) -> None:
        self._tx.after_commit(partial(self._recorder.repaid, to_scaled_int(amount, 2)))

    def invested_together(self, count: int) -> None:
        """``count`` investments in one listing made in one transaction (a group of 2 or
        more: service/p2p/hotlisting.py)."""
        self._tx.after_commit(partial(self._recorder.invested_together, count))
