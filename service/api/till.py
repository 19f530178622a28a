"""The till pack: what a till needs to keep redeeming while its network is down."""

from __future__ import annotations

from aiohttp import web

from schemas.till import TillPackSchema
from service.api.http import caller_as, json_response, operation
from service.app_keys import CLOCK, KEYRING, POOL, SETTINGS
from service.domain.auth import Role, ScannerKey
from service.flows import till_pack as flow

_out = TillPackSchema()


@operation(
    "What this till needs to keep redeeming offline (its partner's offers, keys, refusals)",
    roles=[Role.SCANNER],
    tags=["redemptions"],
    responses={200: TillPackSchema},
)
async def pack(request: web.Request) -> web.Response:
    """Fetched by the till at least every 5 minutes while online; usable offline until
    `valid_until` (24 h). Holds no holder's data: voucher ids only."""
    till_pack = await flow.pack(
        request.app[POOL],
        request.app[KEYRING],
        request.app[SETTINGS].timezone,
        caller_as(request, ScannerKey),
        request.app[CLOCK](),
    )
    return json_response(_out.dump(till_pack), headers={"Cache-Control": "no-store"})
