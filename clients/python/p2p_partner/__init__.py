"""Client of the P2P platform's partner open API: signed requests, verified answers and
callbacks."""

from p2p_partner.callbacks import Callback, CallbackNotVerified, verify_callback
from p2p_partner.client import AnswerNotSigned, PartnerClient
from p2p_partner.keys import HmacKey, RsaKey

__all__ = [
    "AnswerNotSigned",
    "Callback",
    "CallbackNotVerified",
    "HmacKey",
    "PartnerClient",
    "RsaKey",
    "verify_callback",
]
