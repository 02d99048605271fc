"""The words of customer notices, in zh-CN and English, as data: a wording change is one line.

`render(kind, locale, **fields)` fills a notice with fields already written for that locale
(`yuan`, `moment`, `day`, `phrase` write them). A kind, locale or field that the template
does not know, or a field it needs and did not get, is a programming error and raises.

Length: an SMS in Chinese is UCS-2, 70 characters a segment; one in plain ASCII is GSM-7, 160.
Every Chinese notice below fits one segment for typical values (an amount below ¥100 million,
a payee name of up to 4 characters shown masked, a catalogue reason of up to 20 characters).
Where it cannot: a memo is cut to fit (`fit`); a long failure reason (LIMIT_EXCEEDED with its
amounts, say) takes two segments rather than being cut, since the reason is what the customer
needs. English notices are written in ASCII ("CNY", not "¥") to stay GSM-7 and fit 160.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from string import Formatter
from typing import Any

from ebank.core.clock import BUSINESS_TZ
from ebank.core.errors import EbankError
from ebank.core.money import format_grouped

LOCALES = ("zh-CN", "en")
BRAND = "ebank"

# kind -> (zh-CN, en). str.format fields.
TEMPLATES: dict[str, tuple[str, str]] = {
    "account.movement": (
        "您尾号{last4}的账户{time}{direction}人民币{amount}，余额{balance}。{memo}【ebank】",
        "[ebank] Account ending {last4}: {direction} CNY {amount} at {time}, "
        "balance CNY {balance}. {memo}",
    ),
    "payment.result": (
        "您向{payee}的付款¥{amount}{outcome}。【ebank】",
        "[ebank] Your payment of CNY {amount} to {payee} {outcome}.",
    ),
    "scheduled.failed": (
        "您预约{date}向{payee}转账¥{amount}失败：{reason}。请重新办理。【ebank】",
        "[ebank] Your scheduled transfer of CNY {amount} to {payee} on {date} failed: "
        "{reason}. Please make it again if it is still needed.",
    ),
    "payment.returned": (
        "您{date}向{payee}的跨行转账¥{amount}被收款行退回（{reason}），已退回您尾号{last4}的账户。"
        "【ebank】",
        "[ebank] Your transfer of CNY {amount} to {payee} on {date} was returned ({reason}) "
        "and refunded to your account ending {last4}.",
    ),
    "payroll.result": (
        "{period}代发批次{reference}：成功{paid}笔¥{paid_total}，失败{failed}笔。【ebank】",
        "[ebank] Payroll batch {reference} for {period} is done: {paid} paid, CNY {paid_total} "
        "in all; {failed} failed, and what they held is available again.",
    ),
}

# The subject of a notice sent by e-mail: both languages, since an e-mail carries both.
SUBJECTS: dict[str, tuple[str, str]] = {
    "account.movement": ("账户变动通知", "Account movement"),
    "payment.result": ("付款结果通知", "Payment result"),
    "scheduled.failed": ("预约转账失败通知", "Scheduled transfer failed"),
    "payment.returned": ("跨行转账退回通知", "Inter-bank transfer returned"),
    "payroll.result": ("代发工资结果通知", "Payroll result"),
}

# Pieces notices are built from: name -> (zh-CN, en), str.format fields.
PHRASES: dict[str, tuple[str, str]] = {
    "in": ("转入", "income"),
    "out": ("转出", "expense"),
    "succeeded": ("已成功", "succeeded"),
    "failed": ("未成功：{reason}", "failed: {reason}"),
    "payee": ("{name}(尾号{last4})", "{name} (a/c ending {last4})"),
    "email.footer": (
        "此邮件由{brand}系统自动发送，请勿直接回复。如有疑问，请登录网上银行或致电客服。",
        "This message was sent automatically by {brand}; please do not reply to it. For any "
        "question, log in to online banking or call us.",
    ),
}

# Why the payee's bank returned a transfer (ISO 20022 return reason codes we receive).
RETURN_REASONS: dict[str, tuple[str, str]] = {
    "AC01": ("账号有误", "incorrect account number"),
    "AC04": ("账户已销户", "account closed"),
    "AC06": ("账户已冻结", "account blocked"),
    "BE01": ("户名与账号不符", "name mismatch"),
    "AM04": ("资金不足", "insufficient funds"),
    "MS03": ("未说明原因", "no reason given"),
}
UNKNOWN_RETURN = ("原因代码{code}", "reason code {code}")

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _pick(pair: tuple[str, str], locale: str) -> str:
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}; one of {LOCALES}")
    return pair[LOCALES.index(locale)]


def _fill(template: str, fields: dict[str, str]) -> str:
    """`template` filled with exactly the fields it names: none missing, none unknown."""
    names = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    if missing := names - fields.keys():
        raise KeyError(f"missing fields {sorted(missing)}")
    if unknown := fields.keys() - names:
        raise ValueError(f"fields the template does not use: {sorted(unknown)}")
    return template.format(**fields)


def render(kind: str, locale: str, /, **fields: str) -> str:
    """The notice `kind` in `locale`, with `fields` (already written for that locale)."""
    return _fill(_pick(TEMPLATES[kind], locale), fields).rstrip()


def phrase(name: str, locale: str, /, **fields: str) -> str:
    return _fill(_pick(PHRASES[name], locale), fields)


def heading(kind: str, locale: str) -> str:
    """A notice's title in one language, as the message centre lists it."""
    return _pick(SUBJECTS[kind], locale)


