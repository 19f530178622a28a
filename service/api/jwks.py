"""The public keys that verify voucher tokens, for scanners that check offline."""

from __future__ import annotations

from aiohttp import web

from schemas.jwks import JwksSchema
from service.api.http import json_response, operation
from service.app_keys import KEYRING, POOL, SETTINGS


def jwks_max_age(token_ttl: int) -> int:
    """Shorter than a token's life, so a scanner sees a new key before it sees its tokens."""
    return max(1, min(60, token_ttl // 4))


@operation(
    "Public keys that sign voucher tokens (JWKS)", tags=["vouchers"], responses={200: JwksSchema}
)
async def jwks(request: web.Request) -> web.Response:
    """The active key and retired keys whose tokens may still be unexpired."""
    document = await request.app[KEYRING].jwks(request.app[POOL])
    max_age = jwks_max_age(request.app[SETTINGS].token_ttl)
    return json_response(document, headers={"Cache-Control": f"public, max-age={max_age}"})
