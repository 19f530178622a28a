"""What a problem says in Chinese (docs/api.md): each code's title, marshmallow's messages by
their key, and `localize`, which the problem rendering calls for every text it shows.

English is the text itself everywhere (`ApiError`, `FieldError`); Chinese comes from a
`Said` (text the service writes carries it), a `Keyed` (marshmallow's messages, looked up
here by key) or, for text that has neither, the problem's Chinese title (a detail) or
FIELD_FALLBACK (a field's message): a Chinese caller never reads English.
"""

from __future__ import annotations

from typing import Any

from service.domain.language import CHINESE, Keyed, Said

#: code -> its title in Chinese (the English titles are in service.domain.errors.CODES).
TITLES_ZH: dict[str, str] = {
    "validation_error": "请求无效",
    "below_min_purchase": "消费金额低于优惠的最低消费",
    "token_invalid": "优待券令牌无效",
    "token_expired": "优待券令牌已过期",
    "token_not_yet_valid": "优待券令牌尚未生效",
    "idempotency_key_reused": "此 Idempotency-Key 已用于另一个请求",
    "bad_request": "请求有误",
    "unauthenticated": "需要身份验证",
    "totp_required": "需要第二因素验证码",
    "forbidden": "此调用方无权执行该操作",
    "csrf_failed": "CSRF 令牌缺失或错误",
    "wrong_partner": "此优待券属于其他合作商户",
    "not_found": "未找到",
    "method_not_allowed": "不支持此请求方法",
    "payload_too_large": "请求体过大",
    "unsupported_media_type": "不支持的媒体类型",
    "not_acceptable": "没有可接受的表示形式",
    "voucher_used_up": "优待券已无剩余使用次数",
    "voucher_expired": "优待券已过期",
    "voucher_revoked": "优待券已被撤销",
    "holder_ineligible": "持证人不符合此优惠的条件",
    "holder_inactive": "持证人状态不可用",
    "offer_inactive": "优惠未生效",
    "partner_inactive": "合作商户未生效",
    "offer_exhausted": "优惠已无剩余核销次数",
    "budget_exhausted": "优惠预算已用完",
    "holder_limit_reached": "持证人已达到此优惠的使用上限",
    "already_reversed": "此核销已被冲正",
    "reversal_window_closed": "此核销时间过久，无法冲正",
    "idempotency_key_in_use": "使用此 Idempotency-Key 的请求仍在处理中",
    "conflict": "冲突",
    "too_many_attempts": "尝试次数过多",
    "internal_error": "内部错误",
    "database_unavailable": "数据库不可用",
    "not_ready": "服务尚未就绪",
}

#: marshmallow's messages in Chinese, by the key `Keyed` gives them: "<class>.<key>" of a
#: field's error_messages (the class that defines the key), "Schema.<key>" of a schema's,
#: "<validator class>.<attribute>" of a validator's message. Values are formatted with
#: the same names marshmallow formats the English with.
FIELD_MESSAGES_ZH: dict[str, str] = {
    "Field.required": "缺少必填字段。",
    "Field.null": "此字段不能为 null。",
    "Field.validator_failed": "值无效。",
    "Schema.unknown": "未知字段。",
    "Schema.type": "输入类型无效。",
    "Nested.type": "类型无效。",
    "String.invalid": "不是有效的字符串。",
    "String.invalid_utf8": "不是有效的 UTF-8 字符串。",
    "Number.invalid": "不是有效的数字。",
    "Number.too_large": "数字过大。",
    "Integer.invalid": "不是有效的整数。",
    "Float.special": "不允许特殊数值（nan 或 infinity）。",
    "Decimal.special": "不允许特殊数值（nan 或 infinity）。",
    "Boolean.invalid": "不是有效的布尔值。",
    "List.invalid": "不是有效的列表。",
    "Tuple.invalid": "不是有效的元组。",
    "Mapping.invalid": "不是有效的映射。",
    "Email.invalid": "不是有效的电子邮件地址。",
    "URL.invalid": "不是有效的 URL。",
    "UUID.invalid_uuid": "不是有效的 UUID。",
    "Enum.unknown": "必须是以下之一：{choices}。",
    "_TemporalField.invalid": "不是有效的日期或时间。",
    "_TemporalField.invalid_awareness": "不是有效的日期或时间（时区不符）。",
    "_TemporalField.format": "无法格式化为日期或时间。",
    "Date.invalid": "不是有效的日期。",
    "Date.format": "无法格式化为日期。",
    "TimeDelta.invalid": "不是有效的时间段。",
    "Length.message_min": "长度不能少于 {min}。",
    "Length.message_max": "长度不能超过 {max}。",
    "Length.message_all": "长度必须在 {min} 到 {max} 之间。",
    "Length.message_equal": "长度必须为 {equal}。",
    "Range.message_min": "必须{min_op} {min}。",
    "Range.message_max": "必须{max_op} {max}。",
    "Range.message_all": "必须{min_op} {min} 且{max_op} {max}。",
    "OneOf.error": "必须是以下之一：{choices}。",
    "NoneOf.error": "无效的值。",
    "ContainsOnly.error": "包含不允许的值。",
    "ContainsNoneOf.error": "包含不允许的值。",
    "Equal.error": "必须等于 {other}。",
    "Regexp.error": "格式不符合要求。",
    "Email.error": "不是有效的电子邮件地址。",
    "URL.error": "不是有效的 URL。",
    "Predicate.error": "值无效。",
}

#: Range's comparisons, as its `min_op`/`max_op` (which Keyed keeps beside the message).
_COMPARISONS_ZH = {
    "gte": "大于或等于",
    "gt": "大于",
    "lte": "小于或等于",
    "lt": "小于",
}

#: A field's message that has no Chinese of its own (a rare text of a third party's).
FIELD_FALLBACK_ZH = "值无效。"


def _zh_params(params: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _COMPARISONS_ZH.get(value, value) if name in ("min_op", "max_op") else value
        for name, value in params.items()
    }


def localize(text: str, language: str) -> str | None:
    """`text` in `language`: itself in English; in Chinese its own Chinese, or None when
    it has none (the caller then says something Chinese of its own)."""
    if language != CHINESE:
        return str(text)
    if isinstance(text, Said):
        return text.zh
    if isinstance(text, Keyed):
        template = FIELD_MESSAGES_ZH.get(text.key)
        if template is not None:
            try:
                return template.format(**_zh_params(text.params))
            except (KeyError, IndexError, ValueError):
                return None
    return None


def field_message(text: str, language: str) -> str:
    """A field's message in `language`, never English to a Chinese caller."""
    return localize(text, language) or FIELD_FALLBACK_ZH


def title(code: str, english: str, language: str) -> str:
    return TITLES_ZH.get(code, english) if language == CHINESE else english
