"""``p2p demo``: a guided walk through the platform against a running server (``make run``),
printing every request and answer (``make demo``; README "A guided walk").

* ``wire``: the REST client that prints each exchange.
* ``people``: made-up members (mobile, name, ID and card numbers that pass the platform's
  checks, new on every run) and the SMS codes the development server writes to its outbox.
* ``bank``: a member's confirmation on the depository bank's page, and waiting for the bank.
* ``journey``: a listing's whole life over REST.
* ``soap``: a short walk over SOAP with zeep.
"""
