"""Voucher tokens: what the QR code carries, and the one function that checks them.

A token is a compact JWS signed with Ed25519 (alg EdDSA). Its header names the key
(`kid`) and says what it is (`typ`), so a voucher token can never be mistaken for
another JWT. Its claims name the voucher (`sub`), the partner whose scanners may
redeem it (`aud`), the offer (`ofr`, so an offline scanner can tell which offer it grants
without asking the service), the issuer and the validity times — nothing about the
holder.
Tokens live minutes and are minted afresh each time the holder opens the voucher, so a
screenshot goes stale.

Every endpoint that accepts a token calls `verify`; it refuses anything but an
EdDSA-signed voucher token under a known key: `alg: none`, HS256 signed with the
public key, a wrong `typ`, an unknown `kid`, a bad signature, a missing claim.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from service.domain.errors import ApiError
from service.domain.language import Said

TOKEN_TYP = "yd-voucher+jwt"  # noqa: S105 (a JOSE "typ", not a secret)
#: The only algorithm accepted, fixed here and never taken from the token (RFC 8725 §2.1).
ALGORITHMS = ["EdDSA"]
#: Tolerated clock difference between the signing server and the verifying one, seconds.
LEEWAY_SECONDS = 5
#: Claims PyJWT must find in every voucher token; they are all the claims we mint.
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "ofr", "jti")
#: Longer strings are refused before any decoding: real tokens are a few hundred characters.
MAX_TOKEN_CHARS = 2048
#: There is no length limit (docs/product.md): the QR is drawn at level M whatever the length.
#: With today's ids, the default issuer and 10-digit times a token is 396 characters:
#: header 74 + payload 234 ({"iss","aud","sub","ofr","jti","iat","nbf","exp"}, 175 bytes)
#: + signature 86 + 2 dots, which is QR version 15 (77×77 modules) at level M (service/qr.py).

#: What a holder is told when a token or its voucher code has expired.
CODE_EXPIRED = Said(
    "The voucher code has expired; open the voucher again", "优待码已过期：请重新打开优待券"
)
WRONG_PARTNER = Said("This voucher is for another partner", "此优待券属于其他合作商户")

#: 9999-12-31T23:59:59Z: later times cannot be a datetime, so no token may name them.
MAX_TIMESTAMP = 253_402_300_799

KID_CHARS = 8
JTI_BYTES = 9

# Time and audience are checked below rather than by PyJWT: PyJWT reads the wall clock
# itself (no `now` to inject), and a wrong audience must be told apart from a forgery.
_DECODER = jwt.PyJWT(
    options={
        "require": list(REQUIRED_CLAIMS),
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
    }
)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One Ed25519 key. `private_key` is None for a retired key kept only to verify."""

    kid: str
    private_key: Ed25519PrivateKey | None
    public_key: Ed25519PublicKey


@dataclass(frozen=True, slots=True)
class VoucherClaims:
    """What a verified token says."""

    voucher_id: str
    partner_id: str
    offer_id: str
    jti: str
    issued_at: datetime
    expires_at: datetime


# --- keys -----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint, shortened: short tokens, stable across restarts."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(public_key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())[:KID_CHARS]


def generate_signing_key() -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    return SigningKey(key_id(public_key), private_key, public_key)


def private_pem(key: SigningKey) -> str:
    """The private key as unencrypted PKCS#8 PEM (for storage the operator protects)."""
    if key.private_key is None:
        raise ValueError(f"signing key {key.kid} has no private part")
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem(key: SigningKey) -> str:
    return key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def signing_key_from_pem(pem: str, kid: str | None = None) -> SigningKey:
    """Load a key written by `private_pem`; its kid is derived again unless given."""
    private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    public_key = private_key.public_key()
    return SigningKey(kid or key_id(public_key), private_key, public_key)


