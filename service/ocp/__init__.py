"""The platform's depository business (存管, "ocp" after the original platform's module name).

``signing`` and ``protocol`` are the wire protocol of docs/depository-protocol.md, shared with
the bank simulator (banksim/); ``client`` speaks it over HTTP. ``orders`` runs the platform's
orders at the bank on it: the state machine (``machine``), sending (``sending``), the bank's
notifications (``notifications``), the query on doubt (``queries``), the evidence of every
exchange (``evidence``), the alerts for a person (``alerts``) and the batch orders whose
items are orders of their own (``batches``).
"""
