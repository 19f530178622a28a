"""Demo data for `youdai serve --demo`: a small programme to click and curl through.

Loaded once: the partners, offers and holders are written in one transaction together
with an audit event `demo.load` that marks them as loaded; a later run finds the
marker and writes only two fresh keys (keys are shown once, so every run prints keys
that work; the keys printed before keep working). An advisory lock makes two runs at
the same moment take turns.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from service.config import Settings
from service.domain.auth import Role, StaffRole
from service.flows import audit as audit_flow
from service.flows import holders as holders_flow
from service.flows import keys as keys_flow
from service.flows import offers as offers_flow
from service.flows import partners as partners_flow
from service.flows.database import connected, take_turns

#: The help number the wallet shows in a demo when YOUDAI_HELP_PHONE is unset (docs/pages.md:
#: the wallet says whom to call, also when a card locks), so the demo shows what holders
#: see. A made-up number in the demo partners' range, never a real hotline.
DEMO_HELP_PHONE = "010-6400-0000"


def demo_settings(settings: Settings) -> Settings:
    """The settings `serve --demo` runs with: a configured help number stays."""
    if settings.help_phone:
        return settings
    return settings.with_overrides(help_phone=DEMO_HELP_PHONE)


#: pg_advisory_xact_lock key of the demo loader ("youdai" "demo").
_LOCK = 0x796F_6461_6964_656D & 0x7FFF_FFFF_FFFF_FFFF
_MARKER = ("demo.load", "demo", "demo")

#: The partner whose scanner key is printed (the first one below).
SCANNER_PARTNER = "区邮政分公司"

PARTNERS: list[dict[str, Any]] = [
    {
        "name": "区邮政分公司",
        "category": "postal",
        "contact_name": "刘敏",
        "contact_phone": "010-6401-2301",
        "address": "和平路 18 号",
        "region": "东城街道",
        "public_phone": "010-6401-2300",
        "opening_hours": "周一至周日 8:30–18:00",
        "offers": [
            {
                "title": "邮政寄递九折",
                "description": "寄递业务九折，每单最多优惠 50 元",
                "kind": "percent_off",
                "percent_bp": 1000,
                "max_discount": 5000,
                "min_purchase": 1000,
                "uses_per_voucher": 2,
                "holder_limit_count": 4,
                "holder_limit_period": "month",
                "total_redemptions": 1000,
                "budget": 5_000_000,
                "voucher_valid_days": 30,
            },
            {
                "title": "优先窗口办理",
                "description": "营业厅设优待证专窗，免排队",
                "kind": "service",
                "nominal_value": 500,
                "uses_per_voucher": 10,
                "voucher_valid_days": 90,
            },
        ],
    },
    {
        "name": "红色文旅云平台",
        "category": "culture_tourism",
        "contact_name": "周婷",
        "contact_phone": "010-6402-8800",
        "address": "文化街 6 号",
        "region": "西城街道",
        "public_phone": "400-810-2026",
        "opening_hours": "线上全天；线下周二至周日 9:00–17:00",
        "offers": [
            {
                "title": "景区门票立减 20 元",
                "kind": "amount_off",
                "amount_off": 2000,
                "min_purchase": 5000,
                "holder_limit_count": 4,
                "holder_limit_period": "year",
                "budget": 2_000_000,
                "voucher_valid_days": 60,
            },
        ],
    },
    {
        "name": "鸿福楼酒家",
        "category": "catering",
        "contact_name": "赵志强",
        "contact_phone": "010-6403-5566",
        "address": "胜利大街 102 号",
        "region": "东城街道",
        "public_phone": "010-6403-5500",
        "opening_hours": "每日 10:30–21:30",
        "offers": [
            {
                "title": "拥军套餐 38 元",
                "description": "两菜一汤，原价 68 元",
                "kind": "fixed_price",
                "fixed_price": 3800,
                "min_purchase": 6800,
                "holder_limit_count": 1,
                "holder_limit_period": "day",
                "total_redemptions": 500,
                "voucher_valid_days": 30,
            },
        ],
    },
    {
        "name": "老兵饭店",
        "category": "catering",
        "contact_name": "孙立军",
        "contact_phone": "010-6403-7710",
        "address": "建设路 45 号",
        "region": "南苑街道",
        "public_phone": "010-6403-7700",
        "opening_hours": "每日 11:00–14:00，17:00–21:00",
        "offers": [
            {
                "title": "堂食八五折",
                "kind": "percent_off",
                "percent_bp": 1500,
                "max_discount": 3000,
                "holder_limit_count": 2,
                "holder_limit_period": "week",
                "budget": 1_000_000,
                "voucher_valid_days": 30,
            },
        ],
    },
    {
        "name": "兴隆面馆",
        "category": "catering",
        "contact_name": "钱永红",
        "contact_phone": "010-6403-9021",
        "address": "东关街 7 号",
        "region": "东城街道",
        "public_phone": "010-6403-9000",
        "opening_hours": "每日 6:30–20:00",
        "offers": [
            {
                "title": "满 100 减 10",
                "kind": "amount_off",
                "amount_off": 1000,
                "min_purchase": 10000,
                "voucher_valid_days": 30,
            },
        ],
    },
    {
        "name": "康宁门诊部",
        "category": "health",
        "contact_name": "吴医生",
        "contact_phone": "010-6404-1200",
        "address": "健康路 3 号",
        "region": "北苑街道",
        "public_phone": "010-6404-1201",
        "opening_hours": "周一至周六 8:00–17:00",
        "offers": [
            {
                "title": "优先就诊",
                "description": "挂号、就诊、取药优先",
                "kind": "service",
                "nominal_value": 1000,
                "eligible_categories": ["veteran", "disabled_veteran"],
                "uses_per_voucher": 5,
                "voucher_valid_days": 180,
            },
            {
                "title": "体检套餐八折",
                "kind": "percent_off",
                "percent_bp": 2000,
                "min_purchase": 20000,
                "holder_limit_count": 1,
                "holder_limit_period": "year",
                "total_redemptions": 200,
                "voucher_valid_days": 60,
            },
        ],
    },
]

#: The first holder's card and PIN are printed.
HOLDERS: list[dict[str, str]] = [
    {"card_number": "YD-DEMO-0001", "category": "veteran", "display_name": "王建国",
     "region": "东城街道", "pin": "204816"},
    {"card_number": "YD-DEMO-0002", "category": "disabled_veteran", "display_name": "李卫东",
     "region": "西城街道", "pin": "318204"},
    {"card_number": "YD-DEMO-0003", "category": "martyr_family", "display_name": "张秀英",
     "region": "东城街道", "pin": "551902"},
    {"card_number": "YD-DEMO-0004", "category": "military_family", "display_name": "陈晓燕",
     "region": "南关街道", "pin": "760413"},
    {"card_number": "YD-DEMO-0005", "category": "other", "display_name": "黄桂兰",
     "region": "北苑街道", "pin": "839027"},
]  # fmt: skip


async def load_demo(settings: Settings, dsn: str) -> str:
    """Load the demo data unless it is there, issue an admin and a scanner key, and
    return the text to print: the keys, a card number and PIN, and the URLs."""
    async with connected(dsn) as conn, conn.transaction():
        await take_turns(conn, _LOCK)
        scanner_partner = await _loaded_scanner_partner(conn)
        loaded_now = scanner_partner is None
        if scanner_partner is None:
            scanner_partner = await _load(conn, settings)
        _, admin_key = await keys_flow.issue(
            conn, role=Role.ADMIN, partner_id=None, label="demo admin", actor=None
        )
        _, scanner_key = await keys_flow.issue(
            conn, role=Role.SCANNER, partner_id=scanner_partner, label="demo till", actor=None
        )
        staff_lines = await _demo_staff(conn, scanner_partner)
    head, _, rest = _printout(
        settings, loaded_now, admin_key, scanner_key, scanner_partner
    ).partition("\n")
    return "\n".join([head, *staff_lines, rest])


#: The demo's people (docs/running.md, docs/staff.md): the bureau's admin and the post
#: office's manager.
DEMO_STAFF = (
    ("admin@demo.youdai.example", StaffRole.BUREAU_ADMIN, "演示管理员"),
    ("manager@demo.youdai.example", StaffRole.PARTNER_MANAGER, "邮政演示经理"),
)


async def _demo_staff(conn: asyncpg.Connection, post_office: str) -> list[str]:
    """Make (or find) the demo's staff accounts and give each a fresh password."""
    from service.flows import staff as staff_flow

    lines = ["  console staff (new passwords at every start; sign in at /console):"]
    for email, role, name in DEMO_STAFF:
        password = "demo-" + secrets.token_urlsafe(12)
        await staff_flow.ensure_account_with_password(
            conn,
            email=email,
            role=role,
            display_name=name,
            partner_id=post_office if role is StaffRole.PARTNER_MANAGER else None,
            password=password,
        )
        lines.append(f"    {role:<16} {email}   password {password}")
    return lines


