"""The voucher's QR images carry a fresh token that any scanner verifies with the JWKS."""

import asyncio
import io
import re
import struct
import time
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

import jwt
import pytest
import zxingcpp
from aiohttp.test_utils import TestClient
from PIL import Image, ImageFilter

from service import barcodes, qr
from service.domain.tokens import TOKEN_TYP
from tests.helpers import bearer, make_holder, make_offer, make_partner

SVG = "{http://www.w3.org/2000/svg}"


async def claimed_voucher(
    client: TestClient, db, card_number: str = "QR-0001"
) -> tuple[dict[str, str], str, str]:
    """A signed-in holder's headers, a voucher they claimed, and the offer's partner."""
    partner = await make_partner(db)
    offer = await make_offer(db, partner)
    await make_holder(db, card_number=card_number, pin="204816")
    session = await client.post(
        "/v1/holder-sessions", json={"card_number": card_number, "pin": "204816"}
    )
    headers = bearer((await session.json())["token"])
    claim = await client.post("/v1/me/vouchers", json={"offer_id": offer}, headers=headers)
    return headers, (await claim.json())["id"], partner


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and 8-bit gray pixels of a 1-bit grayscale PNG, checked chunk by chunk
    (signature, CRCs, IHDR, IEND) per the PNG specification."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, color, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (depth, color, compression, filtering, interlace) == (1, 0, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = (width + 7) // 8
    assert len(raw) == height * (stride + 1)
    pixels, previous = bytearray(), bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        assert kind in (0, 2), f"filter {kind} (this reader knows None and Up)"
        if kind == 2:
            line = bytes((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        previous = line
        bits = int.from_bytes(line, "big")
        for x in range(width):
            pixels.append(255 if bits >> (stride * 8 - 1 - x) & 1 else 0)
    return width, height, bytes(pixels)


def svg_pixels(data: bytes, scale: int = 4) -> tuple[int, int, bytes]:
    """The SVG's path drawn on its white square: the path is runs `M x y h w v1 h-w z`."""
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    _, _, width, height = map(int, root.get("viewBox").split())
    (path,) = root.iter(f"{SVG}path")
    grid = [bytearray(b"\xff" * width) for _ in range(height)]
    commands = path.get("d")
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", commands)
    assert "".join(f"M{x} {y}h{w}v1h-{w}z" for x, y, w, _ in runs) == commands
    for x, y, w, back in runs:
        assert w == back
        grid[int(y)][int(x) : int(x) + int(w)] = bytes(int(w))
    pixels = b"".join(bytes(b for b in row for _ in range(scale)) * scale for row in grid)
    return width * scale, height * scale, pixels


def decode(width: int, height: int, pixels: bytes) -> zxingcpp.Barcode:
    found = zxingcpp.read_barcode(
        memoryview(pixels).cast("B", (height, width)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert found is not None, "no QR code found in the image"
    return found


async def verified_claims(client: TestClient, token: str, partner: str, settings) -> dict:
    """The token checked the way a scanner would: EdDSA, with the published key it names."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == TOKEN_TYP
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    (jwk,) = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    return jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["EdDSA"],
        audience=partner,
        issuer=settings.issuer,
    )


async def test_png_decodes_to_a_fresh_token_for_this_voucher_verified_by_the_jwks(
    client: TestClient, db, settings
) -> None:
    headers, voucher, partner = await claimed_voucher(client, db)
    response = await client.get(f"/v1/me/vouchers/{voucher}/qr.png", headers=headers)
    assert response.status == 200
    assert response.content_type == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    width, height, pixels = png_pixels(await response.read())
    found = decode(width, height, pixels)
    assert found.ec_level == "M"  # docs/product.md: a phone screen with glare still scans
    assert width == height == len(qr.modules(found.text)) * qr.BOX_PIXELS
    claims = await verified_claims(client, found.text, partner, settings)
    assert claims["sub"] == voucher and claims["aud"] == partner
    expires_at = datetime.fromisoformat(response.headers["X-Token-Expires-At"])
    assert expires_at.timestamp() == claims["exp"]
    again = await client.get(f"/v1/me/vouchers/{voucher}/qr.png", headers=headers)
    assert decode(*png_pixels(await again.read())).text != found.text  # minted anew


def degraded(png_bytes: bytes) -> list[Image.Image]:
    """The PNG as a cheap camera sees a phone: scaled to 200×200 px, then also blurred."""
    small = Image.open(io.BytesIO(png_bytes)).convert("L").resize((200, 200), Image.LANCZOS)
    return [small, small.filter(ImageFilter.GaussianBlur(radius=1))]


async def test_qr_decodes_when_scaled_down_to_200_px_and_blurred(
    client: TestClient, db, settings
) -> None:
    headers, voucher, partner = await claimed_voucher(client, db)
    response = await client.get(f"/v1/me/vouchers/{voucher}/qr.png", headers=headers)
    body = await response.read()
    token = decode(*png_pixels(body)).text
    # The closing note of issue 18: today's token length and the QR version it needs.
    assert len(token) == 396 and (len(qr.modules(token)) - 2 * qr.BORDER - 17) // 4 == 15
    for image in degraded(body):
        found = zxingcpp.read_barcode(image, formats=zxingcpp.BarcodeFormat.QRCode)
        assert found is not None and found.text == token
    assert (await verified_claims(client, token, partner, settings))["ofr"]


def svg_rects_to_image(data: bytes, scale: float = 10.0) -> Image.Image:
    """A python-barcode SVG (white background rect, then one black rect per bar, in mm)
    rendered to a grayscale image: `scale` px per mm."""
    root = ET.fromstring(data)
    width = float(root.get("width").removesuffix("mm"))
    height = float(root.get("height").removesuffix("mm"))
    image = Image.new("L", (round(width * scale), round(height * scale)), 255)
    pixels = image.load()
    for rect in root.iter(f"{SVG}rect"):
        style = (rect.get("style") or "") + (rect.get("fill") or "")
        if "black" not in style and "#000" not in style:
            continue
        x0 = round(float(rect.get("x").removesuffix("mm")) * scale)
        y0 = round(float(rect.get("y").removesuffix("mm")) * scale)
        # Edges rounded where they are, so adjacent bars neither overlap nor part.
        x1 = round(
            (float(rect.get("x").removesuffix("mm")) + float(rect.get("width").removesuffix("mm")))
            * scale
        )
        y1 = round(
            (float(rect.get("y").removesuffix("mm")) + float(rect.get("height").removesuffix("mm")))
            * scale
        )
        for y in range(y0, y1):
            for x in range(x0, x1):
                pixels[x, y] = 0
    return image


@pytest.mark.parametrize(
    "code", ["990000000000000000", "999999999999999999", "000000000000000099", "012345678901234567"]
)
def test_a_code_128_barcode_reads_back_as_every_digit_of_its_code(code: str) -> None:
    # "99" at the start is set C's pair with the value of its own switch symbol: the
    # drawing library swallowed it (codes 99… read as 16 digits).
    image = svg_rects_to_image(barcodes.code128_svg(code))
    found = zxingcpp.read_barcode(image, formats=zxingcpp.BarcodeFormat.Code128)
    assert found is not None and found.text == code


async def test_token_answers_an_18_digit_code_that_the_barcode_draws_as_code_128(
    client: TestClient, db
) -> None:
    headers, voucher, _ = await claimed_voucher(client, db)
    token = await (await client.get(f"/v1/me/vouchers/{voucher}/token", headers=headers)).json()
    assert re.fullmatch(r"\d{18}", token["code"])
    response = await client.get(f"/v1/me/vouchers/{voucher}/barcode.svg", headers=headers)
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store"
    image = svg_rects_to_image(await response.read())
    found = zxingcpp.read_barcode(image, formats=zxingcpp.BarcodeFormat.Code128)
    assert found is not None and re.fullmatch(r"\d{18}", found.text)
    assert found.text != token["code"]  # each minting draws a new code (the old one dies)
    for blurred in degraded_barcode(image):
        assert zxingcpp.read_barcode(blurred, formats=zxingcpp.BarcodeFormat.Code128).text == (
            found.text
        )


def degraded_barcode(image: Image.Image) -> list[Image.Image]:
    small = image.resize((360, round(360 * image.height / image.width)), Image.LANCZOS)
    return [small, small.filter(ImageFilter.GaussianBlur(radius=1))]


async def test_svg_is_well_formed_and_decodes_to_a_token_for_this_voucher(
    client: TestClient, db, settings
) -> None:
    headers, voucher, partner = await claimed_voucher(client, db)
    response = await client.get(f"/v1/me/vouchers/{voucher}/qr.svg", headers=headers)
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Token-Expires-At"]
    found = decode(*svg_pixels(await response.read()))
    claims = await verified_claims(client, found.text, partner, settings)
    assert claims["sub"] == voucher and claims["aud"] == partner


async def test_qr_images_of_another_holders_voucher_are_not_found(client: TestClient, db) -> None:
    _, voucher, _ = await claimed_voucher(client, db, card_number="QR-THEIRS")
    await make_holder(db, card_number="QR-MINE", pin="204816")
    session = await client.post(
        "/v1/holder-sessions", json={"card_number": "QR-MINE", "pin": "204816"}
    )
    mine = bearer((await session.json())["token"])
    for image in ("qr.png", "qr.svg", "barcode.svg"):
        response = await client.get(f"/v1/me/vouchers/{voucher}/{image}", headers=mine)
        assert response.status == 404
        assert (await response.json())["code"] == "not_found"


async def test_qr_images_of_a_used_up_voucher_are_refused(client: TestClient, db) -> None:
    headers, voucher, _ = await claimed_voucher(client, db)
    await db.execute("UPDATE vouchers SET uses_left = 0, status = 'used_up' WHERE id = $1", voucher)
    for image in ("qr.png", "qr.svg", "barcode.svg"):
        response = await client.get(f"/v1/me/vouchers/{voucher}/{image}", headers=headers)
        assert response.status == 409
        assert (await response.json())["code"] == "voucher_used_up"


async def test_qr_images_need_a_holder_session(client: TestClient, db, admin) -> None:
    _, voucher, _ = await claimed_voucher(client, db)
    assert (await client.get(f"/v1/me/vouchers/{voucher}/qr.png")).status == 401
    assert (await client.get(f"/v1/me/vouchers/{voucher}/qr.png", headers=admin)).status == 403


async def test_health_answers_quickly_while_many_qr_images_are_drawn(
    client: TestClient, db
) -> None:
    headers, voucher, _ = await claimed_voucher(client, db)
    url = f"/v1/me/vouchers/{voucher}/qr.png"
    assert (await client.get(url, headers=headers)).status == 200  # render processes started

    async def image() -> int:
        response = await client.get(url, headers=headers)
        await response.read()
        return response.status

    async def health_latencies(burst: asyncio.Future) -> list[float]:
        latencies = []
        while not burst.done():
            started = time.perf_counter()
            assert (await client.get("/healthz")).status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
        return latencies

    burst = asyncio.gather(*(image() for _ in range(40)))
    latencies = await health_latencies(burst)
    assert await burst == [200] * 40
    assert latencies
    # Only the loop's own share of each request (session check, queries, a signature)
    # stands between healthz and its answer; the drawing happens elsewhere (next test).
    assert max(latencies) < 0.5, f"healthz took up to {max(latencies):.3f} s"


async def test_images_are_drawn_outside_the_server_process(
    client: TestClient, db, settings, monkeypatch
) -> None:
    """Drawing is pure Python holding the GIL: on the event loop or in a thread it would
    take the server's core. Here the server process cannot draw at all, yet images come."""

    def not_here(token: str) -> list[list[bool]]:
        raise AssertionError("a QR image was drawn in the server process")

    monkeypatch.setattr(qr, "modules", not_here)
    headers, voucher, partner = await claimed_voucher(client, db)
    for image, pixels in (("qr.png", png_pixels), ("qr.svg", svg_pixels)):
        response = await client.get(f"/v1/me/vouchers/{voucher}/{image}", headers=headers)
        assert response.status == 200
        found = decode(*pixels(await response.read()))
        assert (await verified_claims(client, found.text, partner, settings))["sub"] == voucher


async def test_render_pool_recovers_when_a_worker_dies() -> None:
    pool = qr.RenderPool(workers=1)
    try:
        with pytest.raises(BrokenProcessPool):
            await pool.render(_die, "")
        image = await pool.render(qr.png, "a token")
        assert decode(*png_pixels(image)).text == "a token"
    finally:
        await pool.close()


def _die(_: str) -> bytes:
    import os

    os._exit(1)


async def test_the_barcode_of_the_code_a_qr_came_with_stands_for_the_same_minting(
    client: TestClient, db
) -> None:
    headers, voucher, _ = await claimed_voucher(client, db)
    qr_response = await client.get(f"/v1/me/vouchers/{voucher}/qr.svg", headers=headers)
    code = qr_response.headers["X-Voucher-Code"]
    same = await client.get(f"/v1/me/vouchers/{voucher}/barcode.svg?code={code}", headers=headers)
    assert same.status == 200
    found = zxingcpp.read_barcode(
        svg_rects_to_image(await same.read()), formats=zxingcpp.BarcodeFormat.Code128
    )
    assert found.text == code
    stale = f"{(int(code) + 1) % 10**18:018d}"
    response = await client.get(
        f"/v1/me/vouchers/{voucher}/barcode.svg?code={stale}", headers=headers
    )
    assert response.status == 404