def subject(kind: str) -> str:
    """An e-mail's subject: both languages, Chinese first."""
    zh, en = SUBJECTS[kind]
    return f"【{BRAND}】{zh} / {en}"


def return_reason(code: str, locale: str) -> str:
    """What an ISO return reason code means, for the customer."""
    known = RETURN_REASONS.get(code)
    return _pick(known, locale) if known else _fill(_pick(UNKNOWN_RETURN, locale), {"code": code})


def yuan(fen: int) -> str:
    """An amount of CNY with thousands separators: "12,345.60"."""
    return format_grouped(fen, "CNY")


def moment(at: datetime, locale: str) -> str:
    """A time as notices write it, in the bank's zone: "11月22日14:05", "22 Nov 14:05"."""
    local = _local(at)
    return f"{_day(local, locale)}{'' if locale == 'zh-CN' else ' '}{local:%H:%M}"


def day(at: datetime, locale: str) -> str:
    """A date as notices write it, in the bank's zone: "11月22日", "22 Nov"."""
    return _day(_local(at), locale)


def _local(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a notice's time must be timezone-aware")
    return at.astimezone(BUSINESS_TZ)


def _day(local: datetime, locale: str) -> str:
    zh = f"{local.month}月{local.day}日"
    return _pick((zh, f"{local.day} {MONTHS_EN[local.month - 1]}"), locale)


def sms_segment(text: str) -> int:
    """Characters one SMS segment holds for `text`: 160 in GSM-7 (taken as ASCII here), 70 in
    UCS-2, which any Chinese character forces."""
    return 160 if text.isascii() else 70


def fit(kind: str, locale: str, /, *, shrink: str, **fields: str) -> str:
    """`render`, with the field `shrink` (a free-text memo) cut short, marked by an ellipsis, as
    far as needed to keep the notice to one SMS segment. If it is too long even without that
    field, it is sent as it is: the rest is what the customer must read."""
    text, value = render(kind, locale, **fields), fields[shrink]
    mark = "…" if locale == "zh-CN" else "..."
    keep = len(value)
    while keep and len(text) > sms_segment(text):
        keep = max(0, min(keep - 1, keep - (len(text) - sms_segment(text)) - len(mark)))
        text = render(kind, locale, **fields | {shrink: value[:keep] + mark if keep else ""})
    return text


# -- a notice's facts ------------------------------------------------------------------------
# A notice is kept (and sent) as its facts: JSON-native values, written out for a language
# when it is read. The SMS, the e-mail and the message centre all write them here.
def _error(pair: list[Any], locale: str) -> str:
    """A failure kept as [code, details], in the customer's words."""
    code, details = pair
    return EbankError(code, **details).message(locale)


def _payee(facts: Mapping[str, Any], locale: str) -> str:
    return phrase("payee", locale, name=facts["payee"], last4=facts["payee_last4"])


def _movement(facts: Mapping[str, Any], loc: str) -> dict[str, str]:
    return {
        "last4": facts["last4"], "time": moment(datetime.fromisoformat(facts["at"]), loc),
        "direction": phrase(facts["direction"], loc), "amount": yuan(facts["amount"]),
        "balance": yuan(facts["balance"]), "memo": facts["memo"],
    }  # fmt: skip


def _result(facts: Mapping[str, Any], loc: str) -> dict[str, str]:
    failure = facts["failure"]
    outcome = (
        phrase("succeeded", loc)
        if failure is None
        else phrase("failed", loc, reason=_error(failure, loc))
    )
    return {"payee": _payee(facts, loc), "amount": yuan(facts["amount"]), "outcome": outcome}


def _scheduled(facts: Mapping[str, Any], loc: str) -> dict[str, str]:
    return {
        "date": day(datetime.fromisoformat(facts["due_at"]), loc), "payee": _payee(facts, loc),
        "amount": yuan(facts["amount"]), "reason": _error(facts["reason"], loc),
    }  # fmt: skip


def _returned(facts: Mapping[str, Any], loc: str) -> dict[str, str]:
    return {
        "date": day(datetime.fromisoformat(facts["sent_at"]), loc), "payee": _payee(facts, loc),
        "amount": yuan(facts["amount"]), "reason": return_reason(facts["reason"], loc),
        "last4": facts["last4"],
    }  # fmt: skip


def _payroll(facts: Mapping[str, Any], loc: str) -> dict[str, str]:
    return {
        "reference": facts["reference"], "period": facts["period"], "paid": str(facts["paid"]),
        "paid_total": yuan(facts["paid_total"]), "failed": str(facts["failed"]),
    }  # fmt: skip


_WRITERS: dict[str, Callable[[Mapping[str, Any], str], dict[str, str]]] = {
    "account.movement": _movement,
    "payment.result": _result,
    "scheduled.failed": _scheduled,
    "payment.returned": _returned,
    "payroll.result": _payroll,
}


def fields(kind: str, locale: str, facts: Mapping[str, Any]) -> dict[str, str]:
    """The fields of the notice `kind` written for `locale` from its facts."""
    return _WRITERS[kind](facts, locale)


def unsigned(kind: str, locale: str, facts: Mapping[str, Any]) -> str:
    """A notice as the bank's own pages show it: without the SMS signature."""
    text = render(kind, locale, **fields(kind, locale, facts))
    return text.replace(f"【{BRAND}】", "").removeprefix(f"[{BRAND}] ").strip()
