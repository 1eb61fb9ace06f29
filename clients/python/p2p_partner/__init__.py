"""Client of the P2P platform's partner open API: signed requests, verified answers."""

from p2p_partner.client import AnswerNotSigned, PartnerClient
from p2p_partner.keys import HmacKey, RsaKey

__all__ = ["AnswerNotSigned", "HmacKey", "PartnerClient", "RsaKey"]
