"""The security the SOAP endpoint enforces, published as WS-Policy 1.5 in each WSDL (WS-Policy
Attachment for WSDL 1.1), so that policy-aware clients (CXF, WCF, Metro) configure themselves.

Who an operation needs (server/dispatcher.py Authenticate and Authorize) decides its policy:

* an operation with roles needs a member: policy ``MemberAuthentication``, whose alternatives
  are the credentials the endpoint accepts (WS-SecurityPolicy 1.2): a UsernameToken with the
  login password as PasswordText, a UsernameToken with a PasswordDigest (``sp:HashPassword``:
  the digest a client computes from the apiSecret as its password, service/wsse.py), or the
  login token in the AuthToken header (an assertion of our own, ``c:AuthTokenHeader``: a client
  that does not know it picks another alternative);
* a public operation whose answer depends on who asks (a listing its borrower may see before
  it is published) accepts the same, optionally: ``OptionalMemberAuthentication``, the same
  alternatives and an empty one;
* any other public operation has no policy, and its binding declares no AuthToken header;
* a partner operation takes no member credentials but a partner app's signed request: policy
  ``PartnerSignature``, one assertion of our own (``c:PartnerSignatureHeader``: the
  PartnerSignature header block, README "Signed partner calls"), and its binding declares
  that header instead of AuthToken.

PasswordText is accepted over HTTPS only, which the platform's load balancer terminates: the
policy does not say it with a TransportBinding assertion, since the workers themselves are
reached over plain HTTP behind it; the WSDL's documentation says so.
"""

from __future__ import annotations

from lxml import etree

from facade.contract import COMMON_NS
from server.registry import BoundOperation

WSP = "http://www.w3.org/ns/ws-policy"
SP = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
ALWAYS_TO_RECIPIENT = SP + "/IncludeToken/AlwaysToRecipient"
REQUIRED, OPTIONAL = "MemberAuthentication", "OptionalMemberAuthentication"
PARTNER = "PartnerSignature"
NAMESPACES = {"wsp": WSP, "sp": SP, "wsu": WSU}


def policy_of(op: BoundOperation) -> str | None:
    """The id of the policy ``op``'s binding refers to, None for none."""
    if op.operation.partner:
        return PARTNER
    if op.roles is not None:
        return REQUIRED
    return OPTIONAL if op.passes_caller else None


def add_policies(root, used: set[str]) -> None:
    """Each policy in ``used``, as a child of ``root`` (wsdl:definitions)."""
    for policy_id in (REQUIRED, OPTIONAL):
        if policy_id not in used:
            continue
        policy = etree.SubElement(root, f"{{{WSP}}}Policy")
        policy.set(f"{{{WSU}}}Id", policy_id)
        one = etree.SubElement(policy, f"{{{WSP}}}ExactlyOne")
        _username_token(etree.SubElement(one, f"{{{WSP}}}All"), digest=False)
        _username_token(etree.SubElement(one, f"{{{WSP}}}All"), digest=True)
        etree.SubElement(etree.SubElement(one, f"{{{WSP}}}All"), f"{{{COMMON_NS}}}AuthTokenHeader")
        if policy_id == OPTIONAL:
            etree.SubElement(one, f"{{{WSP}}}All")  # no credentials at all
    if PARTNER in used:
        policy = etree.SubElement(root, f"{{{WSP}}}Policy")
        policy.set(f"{{{WSU}}}Id", PARTNER)
        one = etree.SubElement(policy, f"{{{WSP}}}ExactlyOne")
        etree.SubElement(
            etree.SubElement(one, f"{{{WSP}}}All"), f"{{{COMMON_NS}}}PartnerSignatureHeader"
        )


def refer(operation_element, policy_id: str) -> None:
    """Attach policy ``policy_id`` to a wsdl:binding/wsdl:operation."""
    etree.SubElement(operation_element, f"{{{WSP}}}PolicyReference", URI=f"#{policy_id}")


def _username_token(alternative, *, digest: bool) -> None:
    tokens = etree.SubElement(alternative, f"{{{SP}}}SupportingTokens")
    inner = etree.SubElement(tokens, f"{{{WSP}}}Policy")
    token = etree.SubElement(
        inner, f"{{{SP}}}UsernameToken", {f"{{{SP}}}IncludeToken": ALWAYS_TO_RECIPIENT}
    )
    options = etree.SubElement(token, f"{{{WSP}}}Policy")
    if digest:
        etree.SubElement(options, f"{{{SP}}}HashPassword")
    etree.SubElement(options, f"{{{SP}}}WssUsernameToken10")
