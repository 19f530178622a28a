"""/join: the public application form for enterprises (docs/api.md), and its status page.

Rendered here, on the server, with no script: the form POSTs
application/x-www-form-urlencoded to /join, which loads it with the API's own schema and
flow (POST /v1/partner-applications), so the same rules refuse the same input with the
same messages, said in the visitor's language. The answer is always a page (200): the
form again with what to correct, or the thank-you page with the secret status link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from schemas.applications import ApplicationCreateSchema, JoinStatusQuerySchema
from service.api import applications as applications_api
from service.api.directory_page import PARTNER_CATEGORY_NAMES
from service.api.http import load, operation, read_query
from service.api.pages import (
    SECURITY_HEADERS,
    SERVER_RENDERED_POLICY,
    hashed_link,
    options_html,
    wants_english,
)
from service.app_keys import POOL, SETTINGS
from service.domain.errors import ApiError
from service.domain.language import CHINESE, ENGLISH
from service.domain.partners import CATEGORIES
from service.flows import applications as applications_flow

if TYPE_CHECKING:
    from service.domain.applications import Application

FORM = "application/x-www-form-urlencoded"

#: The pages' words, Chinese and English.
WORDS = {
    "title": ("申请成为合作单位", "Apply to become a partner"),
    "intro": (
        "欢迎为退役军人和其他优待对象提供优先服务或优惠的单位提交申请。"
        "退役军人事务局审核后与您联系。",
        "Businesses that would give veterans and other card holders priority service or a "
        "discount are welcome to apply. The bureau reviews each application and gets in "
        "touch with you.",
    ),
    "name": ("单位名称", "Name of the business"),
    "category": ("行业", "Kind of business"),
    "choose": ("请选择", "Choose one"),
    "contact_name": ("联系人", "Contact person"),
    "contact_phone": ("联系电话", "Contact phone"),
    "contact_email": ("联系邮箱", "Contact email"),
    "contact_hint": (
        "仅供事务局联系您，不会公开。通过后，账户设置链接将发往此邮箱。",
        "For the bureau only, never published. Once approved, the link to set up your "
        "account goes to this email.",
    ),
    "address": ("地址", "Address"),
    "region": ("街道", "Area"),
    "public_phone": ("对外电话（选填）", "Phone for customers (optional)"),
    "opening_hours": ("营业时间（选填）", "Opening hours (optional)"),
    "offer_idea": ("拟提供的优惠或服务", "What would you offer card holders?"),
    "offer_hint": (
        "例如：堂食九折，最多减50元。不超过1000字。",
        "For example: 10% off meals, at most ¥50 off. Up to 1000 characters.",
    ),
    "agree_to_terms": (
        "我同意事务局核实以上信息；申请通过后，单位名称、地址、对外电话和营业时间将在"
        "“哪里能用优待证”中公开。",
        "I agree that the bureau may check these details and, once approved, publish the "
        "business's name, address, public phone and opening hours in “Where to use your "
        "card”.",
    ),
    "send": ("提交申请", "Send the application"),
    "problems": ("请修改以下内容：", "Please correct the following:"),
    "other_language": ("English", "中文"),
    "directory": ("哪里能用优待证", "Where to use your card"),
    "thanks": ("申请已提交", "Application received"),
    "next": (
        "事务局将审核您的申请，必要时会致电联系人核实。申请通过后，单位会出现在"
        "“哪里能用优待证”中，联系邮箱会收到设置账户的链接，用于发布优惠和管理扫码设备。",
        "The bureau reviews your application and may call the contact person to check the "
        "details. Once it is approved, your business appears in “Where to use your card” "
        "and the contact email receives a link to set up the account you use to publish "
        "offers and manage your scanners.",
    ),
    "keep": (
        "请保存下面的链接：它随时显示申请的进度，未通过时显示原因。链接仅显示这一次，"
        "请勿转给他人。",
        "Keep the link below: it shows where your application stands and, if it is turned "
        "down, why. It is shown only this once; do not share it.",
    ),
    "status_title": ("申请进度", "Application status"),
    "submitted_on": ("提交时间", "Sent"),
    "reason": ("原因", "Reason"),
    "submitted": ("审核中", "Being reviewed"),
    "approved": ("已通过", "Approved"),
    "rejected": ("未通过", "Not approved"),
    "submitted_more": ("事务局正在审核您的申请。", "The bureau is reviewing your application."),
    "approved_more": (
        "欢迎加入！联系邮箱会收到设置账户的链接。",
        "Welcome! The contact email receives the link to set up your account.",
    ),
    "rejected_more": ("很抱歉，申请未通过。", "We are sorry: the application was not approved."),
}

#: The form's fields in the order shown: (name, input type, maxlength).
FIELDS: tuple[tuple[str, str, int], ...] = (
    ("name", "text", 200),
    ("category", "select", 0),
    ("contact_name", "text", 100),
    ("contact_phone", "tel", 40),
    ("contact_email", "email", 254),
    ("address", "text", 300),
    ("region", "text", 100),
    ("public_phone", "tel", 40),
    ("opening_hours", "text", 100),
    ("offer_idea", "textarea", 1000),
)
OPTIONAL = frozenset({"public_phone", "opening_hours"})

HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": SERVER_RENDERED_POLICY,
    # The thank-you and status pages hold the secret link: kept by no cache, no index.
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Vary": "Accept-Language",
}

_create = ApplicationCreateSchema()
_status_query = JoinStatusQuerySchema()


def _word(key: str, english: bool) -> str:
    return WORDS[key][english]


def _page(title: str, body: str, english: bool, other_language_href: str) -> str:
    return f"""<!doctype html>