async def _loaded_scanner_partner(conn: asyncpg.Connection) -> str | None:
    """The scanner partner's id recorded by an earlier load, or None if none was made."""
    return await audit_flow.marked_value(conn, _MARKER, "scanner_partner_id")


async def _load(conn: asyncpg.Connection, settings: Settings) -> str:
    """Write every demo row (inside the caller's transaction); the scanner partner's id."""
    now = datetime.now(UTC)
    today = now.astimezone(settings.timezone).date()
    # Open from the first of this month (local) for a year: redeemable at once, and a
    # month of history for the report's month grouping.
    starts_at = datetime(today.year, today.month, 1, tzinfo=settings.timezone)
    ends_at = starts_at.replace(year=starts_at.year + 1)
    partner_ids: dict[str, str] = {}
    offer_ids: list[str] = []
    for partner in PARTNERS:
        fields = {name: value for name, value in partner.items() if name != "offers"}
        row = await partners_flow.enrol(conn, None, fields)
        await partners_flow.change(conn, None, row.id, {"status": "active"})
        partner_ids[partner["name"]] = row.id
        for offer in partner["offers"]:
            values = {
                "partner_id": row.id,
                "starts_at": starts_at,
                "ends_at": ends_at,
                **offer,
            }
            created = await offers_flow.create(conn, None, values)
            await offers_flow.change(conn, None, created.id, {"status": "active"})
            offer_ids.append(created.id)
    valid_until = date(today.year + 5, 12, 31)
    for holder in HOLDERS:
        await holders_flow.enrol(conn, None, {**holder, "valid_until": valid_until})
    scanner_partner = partner_ids[SCANNER_PARTNER]
    await audit_flow.mark(
        conn,
        _MARKER,
        {
            "scanner_partner_id": [None, scanner_partner],
            "partners": [None, list(partner_ids.values())],
            "offers": [None, offer_ids],
            "holders": [None, [holder["card_number"] for holder in HOLDERS]],
        },
    )
    return scanner_partner


