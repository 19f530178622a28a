"""Arranging rows for tests through the service's own use cases (never raw fixtures)."""

from __future__ import annotations

import asyncpg

from service.domain.auth import AdminKey, Role
from service.flows import holders as holders_flow
from service.flows import keys as keys_flow
from service.flows import offers as offers_flow
from service.flows import partners as partners_flow


async def make_partner(
    db: asyncpg.Connection,
    *,
    name: str = "区邮政分公司",
    category: str = "postal",
    status: str = "active",
) -> str:
    partner = await partners_flow.enrol(db, None, {"name": name, "category": category})
    steps = {"pending": (), "active": ("active",), "suspended": ("active", "suspended")}
    for step in steps.get(status, ("active", "suspended", status)):
        await partners_flow.change(db, None, partner.id, {"status": step})
    return partner.id


async def make_key(db: asyncpg.Connection, role: Role, partner_id: str | None = None) -> str:
    """A new key's secret."""
    _, secret = await keys_flow.issue(
        db, role=role, partner_id=partner_id, label=f"test {role}", actor=None
    )
    return secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_offer(
    db: asyncpg.Connection, partner_id: str, *, status: str = "active", **fields: object
) -> str:
    """A new offer's id: by default percent_off 10 %, active, no window and no limits.

    `fields` are columns (holder_limit as holder_limit_count and holder_limit_period),
    e.g. make_offer(db, pid, kind="amount_off", amount_off=300, budget=10_000).
    """
    values = {"title": "邮政寄递九折", "kind": "percent_off", **fields}
    if values["kind"] == "percent_off":
        values.setdefault("percent_bp", 1000)
    offer = await offers_flow.create(db, None, {"partner_id": partner_id, **values})
    for step in {"draft": (), "active": ("active",), "paused": ("active", "paused")}.get(
        status, ("active", status)
    ):
        await offers_flow.change(db, None, offer.id, {"status": step})
    return offer.id


async def make_holder(
    db: asyncpg.Connection,
    *,
    card_number: str | None = None,
    category: str = "veteran",
    display_name: str = "王建国",
    region: str = "东城街道",
    valid_until: str = "2030-12-31",
    pin: str = "204816",
    status: str = "active",
) -> str:
    """A new holder's id (card number random unless given; the PIN is `pin`)."""
    from datetime import date

    from service.domain.ids import time_ordered_id

    holder = await holders_flow.enrol(
        db,
        None,
        {
            "card_number": card_number or f"T-{time_ordered_id()[-12:]}",
            "category": category,
            "display_name": display_name,
            "region": region,
            "valid_until": date.fromisoformat(valid_until),
            "pin": pin,
        },
    )
    if status != "active":
        await holders_flow.change(db, None, holder.id, {"status": status})
    return holder.id


async def make_voucher(db: asyncpg.Connection, settings, holder_id: str, offer_id: str) -> str:
    """A voucher claimed for the holder (as at a service desk)."""
    from service.flows import vouchers as vouchers_flow

    voucher, _ = await vouchers_flow.claim(db, settings, holder_id, offer_id, issued_by="test")
    return voucher.id


async def _mint(db: asyncpg.Connection, settings, voucher_id: str):
    """A token and voucher code minted for the voucher, as the wallet would get them."""
    from service.db import vouchers as vouchers_db
    from service.flows import vouchers as vouchers_flow
    from service.flows.keyring import Keyring
    from service.sealing import make_sealer

    voucher = await vouchers_db.get_voucher(db, voucher_id)
    keyring = Keyring(settings.token_ttl, make_sealer(settings.secret_key, settings.data_dir))
    return await vouchers_flow.mint_token(db, keyring, settings, voucher)


async def token_for(db: asyncpg.Connection, settings, voucher_id: str) -> str:
    """A freshly minted token for the voucher, as its QR code would carry."""
    return (await _mint(db, settings, voucher_id)).token


async def code_for(db: asyncpg.Connection, settings, voucher_id: str) -> str:
    """A freshly minted voucher code (docs/product.md) for the voucher, as shown under its QR."""
    return (await _mint(db, settings, voucher_id)).code


class Till:
    """A partner with an active offer, a scanner key and a holder: ready to redeem."""

    def __init__(self, db: asyncpg.Connection, settings) -> None:
        self.db = db
        self.settings = settings

    async def open(self, *, offer: dict | None = None, holder: dict | None = None) -> Till:
        self.partner_id = await make_partner(self.db, name="老兵饭店", category="catering")
        self.scanner = bearer(await make_key(self.db, Role.SCANNER, self.partner_id))
        self.partner = bearer(await make_key(self.db, Role.PARTNER, self.partner_id))
        self.offer_id = await make_offer(self.db, self.partner_id, **(offer or {}))
        self.holder_id = await make_holder(self.db, **(holder or {}))
        self.voucher_id = await make_voucher(self.db, self.settings, self.holder_id, self.offer_id)
        self.token = await token_for(self.db, self.settings, self.voucher_id)
        return self

    async def new_voucher(self, **holder) -> tuple[str, str]:
        """Another holder's voucher for the same offer, and its token."""
        holder_id = await make_holder(self.db, **holder)
        voucher_id = await make_voucher(self.db, self.settings, holder_id, self.offer_id)
        return voucher_id, await token_for(self.db, self.settings, voucher_id)


