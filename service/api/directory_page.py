"""/directory: where holders can use their card, as a page for anyone (docs/api.md).

Rendered here, on the server, from the same flow as GET /v1/directory: the HTML holds
the partners, so the page works with scripts turned off and on old phones, and its one
style sheet is small. Search and filters are a plain GET form; the language (`lang`)
and large-text mode (`large`) are links. Phone first: one column, tap-to-call numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from schemas.directory import DirectoryQuerySchema
from service.api.http import load, operation, page_request
from service.api.pages import (
    SECURITY_HEADERS,
    SERVER_RENDERED_POLICY,
    hashed_link,
    options_html,
    wants_english,
)
from service.app_keys import CLOCK, POOL, SETTINGS
from service.domain.categories import HOLDER_CATEGORIES
from service.domain.partners import CATEGORIES
from service.domain.terms import CATEGORY_NAMES
from service.flows import directory as directory_flow
from service.flows.directory import DirectoryEntry

#: The page's words, Chinese and English.
WORDS = {
    "title": ("哪里能用优待证", "Where to use your card"),
    "intro": (
        "以下合作单位为优待证持证人提供优先服务和优惠。到店出示优待券二维码即可。",
        "These partners give card holders priority service and discounts. "
        "Show your voucher's QR code there.",
    ),
    "search": ("搜索名称或优惠", "Search names or offers"),
    "category": ("行业", "Kind of place"),
    "region": ("街道", "Area"),
    "holder": ("我的类别", "I am"),
    "any": ("全部", "Any"),
    "find": ("查找", "Find"),
    "call": ("电话", "Phone"),
    "hours": ("营业时间", "Opening hours"),
    "address": ("地址", "Address"),
    "through": ("有效期至", "Valid through"),
    "none": ("没有找到合作单位。", "No partner found."),
    "more": ("下一页", "Next page"),
    "other_language": ("English", "中文"),
    "large": ("大字", "Large text"),
    "normal": ("标准字号", "Normal text"),
    "wallet": ("我的优待券", "My vouchers"),
    "join": ("申请成为合作单位", "Apply to become a partner"),
}
PARTNER_CATEGORY_NAMES = {
    "postal": ("邮政", "Postal services"),
    "culture_tourism": ("文化旅游", "Culture and tourism"),
    "catering": ("餐饮", "Restaurants"),
    "retail": ("商店", "Shops"),
    "health": ("医疗健康", "Health"),
    "transport": ("交通出行", "Transport"),
    "other": ("其他", "Other"),
}


def _word(key: str, english: bool) -> str:
    return WORDS[key][english]


def _options(name: str, values: Mapping[str, str], chosen: str | None, english: bool) -> str:
    options = options_html(values, chosen, _word("any", english))
    return f'<select id="{name}" name="{name}">{options}</select>'


def _query(params: Mapping[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "", False)})


def _entry(entry: DirectoryEntry, english: bool) -> str:
    lang = 1 if english else 0
    facts = []
    if entry.address:
        facts.append(f"<dt>{_word('address', english)}</dt><dd>{escape(entry.address)}</dd>")
    if entry.public_phone:
        number = "".join(ch for ch in entry.public_phone if ch.isdigit() or ch == "+")
        facts.append(
            f"<dt>{_word('call', english)}</dt>"
            f'<dd><a class="call" href="tel:{escape(number)}">{escape(entry.public_phone)}</a></dd>'
        )
    if entry.opening_hours:
        facts.append(f"<dt>{_word('hours', english)}</dt><dd>{escape(entry.opening_hours)}</dd>")
    offers = []
    for offer in entry.offers:
        # The terms say who may use it (domain/terms): no second line says it again.
        through = (
            f"<p>{_word('through', english)} {offer.valid_through.isoformat()}</p>"
            if offer.valid_through
            else ""
        )
        terms = offer.terms.en if english else offer.terms.zh
        offers.append(f"<li><h3>{escape(offer.title)}</h3><p>{escape(terms)}</p>{through}</li>")
    area = " · ".join(
        escape(part)
        for part in (PARTNER_CATEGORY_NAMES[entry.category][lang], entry.region)
        if part
    )
    return (
        f'<li class="partner"><h2>{escape(entry.name)}</h2><p class="area">{area}</p>'
        f'<dl>{"".join(facts)}</dl><ul class="offers">{"".join(offers)}</ul></li>'
    )


def _search_form(params: Mapping[str, Any], regions: tuple[str, ...], english: bool) -> str:
    """The search and filters: a plain GET form, so it works with scripts off."""
    lang = 1 if english else 0
    categories = {c: PARTNER_CATEGORY_NAMES[c][lang] for c in CATEGORIES}
    holders = {c: CATEGORY_NAMES[c][lang] for c in HOLDER_CATEGORIES}
    region = (
        _options("region", {r: r for r in regions}, params.get("region"), english)
        if regions
        else f'<input id="region" name="region" maxlength="100" '
        f'value="{escape(params.get("region") or "")}">'
    )
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(str(value))}">'
        for name, value in (("lang", params.get("lang")), ("large", params.get("large")))
        if value
    )
    return f"""<form method="get" action="/directory" role="search">{hidden}