def verify_key_from_pem(pem: str, kid: str | None = None) -> SigningKey:
    """Load a public key written by `public_pem` (a retired key that only verifies)."""
    public_key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(public_key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return SigningKey(kid or key_id(public_key), None, public_key)


def public_jwk(key: SigningKey) -> dict[str, str]:
    """The key as published in /.well-known/jwks.json (RFC 8037), for offline scanners."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(_raw_public(key.public_key)),
        "kid": key.kid,
        "alg": "EdDSA",
        "use": "sig",
    }


# --- mint -----------------------------------------------------------------------------


def mint(
    key: SigningKey,
    *,
    voucher_id: str,
    partner_id: str,
    offer_id: str,
    issuer: str,
    ttl_seconds: int,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A fresh token for one voucher, and when it expires (UTC)."""
    if key.private_key is None:
        raise ValueError(f"signing key {key.kid} cannot sign (no private part)")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    issued = int(time.time() if now is None else now.timestamp())
    expires = issued + ttl_seconds
    claims = {
        "iss": issuer,
        "aud": partner_id,
        "sub": voucher_id,
        "ofr": offer_id,
        "jti": secrets.token_urlsafe(JTI_BYTES),
        "iat": issued,
        "nbf": issued,
        "exp": expires,
    }
    token = jwt.encode(
        claims,
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": TOKEN_TYP},
    )
    return token, datetime.fromtimestamp(expires, UTC)


# --- verify ---------------------------------------------------------------------------


def _invalid(detail: str) -> ApiError:
    return ApiError("token_invalid", detail)


#: header segment -> kid, for headers that passed `unverified_kid`. Every token a key signs
#: has the same header, so this skips re-parsing it (PyJWT's parse is as slow as the
#: signature check). Bounded: odd headers from strangers just take the slow path.
_CHECKED_HEADERS: dict[str, str] = {}
_CHECKED_HEADERS_MAX = 64


def unverified_kid(token: str) -> str:
    """The kid named by a token whose header says "voucher token, EdDSA"; not yet trusted.

    Callers that load keys lazily use it to see whether a token names a key they lack;
    it is much cheaper than jwt.get_unverified_header for the tokens we mint. Anything
    else is refused with `token_invalid`.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid(Said("The token is empty or not a token", "令牌为空或不是令牌"))
    segment = token.partition(".")[0]
    kid = _CHECKED_HEADERS.get(segment)
    if kid is not None:
        return kid
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid(Said("The token is malformed", "令牌格式错误")) from None
    if header.get("typ") != TOKEN_TYP:
        raise _invalid(Said("This is not a voucher token", "这不是优待券令牌"))
    if header.get("alg") not in ALGORITHMS:
        raise _invalid(Said("The token's algorithm is not accepted", "不接受令牌的算法"))
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise _invalid(Said("The token does not name its key", "令牌没有注明其密钥"))
    if len(_CHECKED_HEADERS) < _CHECKED_HEADERS_MAX:
        _CHECKED_HEADERS[segment] = kid
    return kid


def _signed_claims(token: str, keys: Mapping[str, Ed25519PublicKey], issuer: str) -> dict[str, Any]:
    """The claims of a token whose signature (by a key in `keys`, with the one pinned
    algorithm) and issuer are proven; `token_invalid` otherwise."""
    public_key = keys.get(unverified_kid(token))
    if public_key is None:
        raise _invalid(Said("The token is signed with an unknown key", "令牌由未知密钥签名"))
    try:
        claims: dict[str, Any] = _DECODER.decode(
            token, public_key, algorithms=ALGORITHMS, issuer=issuer
        )
    except jwt.PyJWTError:
        raise _invalid(
            Said("The token's signature or claims are not valid", "令牌的签名或声明无效")
        ) from None
    return claims


def verify(
    token: str,
    *,
    keys: Mapping[str, Ed25519PublicKey],
    issuer: str,
    audience: str | None,
    now: datetime | None = None,
    max_lifetime: int | None = None,
) -> VoucherClaims:
    """Check a voucher token and return its claims, or raise the documented code (docs/codes.md).

    Refusals: `token_invalid` (malformed, wrong typ/alg, unknown kid, bad signature,
    wrong issuer, missing or mistyped claim), `token_expired`, `token_not_yet_valid`,
    and `wrong_partner` when `audience` is given and differs — the audience is only
    compared once the signature is proven, so a forged token is always `token_invalid`.
    `keys` maps kid → public key: every key whose tokens may still be alive.
    `max_lifetime` (seconds, the configured TTL) refuses a token that lives longer, as
    `token_invalid`: only a stolen signing key mints such a token (docs/product.md).
    """
    claims = _signed_claims(token, keys, issuer)
    # Plain type tests, not a loop: this runs on every scan. `type(x) is int` keeps out bools.
    issued, not_before, expires = claims["iat"], claims["nbf"], claims["exp"]
    if not (type(issued) is int and type(not_before) is int and type(expires) is int):
        raise _invalid(Said("The token's times are not valid", "令牌的时间无效"))
    if not (0 <= issued <= expires <= MAX_TIMESTAMP) or (
        max_lifetime is not None and expires - issued > max_lifetime + LEEWAY_SECONDS
    ):
        raise _invalid(Said("The token's lifetime is not valid", "令牌的有效期无效"))
    partner_id, voucher_id, offer_id = claims["aud"], claims["sub"], claims["ofr"]
    if not (type(partner_id) is str and type(voucher_id) is str and partner_id and voucher_id):
        raise _invalid(
            Said("The token does not name a voucher and partner", "令牌没有注明优待券和合作商户")
        )
    if not (type(offer_id) is str and offer_id):
        raise _invalid(Said("The token does not name an offer", "令牌没有注明优惠"))

    moment = time.time() if now is None else now.timestamp()
    if expires <= moment - LEEWAY_SECONDS:
        raise ApiError("token_expired", CODE_EXPIRED)
    if not_before > moment + LEEWAY_SECONDS or issued > moment + LEEWAY_SECONDS:
        raise ApiError("token_not_yet_valid")
    if audience is not None and partner_id != audience:
        raise ApiError("wrong_partner", WRONG_PARTNER)
    return VoucherClaims(
        voucher_id=voucher_id,
        partner_id=partner_id,
        offer_id=offer_id,
        jti=claims["jti"],
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