async def record_redemption(
    db: asyncpg.Connection,
    settings,
    voucher_id: str,
    *,
    at,
    purchase_amount: int = 10_000,
    discount_amount: int = 1_000,
    offline_at=None,
    conflict: str | None = None,
) -> str:
    """A redemption written at instant `at` through the redeem's own two statements (the
    read, the write), without the rule checks: no Idempotency-Key. Made offline at
    `offline_at`, with `conflict`: recorded past any limit. Its id."""
    from service.db import redemptions as redemptions_db
    from service.domain.ids import new_id
    from service.domain.periods import local_date, period_starts
    from service.flows import keys as keys_flow

    async with db.transaction():  # (the write takes its locks in the caller's transaction)
        start = await redemptions_db.begin(
            db, voucher_id, "", new_id("key"), period_starts(at, settings.timezone), at
        )
        facts = start.voucher
        assert facts is not None
        scanner_key_id = await db.fetchval(
            "SELECT id FROM api_keys WHERE partner_id = $1 AND role = 'scanner' LIMIT 1",
            facts.partner_id,
        )
        if scanner_key_id is None:
            row, _ = await keys_flow.issue(
                db, role=Role.SCANNER, partner_id=facts.partner_id, label="till", actor=None
            )
            scanner_key_id = row.id
        written = await redemptions_db.write(
            db,
            redemptions_db.RedemptionWrite(
                redemption_id=new_id("redemption"),
                voucher=facts,
                scanner_key_id=scanner_key_id,
                purchase_amount=purchase_amount,
                discount_amount=discount_amount,
                payable_amount=purchase_amount - discount_amount,
                budget_cost=discount_amount,
                holder_period_start=None,
                reference="",
                now=at,
                local_day=local_date(at, settings.timezone),
                idempotency_key=None,
                request_hash=None,
                offline_at=offline_at,
                conflict=conflict,
            ),
        )
    assert written.redeemed is not None, "the voucher or offer refused the redemption"
    return written.redeemed.id


async def record_reversal(db: asyncpg.Connection, settings, redemption_id: str, *, at) -> str:
    """A reversal written at instant `at` through the ledger's own statement. Its id."""
    from service.db import redemptions as redemptions_db
    from service.domain.ids import new_id
    from service.domain.periods import local_date

    async with db.transaction():
        row = await redemptions_db.lock_for_reversal(db, redemption_id)
        reversal_id = new_id("reversal")
        written = await redemptions_db.reverse(
            db,
            reversal_id=reversal_id,
            redemption=row,
            reason="refund",
            actor=AdminKey(role=Role.ADMIN, key_id="test"),
            now=at,
            local_day=local_date(at, settings.timezone),
        )
    assert written is not None, "already reversed"
    return reversal_id


async def fold_all(db: asyncpg.Connection, at_most: int | None = None) -> int:
    """Every ledger row committed so far (or the next `at_most`) into the log and the
    report rollups, as the sequencer's rounds put them there (the app's own rounds may
    be doing it too: this waits for the sequencer's lock). The log's size."""
    from service.db import ledger as ledger_db
    from service.flows.ledger import BATCH, append_next

    await ledger_db.lock_sequencer(db)
    try:
        while True:
            batch = BATCH if at_most is None else at_most
            async with db.transaction():
                size = (await ledger_db.state(db)).size
                appended, size = await append_next(db, size, batch, await ledger_db.horizon(db))
            if not appended or at_most is not None:
                return size
    finally:
        await ledger_db.unlock_sequencer(db)


#: A password the policy accepts (long, not common), for arranging staff accounts.
STAFF_PASSWORD = "amber-walrus-quietly-juggles-47"


async def make_staff(
    db: asyncpg.Connection,
    role: str = "bureau_admin",
    partner_id: str | None = None,
    *,
    email: str | None = None,
    display_name: str = "测试职员",
    password: str = STAFF_PASSWORD,
):
    """A staff account (a StaffAccount) with `password` set."""
    import uuid

    from service.domain.auth import StaffRole
    from service.flows import staff as staff_flow

    return await staff_flow.ensure_account_with_password(
        db,
        email=email or f"{role}-{uuid.uuid4().hex[:8]}@bureau.example",
        role=StaffRole(role),
        display_name=display_name,
        partner_id=partner_id,
        password=password,
    )


async def staff_sign_in(client, email: str, password: str = STAFF_PASSWORD, **extra) -> dict:
    """Sign in and return the headers of that session: the cookie and the CSRF token.

    The client's cookie jar is emptied again, so other callers of the same client stay
    anonymous; send these headers explicitly."""
    response = await client.post(
        "/v1/staff-sessions", json={"email": email, "password": password, **extra}
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    secret = response.cookies["youdai_staff"].value
    client.session.cookie_jar.clear()
    return {"Cookie": f"youdai_staff={secret}", "X-CSRF-Token": body["csrf_token"]}
