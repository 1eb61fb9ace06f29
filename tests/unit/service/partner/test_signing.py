"""The partner signing primitives: canonical strings, HMAC and RSA signatures."""

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from p2p_partner import canonical

from service.ocp.signing import generate_keypair
from service.partner import signing


def test_the_query_is_decoded_re_encoded_and_sorted():
    assert signing.canonical_query(b"b=2&a=%7e+x&a=1&&c") == "a=1&a=~%20x&b=2&c="
    assert signing.canonical_query(b"") == ""
    assert signing.canonical_query(b"q=%e4%b8%ad") == "q=%E4%B8%AD"


def test_the_path_is_the_same_sent_encoded_or_decoded():
    assert signing.canonical_path(b"/partner/listings/a b") == "/partner/listings/a%20b"
    assert signing.canonical_path(b"/partner/listings/a%20b") == "/partner/listings/a%20b"


def test_the_canonical_request_has_nine_lines_in_order():
    text = signing.canonical_request(
        "get", b"/p", b"y=2&x=1", "app", "k1", "1700000000", "n0nce", "d" * 64
    )
    assert text == "P2P-PARTNER-V1\nGET\n/p\nx=1&y=2\napp\nk1\n1700000000\nn0nce\n" + "d" * 64


def test_the_canonical_response_binds_the_request_nonce():
    text = signing.canonical_response(200, "app", "n0nce", "platform-1", "17", "e" * 64)
    assert text.split("\n") == [
        "P2P-PARTNER-RESPONSE-V1",
        "200",
        "app",
        "n0nce",
        "platform-1",
        "17",
        "e" * 64,
    ]


def test_hmac_is_base64_of_hmac_sha256_and_a_changed_message_is_refused():
    expected = hmac.new(b"s3cret", b"msg", hashlib.sha256).digest()
    assert signing.sign_hmac("s3cret", "msg") == base64.b64encode(expected).decode()
    assert signing.verify_hmac("s3cret", "msg", signing.sign_hmac("s3cret", "msg"))
    assert not signing.verify_hmac("s3cret", "msg2", signing.sign_hmac("s3cret", "msg"))
    assert not signing.verify_hmac("other", "msg", signing.sign_hmac("s3cret", "msg"))
    assert not signing.verify_hmac("s3cret", "msg", "not base64 at all")


def test_rsa_signatures_verify_with_the_public_key_only():
    private, public = generate_keypair()
    key = signing.load_platform_key("platform-1", private)
    signature = key.sign("msg")
    assert signing.verify_rsa(public, "msg", signature)
    assert signing.verify_rsa(key.public_pem(), "msg", signature)
    assert not signing.verify_rsa(public, "msg!", signature)
    assert not signing.verify_rsa(public, "msg", "!!")
    assert not signing.verify_rsa(b"not a key", "msg", signature)
    assert "PRIVATE" not in repr(key) and isinstance(key.private_key, rsa.RSAPrivateKey)


def test_no_platform_key_without_configuration():
    assert signing.load_platform_key("platform-1", None) is None


def test_the_soap_body_digest_keeps_prefixes_and_drops_comments_and_unused_namespaces():
    one = etree.fromstring(
        b'<e:Envelope xmlns:e="urn:env" xmlns:u="urn:unused"><e:Body>'
        b'<m:x xmlns:m="urn:m">1</m:x></e:Body></e:Envelope>'
    )
    two = etree.fromstring(
        b'<s:Envelope xmlns:s="urn:env"><s:Body xmlns:m="urn:m"><m:x>1</m:x></s:Body></s:Envelope>'
    )
    assert signing.soap_body_sha256(one[0]) != signing.soap_body_sha256(two[0])  # prefix
    three = etree.fromstring(
        b'<e:Envelope xmlns:e="urn:env"><e:Body><!-- c --><m:x xmlns:m="urn:m">1</m:x>'
        b"</e:Body></e:Envelope>"
    )
    assert signing.soap_body_sha256(one[0]) == signing.soap_body_sha256(three[0])


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/partner/listings", ""),
        ("/api/v1/partner/listings/42", "page=2&pageSize=10"),
        ("/a b/c%2Fd/中文", "q=a+b&q=a%20b&z=&y&x=%E4%B8%AD&x=中"),
        ("/p", "b=2&a=1&a=0&~=~&k=v=w"),
    ],
)
def test_the_sdk_and_the_platform_write_the_same_canonical_string(path, query):
    ours = signing.canonical_request(
        "get", path.encode(), query.encode(), "app", "k1", "17", "n" * 16, "d" * 64
    )
    sdk = canonical.request("get", path, query, "app", "k1", "17", "n" * 16, "d" * 64)
    assert ours == sdk
    assert canonical.response(200, "app", "n", "k", "1", "e") == signing.canonical_response(
        200, "app", "n", "k", "1", "e"
    )