<label for="q">{_word("search", english)}</label>
<input id="q" name="q" type="search" maxlength="100" value="{escape(params.get("q") or "")}">
<label for="category">{_word("category", english)}</label>
{_options("category", categories, params.get("category"), english)}
<label for="region">{_word("region", english)}</label>
{region}
<label for="holder_category">{_word("holder", english)}</label>
{_options("holder_category", holders, params.get("holder_category"), english)}
<button type="submit">{_word("find", english)}</button>
</form>"""


def _links(params: Mapping[str, Any], english: bool, large: bool) -> str:
    """The other language, text size, the wallet and the application form."""
    other = escape(_query(params, lang=None if english else "en", cursor=None))
    return f"""<nav><a href="{other}" \
lang="{"zh-CN" if english else "en"}">{_word("other_language", english)}</a>
<a href="{escape(_query(params, large=None if large else "1", cursor=None))}">\
{_word("normal" if large else "large", english)}</a>
<a href="/wallet">{_word("wallet", english)}</a>
<a href="/join{"?lang=en" if english else ""}">{_word("join", english)}</a></nav>"""


def render(
    entries: list[DirectoryEntry],
    next_cursor: str | None,
    params: Mapping[str, Any],
    regions: tuple[str, ...],
    english: bool,
    large: bool,
) -> str:
    items = "".join(_entry(entry, english) for entry in entries)
    listing = f'<ul class="partners">{items}</ul>' if items else f"<p>{_word('none', english)}</p>"
    more = (
        f'<p><a class="more" href="{escape(_query(params, cursor=next_cursor))}">'
        f"{_word('more', english)}</a></p>"
        if next_cursor
        else ""
    )
    return f"""<!doctype html>
<html lang="{"en" if english else "zh-CN"}"{' class="large"' if large else ""}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_word("title", english)}</title>
<link rel="stylesheet" href="{hashed_link("directory.css")}">
</head>
<body>
<header><h1>{_word("title", english)}</h1>
{_links(params, english, large)}</header>
<main>
<p>{_word("intro", english)}</p>
{_search_form(params, regions, english)}
{listing}
{more}
</main>
</body>
</html>
"""


#: The page shows more partners at once than the API's default page.
PAGE_SIZE = 100


@operation(
    "Where holders can use their card: the directory as a page (works without scripts)",
    tags=["directory"],
    responses={
        200: {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
    },
)
async def directory_page(request: web.Request) -> web.Response:
    """`q`, `category`, `region`, `holder_category` filter as in GET /v1/directory; `lang=en`
    for English (else Accept-Language), `large=1` for large text, `cursor` for the next
    page."""
    params = {key: request.query.get(key) for key in _FILTERS}
    query = load(_QUERY, {key: value for key, value in params.items() if value})
    settings = request.app[SETTINGS]
    english = wants_english(request, request.query.get("lang"))
    large = request.query.get("large") == "1"
    page = await directory_flow.directory(
        request.app[POOL],
        page_request({**query, "limit": PAGE_SIZE}),
        query,
        request.app[CLOCK](),
        settings.timezone,
    )
    shown = {**params, "lang": request.query.get("lang"), "large": "1" if large else None}
    html = render(page.items, page.next_cursor, shown, settings.regions, english, large)
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={
            **SECURITY_HEADERS,
            "Content-Security-Policy": SERVER_RENDERED_POLICY,
            "Cache-Control": "public, max-age=60",
            "Vary": "Accept-Language",
        },
    )


_QUERY = DirectoryQuerySchema()
_FILTERS = ("q", "category", "region", "holder_category", "cursor")