<html lang="{"en" if english else "zh-CN"}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{hashed_link("join.css")}">
</head>
<body>
<header><h1>{escape(title)}</h1>
<nav><a href="{escape(other_language_href)}" lang="{"zh-CN" if english else "en"}">\
{_word("other_language", english)}</a>
<a href="/directory{"?lang=en" if english else ""}">{_word("directory", english)}</a></nav>
</header>
<main>
{body}
</main>
</body>
</html>
"""


def _field(
    name: str,
    kind: str,
    maxlength: int,
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
    regions: Sequence[str],
    english: bool,
) -> str:
    lang = 1 if english else 0
    value = values.get(name, "")
    problems = errors.get(name, [])
    invalid = ' aria-invalid="true"' if problems else ""
    described = f' aria-describedby="{name}-error"' if problems else ""
    required = "" if name in OPTIONAL else " required"
    if kind == "select" or (name == "region" and regions):
        choices = (
            {c: PARTNER_CATEGORY_NAMES[c][lang] for c in CATEGORIES}
            if name == "category"
            else {r: r for r in regions}
        )
        options = options_html(choices, value, _word("choose", english))
        control = (
            f'<select id="{name}" name="{name}"{required}{invalid}{described}>{options}</select>'
        )
    elif kind == "textarea":
        control = (
            f'<textarea id="{name}" name="{name}" maxlength="{maxlength}"{required}{invalid}'
            f"{described}>{escape(value)}</textarea>"
        )
    else:
        control = (
            f'<input id="{name}" name="{name}" type="{kind}" maxlength="{maxlength}" '
            f'value="{escape(value)}"{required}{invalid}{described}>'
        )
    hint = {"contact_email": "contact_hint", "offer_idea": "offer_hint"}.get(name)
    hint_html = f'<p class="hint">{_word(hint, english)}</p>' if hint else ""
    error_html = (
        f'<p class="error" id="{name}-error">{escape(" ".join(problems))}</p>' if problems else ""
    )
    return f'<label for="{name}">{_word(name, english)}</label>{hint_html}{control}{error_html}'


def render_form(
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
    general: Sequence[str],
    regions: Sequence[str],
    english: bool,
) -> str:
    """The application form, with `values` filled in and each field's problems beside it;
    `general`, the problems of no one field (a duplicate, too many applications)."""
    summary = ""
    in_order = [name for name, _, _ in FIELDS] + ["agree_to_terms"]
    listed = [*general, *(m for name in in_order for m in errors.get(name, []))]
    listed += [m for name, messages in errors.items() for m in messages if name not in _NAMES]
    if listed:
        items = "".join(f"<li>{escape(message)}</li>" for message in listed)
        summary = (
            f'<div class="problems" role="alert"><p>{_word("problems", english)}</p>'
            f"<ul>{items}</ul></div>"
        )
    fields_html = "\n".join(
        _field(name, kind, maxlength, values, errors, regions, english)
        for name, kind, maxlength in FIELDS
    )
    agreed = " checked" if values.get("agree_to_terms") else ""
    agree_error = errors.get("agree_to_terms", [])
    agree_error_html = (
        f'<p class="error" id="agree_to_terms-error">{escape(" ".join(agree_error))}</p>'
        if agree_error
        else ""
    )
    language = '<input type="hidden" name="lang" value="en">' if english else ""
    body = f"""<p>{_word("intro", english)}</p>
{summary}<form method="post" action="/join">{language}
{fields_html}
<label class="agree"><input type="checkbox" name="agree_to_terms" value="true" \
required{agreed}> {_word("agree_to_terms", english)}</label>{agree_error_html}
<button type="submit">{_word("send", english)}</button>
</form>"""
    return _page(_word("title", english), body, english, "/join" if english else "/join?lang=en")


def render_thanks(status_url: str, english: bool) -> str:
    body = f"""<div class="card">
