"""The depository bank simulator (`p2p bank-sim`): a bank of its own, in its own process.

It speaks docs/depository-protocol.md exactly (service.ocp.signing and service.ocp.protocol are
the only code it shares with the platform), keeps its own books in its own SQLite file (a
sub-account per member, balances, every order, every notification to deliver), answers
synchronously, finishes orders and notifies asynchronously, and injects faults on demand.
"""
