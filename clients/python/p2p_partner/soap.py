"""Signed SOAP calls with zeep (the ``soap`` extra): the PartnerSignature header over the
exclusive canonical form of the soap:Body, and answers verified as REST ones are.

    transport = SigningTransport(partner_client)
    zeep.Client(wsdl_url, transport=transport).service.listPartnerListings(page=1)
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from lxml import etree
from zeep.transports import Transport

from p2p_partner.client import APP_ID, KEY_ID, NONCE, SIGNATURE, TIMESTAMP, PartnerClient

COMMON_NS = "http://p2p.hry.com/facade/common"
#: The header block's elements, by the REST header that carries the same value.
FIELDS = (
    ("appId", APP_ID),
    ("keyId", KEY_ID),
    ("timestamp", TIMESTAMP),
    ("nonce", NONCE),
    ("signature", SIGNATURE),
)


def body_sha256(body: etree._Element) -> str:
    """SHA-256 (hex) of the exclusive C14N 1.0 form, without comments, of a soap:Body."""
    c14n = etree.tostring(body, method="c14n", exclusive=True, with_comments=False)
    return hashlib.sha256(c14n).hexdigest()


def sign_envelope(client: PartnerClient, envelope: etree._Element, address: str) -> str:
    """Add a signed PartnerSignature header block to ``envelope`` (making its Header when
    missing) for a POST to ``address``; the nonce it used."""
    ns = etree.QName(envelope).namespace
    body = envelope.find(f"{{{ns}}}Body")
    header = envelope.find(f"{{{ns}}}Header")
    if header is None:
        header = etree.Element(f"{{{ns}}}Header")
        body.addprevious(header)
    target = urlsplit(address)
    values = client.sign_digest("POST", target.path, target.query, body_sha256(body))
    block = etree.SubElement(header, f"{{{COMMON_NS}}}PartnerSignature", nsmap={"ps": COMMON_NS})
    for element, name in FIELDS:
        etree.SubElement(block, f"{{{COMMON_NS}}}{element}").text = values[name]
    return values[NONCE]


class SigningTransport(Transport):
    """A zeep transport that signs every call as ``client``'s app and verifies each answer
    (AnswerNotSigned)."""

    def __init__(self, client: PartnerClient, **kwargs):
        super().__init__(**kwargs)
        self.partner = client

    def post_xml(self, address, envelope, headers):
        nonce = sign_envelope(self.partner, envelope, address)
        response = super().post_xml(address, envelope, headers)
        self.partner.verify_answer(response, nonce)
        return response
