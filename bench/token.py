"""Voucher tokens: the service's mint and verify against raw PyJWT, in the same run.

    .venv/bin/python bench/token.py [--n 200] [--rounds 60]

Both sides use the same Ed25519 key and the same claims. Raw verify is what a plain
PyJWT user must at least write: jwt.decode(token, key, algorithms=["EdDSA"],
audience=..., issuer=...). Raw mint encodes a ready claims dict; the service's mint
also draws the jti and reads the clock. Each round times n operations of each side
back to back (order alternating), so a busy machine slows both sides of a round
alike; the medians over the rounds are reported, the ratio being the median of the
rounds' ratios. Goal: verify ≥ 0.9× raw.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, where this file would
# shadow the standard library's `token` module: put the repository root there instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import jwt  # noqa: E402

from service.domain import tokens  # noqa: E402
from service.domain.ids import new_id  # noqa: E402

ISSUER = "youdai"
TTL = 300
WARM_UP = 200


def rate(operation: Callable[[], object], n: int) -> float:
    """Operations per second for n calls."""
    started = time.perf_counter()
    for _ in range(n):
        operation()
    return n / (time.perf_counter() - started)


def compare(
    name: str, service: Callable[[], object], raw: Callable[[], object], n: int, rounds: int
) -> float:
    for _ in range(WARM_UP):
        service()
        raw()
    service_rates, raw_rates, ratios = [], [], []
    gc.disable()
    try:
        for index in range(rounds):
            if index % 2:
                raw_rate, service_rate = rate(raw, n), rate(service, n)
            else:
                service_rate, raw_rate = rate(service, n), rate(raw, n)
            service_rates.append(service_rate)
            raw_rates.append(raw_rate)
            ratios.append(service_rate / raw_rate)
    finally:
        gc.enable()
    ratio = statistics.median(ratios)
    print(
        f"{name:<7} service {statistics.median(service_rates):>9,.0f} ops/s   "
        f"raw PyJWT {statistics.median(raw_rates):>9,.0f} ops/s   "
        f"service/raw {ratio:.2f}x  (rounds: {min(ratios):.2f}–{max(ratios):.2f})"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="operations per round and side")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()

    key = tokens.generate_signing_key()
    assert key.private_key is not None
    keys = {key.kid: key.public_key}
    voucher_id, partner_id = new_id("voucher"), new_id("partner")

    def service_mint() -> object:
        return tokens.mint(
            key,
            voucher_id=voucher_id,
            partner_id=partner_id,
            offer_id=new_id("offer"),
            issuer=ISSUER,
            ttl_seconds=TTL,
        )

    token, _ = service_mint()
    claims = jwt.decode(token, options={"verify_signature": False})
    headers = {"kid": key.kid, "typ": tokens.TOKEN_TYP}

    def raw_mint() -> object:
        return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers=headers)

    def service_verify() -> object:
        return tokens.verify(token, keys=keys, issuer=ISSUER, audience=partner_id)

    def raw_verify() -> object:
        return jwt.decode(
            token, key.public_key, algorithms=["EdDSA"], audience=partner_id, issuer=ISSUER
        )

    assert service_verify().voucher_id == raw_verify()["sub"] == voucher_id
    print(
        f"token {len(token)} chars; {args.rounds} rounds × {args.n} ops per side; "
        f"PyJWT {jwt.__version__}, Python {sys.version.split()[0]}"
    )
    compare("mint", service_mint, raw_mint, args.n, args.rounds)
    verify_ratio = compare("verify", service_verify, raw_verify, args.n, args.rounds)
    print(f"verify goal ≥ 0.90x: {'met' if verify_ratio >= 0.9 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