<p>{_word("next", english)}</p>
<p>{_word("keep", english)}</p>
<p class="link"><a href="{escape(status_url)}">{escape(status_url)}</a></p>
</div>"""
    return _page(_word("thanks", english), body, english, "/join" if english else "/join?lang=en")


def render_status(application: Application, token: str, english: bool) -> str:
    reason = (
        f"<dt>{_word('reason', english)}</dt><dd>{escape(application.rejection_reason)}</dd>"
        if application.status == "rejected" and application.rejection_reason
        else ""
    )
    body = f"""<div class="card">
<h2>{escape(application.name)}</h2>
<p class="status">{_word(application.status, english)}</p>
<p>{_word(application.status + "_more", english)}</p>
<dl><dt>{_word("submitted_on", english)}</dt>\
<dd>{application.created_at.date().isoformat()}</dd>{reason}</dl>
</div>"""
    other = "/join/status?" + urlencode(
        {"token": token} if english else {"token": token, "lang": "en"}
    )
    return _page(_word("status_title", english), body, english, other)


_NAMES = frozenset(name for name, _, _ in FIELDS) | {"agree_to_terms"}
_HTML = {200: {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers=HEADERS)


@operation(
    "The application form for enterprises (works without scripts)",
    tags=["partner applications"],
    responses=_HTML,
)
async def join_page(request: web.Request) -> web.Response:
    """`lang=en` for English (else Accept-Language)."""
    english = wants_english(request, request.query.get("lang"))
    return _html(render_form({}, {}, [], request.app[SETTINGS].regions, english))


#: The form body as OpenAPI states it: each field as text (the page checks them and
#: answers the form again with what to correct).
FORM_BODY = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in (*_NAMES, "lang")},
}


@operation(
    "Send the application form (application/x-www-form-urlencoded)",
    tags=["partner applications"],
    body=FORM_BODY,
    body_content_type=FORM,
    responses=_HTML,
)
async def join_submit(request: web.Request) -> web.Response:
    """The fields of POST /v1/partner-applications, `agree_to_terms` a checkbox. The
    answer is a page: the form again with each problem said as the API says it (in the
    visitor's language), or the thank-you page with the status link."""
    values = _form_values(await request.read())
    english = wants_english(request, values.get("lang") or request.query.get("lang"))
    regions = request.app[SETTINGS].regions
    data: dict[str, Any] = {name: values[name] for name, _, _ in FIELDS if name in values}
    data["agree_to_terms"] = "agree_to_terms" in values
    try:
        submitted = await applications_api.submit(request, load(_create, data))
    except ApiError as error:
        problem = error.problem(ENGLISH if english else CHINESE)
        errors: dict[str, list[str]] = {}
        for entry in problem.get("errors", []):
            errors.setdefault(entry["field"], []).append(entry["message"])
        general = [] if errors else [problem["detail"]]
        return _html(render_form(values, errors, general, regions, english))
    url = applications_api.status_url(request, submitted.status_token)
    return _html(render_thanks(url, english))


def _form_values(raw: bytes) -> dict[str, str]:
    """The form's fields (the first of each name), or none when it is not UTF-8 text."""
    try:
        pairs = parse_qsl(
            raw.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=100,
        )
    except (UnicodeError, ValueError):
        return {}
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


@operation(
    "An application's status, for its applicant (the secret link of its status_url)",
    tags=["partner applications"],
    query=JoinStatusQuerySchema,
    responses=_HTML,
    problems=["not_found"],
)
async def join_status(request: web.Request) -> web.Response:
    """`token` from the status link; `lang=en` for English (else Accept-Language)."""
    query = read_query(request, _status_query)
    application = await applications_flow.by_status_token(request.app[POOL], query["token"])
    english = wants_english(request, query.get("lang"))
    return _html(render_status(application, query["token"], english))
