"""The platform's depository business (存管, "ocp" after the original platform's module name).

``signing`` and ``protocol`` are the wire protocol of docs/depository-protocol.md, shared with
the bank simulator (banksim/); ``client`` speaks it over HTTP.
"""