def base_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the service."""
    return settings.own_address()


def _printout(
    settings: Settings, loaded_now: bool, admin_key: str, scanner_key: str, scanner_partner: str
) -> str:
    holder = HOLDERS[0]
    offers = sum(len(partner["offers"]) for partner in PARTNERS)
    url = base_url(settings)
    help_phone = settings.help_phone or "none (set YOUDAI_HELP_PHONE)"
    if settings.help_phone == DEMO_HELP_PHONE:
        help_phone += "   (a demo number: set YOUDAI_HELP_PHONE)"
    if loaded_now:
        head = (
            f"Demo data loaded: {len(PARTNERS)} partners, {offers} offers, "
            f"{len(HOLDERS)} card holders."
        )
    else:
        head = "Demo data was already loaded; fresh keys issued (earlier ones still work)."
    return "\n".join(
        [
            head,
            f"  admin key     {admin_key}",
            f"  scanner key   {scanner_key}   ({SCANNER_PARTNER}, partner {scanner_partner})",
            f"  holder card   {holder['card_number']}   PIN {holder['pin']}"
            f"   ({holder['category']})",
            f"  API docs      {url}/docs",
            f"  scanner page  {url}/scan",
            f"  wallet page   {url}/wallet",
            f"  help phone    {help_phone}",
            "Keys are shown only once: keep them.",
        ]
    )
