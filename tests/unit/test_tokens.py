"""Voucher tokens: minting, and everything the shared verify function must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import given
from hypothesis import strategies as st

from service.api.problems import status_of
from service.domain import tokens
from service.domain.errors import ApiError
from service.domain.ids import new_id
from service.domain.tokens import (
    LEEWAY_SECONDS,
    TOKEN_TYP,
    SigningKey,
    VoucherClaims,
    generate_signing_key,
    mint,
    public_jwk,
    verify,
)

ISSUER = "youdai"
TTL = 300
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
VOUCHER = new_id("voucher")
PARTNER = new_id("partner")
OTHER_PARTNER = new_id("partner")
OFFER = new_id("offer")


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def keys(key: SigningKey) -> dict[str, Any]:
    return {key.kid: key.public_key}


def mint_token(key: SigningKey, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "voucher_id": VOUCHER,
        "partner_id": PARTNER,
        "offer_id": OFFER,
        "issuer": ISSUER,
        "ttl_seconds": TTL,
        "now": NOW,
    }
    arguments.update(overrides)
    return mint(key, **arguments)[0]


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def check(token: str, keys: dict[str, Any], **overrides: Any) -> VoucherClaims:
    arguments: dict[str, Any] = {"issuer": ISSUER, "audience": PARTNER, "now": NOW}
    arguments.update(overrides)
    return verify(token, keys=keys, **arguments)


def refusal(call: Callable[[], object]) -> str:
    with pytest.raises(ApiError) as refused:
        call()
    return refused.value.code


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def sign_claims(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    """A token signed by hand with the real key, with any header and claims a test wants."""
    assert key.private_key is not None
    fields = {"alg": "EdDSA", "kid": key.kid, "typ": TOKEN_TYP, **header}
    signing_input = f"{b64_json({k: v for k, v in fields.items() if v is not None})}."
    signing_input += b64_json(claims)
    return f"{signing_input}.{b64(key.private_key.sign(signing_input.encode()))}"


def good_claims(**changes: Any) -> dict[str, Any]:
    issued = int(NOW.timestamp())
    claims = {
        "iss": ISSUER,
        "aud": PARTNER,
        "sub": VOUCHER,
        "ofr": OFFER,
        "jti": "abc123",
        "iat": issued,
        "nbf": issued,
        "exp": issued + TTL,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


# --- a good token ---------------------------------------------------------------------


def test_good_token_verifies_and_round_trips_its_claims(key: SigningKey, keys) -> None:
    token, expires_at = mint(
        key,
        voucher_id=VOUCHER,
        partner_id=PARTNER,
        offer_id=OFFER,
        issuer=ISSUER,
        ttl_seconds=TTL,
        now=NOW,
    )
    claims = check(token, keys)
    assert claims == VoucherClaims(
        voucher_id=VOUCHER,
        partner_id=PARTNER,
        offer_id=OFFER,
        jti=claims_of(token)["jti"],
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=TTL),
    )
    assert expires_at == NOW + timedelta(seconds=TTL)
    assert expires_at.tzinfo is not None


def test_token_minted_now_verifies_against_the_real_clock(key: SigningKey, keys) -> None:
    token, expires_at = mint(
        key, voucher_id=VOUCHER, partner_id=PARTNER, offer_id=OFFER, issuer=ISSUER, ttl_seconds=60
    )
    claims = verify(token, keys=keys, issuer=ISSUER, audience=PARTNER)
    assert claims.expires_at == expires_at
    assert abs(claims.issued_at - datetime.now(UTC)) < timedelta(seconds=5)


def test_audience_may_be_left_unchecked(key: SigningKey, keys) -> None:
    assert check(mint_token(key), keys, audience=None).partner_id == PARTNER


def test_header_is_eddsa_with_kid_and_voucher_typ(key: SigningKey) -> None:
    header = jwt.get_unverified_header(mint_token(key))
    assert header == {"alg": "EdDSA", "kid": key.kid, "typ": TOKEN_TYP}


def test_claims_are_exactly_the_voucher_claims_and_nothing_about_the_holder(
    key: SigningKey,
) -> None:
    claims = claims_of(mint_token(key))
    assert set(claims) == {"iss", "aud", "sub", "ofr", "jti", "iat", "nbf", "exp"}
    assert (claims["iss"], claims["aud"], claims["sub"]) == (ISSUER, PARTNER, VOUCHER)
    assert claims["nbf"] == claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == claims["iat"] + TTL


def test_every_token_gets_its_own_jti(key: SigningKey) -> None:
    jtis = {claims_of(mint_token(key))["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_token_names_the_offer_for_an_offline_scanner(key: SigningKey, keys) -> None:
    token = mint_token(key, offer_id="ofr_FOR_OFFLINE")
    assert claims_of(token)["ofr"] == "ofr_FOR_OFFLINE"
    assert check(token, keys).offer_id == "ofr_FOR_OFFLINE"


def test_minting_needs_a_private_key_an_aware_now_and_a_positive_ttl(key: SigningKey) -> None:
    public_only = SigningKey(key.kid, None, key.public_key)
    with pytest.raises(ValueError):
        mint_token(public_only)
    with pytest.raises(ValueError):
        mint_token(key, now=datetime(2026, 3, 1, 9, 30))  # naive
    with pytest.raises(ValueError):
        mint_token(key, ttl_seconds=0)


# --- forged and tampered tokens -------------------------------------------------------


def test_tampered_payload_is_invalid(key: SigningKey, keys) -> None:
    header, _, signature = mint_token(key).split(".")
    forged = f"{header}.{b64_json(good_claims(aud=OTHER_PARTNER, sub='vch_other'))}.{signature}"
    assert refusal(lambda: check(forged, keys)) == "token_invalid"


def test_tampered_payload_naming_another_partner_is_invalid_not_wrong_partner(
    key: SigningKey, keys
) -> None:
    header, _, signature = mint_token(key).split(".")
    forged = f"{header}.{b64_json(good_claims(aud=OTHER_PARTNER))}.{signature}"
    assert refusal(lambda: check(forged, keys, audience=PARTNER)) == "token_invalid"


def test_tampered_signature_is_invalid(key: SigningKey, keys) -> None:
    header, payload, signature = mint_token(key).split(".")
    # Flip a character in the middle: the last one carries 4 padding bits that decode away.
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    forged = f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    assert refusal(lambda: check(forged, keys)) == "token_invalid"


def test_token_without_signature_is_invalid(key: SigningKey, keys) -> None:
    header, payload, _ = mint_token(key).split(".")
    assert refusal(lambda: check(f"{header}.{payload}.", keys)) == "token_invalid"


def test_token_signed_by_another_key_under_a_known_kid_is_invalid(key: SigningKey, keys) -> None:
    impostor = generate_signing_key()
    forged = sign_claims(impostor, good_claims(), kid=key.kid)
    assert refusal(lambda: check(forged, keys)) == "token_invalid"


def test_alg_none_is_invalid(key: SigningKey, keys) -> None:
    header = b64_json({"alg": "none", "typ": TOKEN_TYP, "kid": key.kid})
    unsigned = f"{header}.{b64_json(good_claims())}."
    assert refusal(lambda: check(unsigned, keys)) == "token_invalid"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "", None])
def test_alg_none_spellings_are_invalid(key: SigningKey, keys, alg: str | None) -> None:
    header = b64_json({"alg": alg, "typ": TOKEN_TYP, "kid": key.kid})
    for signature in ("", b64(b"\0" * 64)):
        unsigned = f"{header}.{b64_json(good_claims())}.{signature}"
        assert refusal(lambda token=unsigned: check(token, keys)) == "token_invalid"


@pytest.mark.parametrize("secret_form", ["pem", "raw"])
def test_hs256_signed_with_the_public_key_is_invalid(
    key: SigningKey, keys, secret_form: str
) -> None:
    # The classic confusion attack: the public key, which anyone has, used as an HMAC secret.
    secret = (
        tokens.public_pem(key).encode()
        if secret_form == "pem"
        else base64.urlsafe_b64decode(public_jwk(key)["x"] + "=")
    )
    signing_input = (
        f"{b64_json({'alg': 'HS256', 'typ': TOKEN_TYP, 'kid': key.kid})}.{b64_json(good_claims())}"
    )
    signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    assert refusal(lambda: check(f"{signing_input}.{signature}", keys)) == "token_invalid"


def test_unknown_kid_is_invalid(key: SigningKey) -> None:
    token = mint_token(key)
    assert refusal(lambda: check(token, {"someone": key.public_key})) == "token_invalid"
    assert refusal(lambda: check(token, {})) == "token_invalid"


@pytest.mark.parametrize("kid", [None, 7, ["x"], {"k": 1}])
def test_missing_or_non_string_kid_is_invalid(key: SigningKey, keys, kid: Any) -> None:
    header = {"alg": "EdDSA", "typ": TOKEN_TYP} | ({} if kid is None else {"kid": kid})
    token = f"{b64_json(header)}.{b64_json(good_claims())}.{b64(bytes(64))}"
    assert refusal(lambda: check(token, keys)) == "token_invalid"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "yd-voucher", "youdai-voucher+jwt", None])
def test_wrong_typ_is_invalid_even_when_signed_by_our_key(
    key: SigningKey, keys, typ: str | None
) -> None:
    token = sign_claims(key, good_claims(), typ=typ)
    assert refusal(lambda: check(token, keys)) == "token_invalid"


def test_other_signing_algorithms_are_invalid(key: SigningKey, keys) -> None:
    ec_key = generate_private_key(SECP256R1())
    token = jwt.encode(
        good_claims(), ec_key, algorithm="ES256", headers={"kid": key.kid, "typ": TOKEN_TYP}
    )
    assert refusal(lambda: check(token, {key.kid: ec_key.public_key()})) == "token_invalid"


def test_unverified_kid_names_the_key_of_a_voucher_token_only(key: SigningKey) -> None:
    assert tokens.unverified_kid(mint_token(key)) == key.kid
    jwt_typed = sign_claims(key, good_claims(), typ="JWT")
    assert refusal(lambda: tokens.unverified_kid(jwt_typed)) == "token_invalid"


def test_a_header_seen_before_does_not_vouch_for_the_rest_of_the_token(
    key: SigningKey, keys
) -> None:
    header, payload, _ = mint_token(key).split(".")
    assert check(mint_token(key), keys).voucher_id == VOUCHER  # the header is now known
    for forged in (f"{header}.{payload}.", f"{header}.{payload}.{b64(bytes(64))}", f"{header}.."):
        assert refusal(lambda token=forged: check(token, keys)) == "token_invalid"


def test_strangers_cannot_grow_the_header_cache_without_bound(key: SigningKey, keys) -> None:
    for index in range(tokens._CHECKED_HEADERS_MAX + 50):
        token = sign_claims(key, good_claims(), x=index)  # a valid header, each one different
        assert check(token, keys).voucher_id == VOUCHER
    assert len(tokens._CHECKED_HEADERS) <= tokens._CHECKED_HEADERS_MAX


# --- time -----------------------------------------------------------------------------


def test_expired_token_is_refused_as_expired(key: SigningKey, keys) -> None:
    token = mint_token(key)
    after = NOW + timedelta(seconds=TTL + LEEWAY_SECONDS)
    assert refusal(lambda: check(token, keys, now=after)) == "token_expired"


def test_expired_token_against_the_real_clock_is_refused_as_expired(key: SigningKey, keys) -> None:
    token = mint_token(key, now=datetime.now(UTC) - timedelta(seconds=TTL + 60))
    assert refusal(lambda: verify(token, keys=keys, issuer=ISSUER, audience=PARTNER)) == (
        "token_expired"
    )


def test_token_just_past_exp_is_accepted_within_the_leeway(key: SigningKey, keys) -> None:
    token = mint_token(key)
    almost = NOW + timedelta(seconds=TTL + LEEWAY_SECONDS - 1)
    assert check(token, keys, now=almost).voucher_id == VOUCHER


def test_token_not_yet_valid_beyond_the_leeway_is_refused(key: SigningKey, keys) -> None:
    token = mint_token(key)
    before = NOW - timedelta(seconds=LEEWAY_SECONDS + 1)
    assert refusal(lambda: check(token, keys, now=before)) == "token_not_yet_valid"


def test_token_from_a_clock_slightly_ahead_is_accepted_within_the_leeway(
    key: SigningKey, keys
) -> None:
    token = mint_token(key)
    assert check(token, keys, now=NOW - timedelta(seconds=LEEWAY_SECONDS)).voucher_id == VOUCHER


def test_nbf_in_the_future_is_refused_even_when_iat_is_now(key: SigningKey, keys) -> None:
    issued = int(NOW.timestamp())
    token = sign_claims(key, good_claims(nbf=issued + 60))
    assert refusal(lambda: check(token, keys)) == "token_not_yet_valid"


def test_iat_in_the_future_is_refused(key: SigningKey, keys) -> None:
    issued = int(NOW.timestamp())
    token = sign_claims(key, good_claims(iat=issued + 60))
    assert refusal(lambda: check(token, keys)) == "token_not_yet_valid"


def test_expired_token_for_another_partner_is_refused_as_expired_first(
    key: SigningKey, keys
) -> None:
    token = mint_token(key)
    after = NOW + timedelta(hours=1)
    assert refusal(lambda: check(token, keys, audience=OTHER_PARTNER, now=after)) == (
        "token_expired"
    )


# --- issuer, audience, claims ---------------------------------------------------------


def test_wrong_issuer_is_invalid(key: SigningKey, keys) -> None:
    assert refusal(lambda: check(mint_token(key, issuer="elsewhere"), keys)) == "token_invalid"
    assert refusal(lambda: check(mint_token(key), keys, issuer="elsewhere")) == "token_invalid"


def test_token_for_another_partner_is_wrong_partner(key: SigningKey, keys) -> None:
    token = mint_token(key, partner_id=OTHER_PARTNER)
    with pytest.raises(ApiError) as refused:
        check(token, keys, audience=PARTNER)
    assert refused.value.code == "wrong_partner"
    assert status_of(refused.value) == 403


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "iss", "aud", "sub", "ofr", "jti"])
def test_token_missing_a_claim_is_invalid(key: SigningKey, keys, claim: str) -> None:
    token = sign_claims(key, good_claims(**{claim: None}))
    assert refusal(lambda: check(token, keys)) == "token_invalid"


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "1772357700"},
        {"exp": 1772357700.5},
        {"iat": True},
        {"nbf": "soon"},
        {"sub": 12345},
        {"sub": ""},
        {"aud": [PARTNER]},
        {"aud": ""},
        {"jti": 7},
        {"iss": ["youdai"]},
    ],
    ids=lambda changes: next(iter(changes)) + "=" + repr(next(iter(changes.values()))),
)
def test_token_with_a_mistyped_claim_is_invalid(key: SigningKey, keys, changes) -> None:
    token = sign_claims(key, good_claims(**changes))
    assert refusal(lambda: check(token, keys, audience=None)) == "token_invalid"


# --- garbage --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " ",
        "hello",
        "a.b",
        "a.b.c",
        "...",
        "a.b.c.d.e",
        "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",  # JWE-shaped, 5 parts
        "券.券.券",
        "e30.e30.",  # {} . {} .
        "W10.W10.AA",  # [] . [] .
        "x" * 100_000,
    ],
)
def test_garbage_is_invalid(keys, garbage: str) -> None:
    assert refusal(lambda: check(garbage, keys)) == "token_invalid"


def test_good_token_with_extra_segments_is_invalid(key: SigningKey, keys) -> None:
    token = mint_token(key)
    assert refusal(lambda: check(token + ".abc.def", keys)) == "token_invalid"
    assert refusal(lambda: check(token + "\n", keys)) == "token_invalid"


@pytest.mark.parametrize("not_a_string", [None, b"a.b.c", 42])
def test_non_string_token_is_invalid(keys, not_a_string: Any) -> None:
    assert refusal(lambda: check(not_a_string, keys)) == "token_invalid"


_FUZZ_KEY = generate_signing_key()


@given(st.text(max_size=400))
def test_any_string_is_refused_with_token_invalid_and_nothing_else(text: str) -> None:
    key = _FUZZ_KEY
    assert refusal(lambda: check(text, {key.kid: key.public_key})) == "token_invalid"


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="


@given(st.lists(st.text(alphabet=BASE64URL, max_size=120), min_size=1, max_size=6))
def test_any_dotted_base64ish_string_is_refused_with_token_invalid(parts: list[str]) -> None:
    key = _FUZZ_KEY
    text = ".".join(parts)
    assert refusal(lambda: check(text, {key.kid: key.public_key})) == "token_invalid"


# --- keys and rotation ----------------------------------------------------------------


def test_token_of_the_previous_key_verifies_while_that_key_is_published() -> None:
    old, new = generate_signing_key(), generate_signing_key()
    old_token, new_token = mint_token(old), mint_token(new)
    published = {old.kid: old.public_key, new.kid: new.public_key}
    assert check(old_token, published).voucher_id == VOUCHER
    assert check(new_token, published).voucher_id == VOUCHER
    # Once the old key is withdrawn, its tokens stop working.
    assert refusal(lambda: check(old_token, {new.kid: new.public_key})) == "token_invalid"


def test_keys_get_distinct_short_kids() -> None:
    kids = {generate_signing_key().kid for _ in range(20)}
    assert len(kids) == 20
    assert all(len(kid) == tokens.KID_CHARS for kid in kids)


def test_kid_is_the_truncated_rfc7638_thumbprint(key: SigningKey) -> None:
    jwk = public_jwk(key)
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":")
    )
    thumbprint = b64(hashlib.sha256(canonical.encode()).digest())
    assert key.kid == thumbprint[: tokens.KID_CHARS]


def test_public_jwk_lets_a_scanner_verify_a_token_offline(key: SigningKey) -> None:
    jwk = public_jwk(key)
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": jwk["x"],
        "kid": key.kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    assert "d" not in jwk  # never the private part
    token = mint_token(key)
    published = jwt.PyJWK(jwk)
    claims = jwt.decode(
        token, published, audience=PARTNER, issuer=ISSUER, options={"verify_exp": False}
    )
    assert claims["sub"] == VOUCHER
    # The same key, rebuilt from the JWK, passes the service's own verify too.
    assert check(token, {jwk["kid"]: published.key}).voucher_id == VOUCHER


def test_keys_survive_a_round_trip_through_pem(key: SigningKey) -> None:
    loaded = tokens.signing_key_from_pem(tokens.private_pem(key))
    assert loaded.kid == key.kid
    public_only = tokens.verify_key_from_pem(tokens.public_pem(key))
    assert public_only.kid == key.kid
    assert public_only.private_key is None
    token = mint_token(loaded)
    assert check(token, {public_only.kid: public_only.public_key}).voucher_id == VOUCHER


def test_pem_of_another_key_type_is_refused() -> None:
    ec_pem = (
        generate_private_key(SECP256R1())
        .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        .decode()
    )
    with pytest.raises(ValueError):
        tokens.signing_key_from_pem(ec_pem)


def test_private_pem_of_a_retired_key_is_refused(key: SigningKey) -> None:
    with pytest.raises(ValueError):
        tokens.private_pem(SigningKey(key.kid, None, key.public_key))


# --- lifetimes (issue 14 line 6) ---------------------------------------------------------


@pytest.mark.parametrize("expires", [2**70, 2**63, 253_402_300_800, 10**20])
def test_token_whose_exp_overflows_a_datetime_is_invalid(key: SigningKey, keys, expires) -> None:
    token = sign_claims(key, good_claims(exp=expires))
    assert refusal(lambda: check(token, keys)) == "token_invalid"


def test_token_living_longer_than_the_configured_ttl_is_invalid(key: SigningKey, keys) -> None:
    issued = int(NOW.timestamp())
    long_lived = sign_claims(key, good_claims(exp=issued + TTL + LEEWAY_SECONDS + 1))
    assert refusal(lambda: check(long_lived, keys, max_lifetime=TTL)) == "token_invalid"
    just_within = sign_claims(key, good_claims(exp=issued + TTL + LEEWAY_SECONDS))
    assert check(just_within, keys, max_lifetime=TTL).voucher_id == VOUCHER


def test_token_expiring_before_it_was_issued_is_invalid(key: SigningKey, keys) -> None:
    issued = int(NOW.timestamp())
    token = sign_claims(key, good_claims(iat=issued, exp=issued - 1, nbf=issued - 100))
    assert refusal(lambda: check(token, keys, now=NOW - timedelta(seconds=200))) == (
        "token_invalid"
    )
