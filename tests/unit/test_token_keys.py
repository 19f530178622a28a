"""Voucher token keys and the token's edges, each test making its own key (so that a
key's kid is derived inside the test, not in a shared fixture)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.domain import tokens
from service.domain.errors import ApiError
from service.domain.tokens import SigningKey, generate_signing_key, key_id, mint, verify
from tests.unit.test_tokens import good_claims, sign_claims

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ISSUER = "youdai"


def token_of(key: SigningKey, ttl: int = 300, partner_id: str = "ptn_1") -> str:
    return mint(
        key,
        voucher_id="vch_1",
        partner_id=partner_id,
        offer_id="ofr_1",
        issuer=ISSUER,
        ttl_seconds=ttl,
        now=NOW,
    )[0]


def refusal(token: Any, keys: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as refused:
        verify(token, keys=keys, issuer=ISSUER, audience="ptn_1", now=NOW)
    return refused.value


def test_kid_is_the_rfc7638_thumbprint_of_rfc8037s_example_key() -> None:
    # RFC 8037 A.2/A.3: this public key's JWK thumbprint.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert key_id(public) == thumbprint[: tokens.KID_CHARS]
    assert tokens.public_jwk(SigningKey("k", None, public))["x"] == x


def test_a_key_loaded_from_pem_signs_and_publishes_its_public_part() -> None:
    key = generate_signing_key()
    loaded = tokens.signing_key_from_pem(tokens.private_pem(key))
    assert loaded.kid == key.kid
    assert tokens.public_pem(loaded) == tokens.public_pem(key)
    assert tokens.signing_key_from_pem(tokens.private_pem(key), kid="given").kid == "given"
    assert tokens.verify_key_from_pem(tokens.public_pem(key), kid="old").kid == "old"
    claims = verify(
        token_of(loaded), keys={key.kid: key.public_key}, issuer=ISSUER, audience="ptn_1", now=NOW
    )
    assert claims.voucher_id == "vch_1"


def test_a_one_second_ttl_is_allowed_and_a_zero_one_is_not() -> None:
    key = generate_signing_key()
    _, expires = mint(
        key, voucher_id="v", partner_id="p", offer_id="o", issuer=ISSUER, ttl_seconds=1, now=NOW
    )
    assert expires == NOW + timedelta(seconds=1)
    with pytest.raises(ValueError):
        mint(
            key, voucher_id="v", partner_id="p", offer_id="o", issuer=ISSUER, ttl_seconds=0, now=NOW
        )


def test_the_jti_is_nine_random_bytes() -> None:
    claims = jwt.decode(token_of(generate_signing_key()), options={"verify_signature": False})
    assert len(base64.urlsafe_b64decode(claims["jti"])) == tokens.JTI_BYTES


def test_tokens_of_two_keys_are_each_checked_with_their_own_key() -> None:
    first, second = generate_signing_key(), generate_signing_key()
    keys = {first.kid: first.public_key, second.kid: second.public_key}
    for key in (first, second, first):
        claims = verify(token_of(key), keys=keys, issuer=ISSUER, audience="ptn_1", now=NOW)
        assert claims.voucher_id == "vch_1"
    assert tokens.unverified_kid(token_of(second)) == second.kid


def test_refusals_say_why_beyond_the_codes_title() -> None:
    key = generate_signing_key()
    keys = {key.kid: key.public_key}
    details = {
        refusal("", keys).detail,
        refusal("not-a-token", keys).detail,
        refusal(token_of(generate_signing_key()), keys).detail,
    }
    assert len(details) == 3
    assert ApiError("token_invalid").title not in details


def test_a_token_longer_than_the_limit_is_refused_even_when_well_signed() -> None:
    key = generate_signing_key()

    def signed(padding: int) -> str:
        return sign_claims(key, good_claims(aud="ptn_1", pad="x" * padding))

    base = len(signed(0))
    # Base64 grows 4 characters per 3 bytes: find the padding that lands on the limit.
    padding = next(p for p in range(3000) if len(signed(p)) >= tokens.MAX_TOKEN_CHARS)
    at_limit = signed(padding)
    keys = {key.kid: key.public_key}
    assert len(at_limit) == tokens.MAX_TOKEN_CHARS
    assert verify(at_limit, keys=keys, issuer=ISSUER, audience="ptn_1", now=NOW)
    over = signed(padding + 3)
    assert len(over) > tokens.MAX_TOKEN_CHARS > base
    assert refusal(over, keys).code == "token_invalid"


@pytest.mark.parametrize(
    ("issued", "expires"),
    [(0, 300), (1000, 1000), (tokens.MAX_TIMESTAMP - 10, tokens.MAX_TIMESTAMP)],
)
def test_lifetimes_at_the_edges_of_the_allowed_range_are_valid(issued: int, expires: int) -> None:
    key = generate_signing_key()
    token = sign_claims(key, good_claims(aud="ptn_1", iat=issued, nbf=issued, exp=expires))
    at = datetime.fromtimestamp(issued, UTC)
    assert (
        verify(
            token, keys={key.kid: key.public_key}, issuer=ISSUER, audience="ptn_1", now=at
        ).issued_at
        == at
    )
