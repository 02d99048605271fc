"""Rules and thresholds as data: defaults in code, staff versions in the database, changed
only under maker-checker, and the live rule set each process compiles once and keeps.

A default rule is version 0 by "system". A change (a new rule, a new condition, a score, an
on/off or shadow switch) is proposed by one member of staff (`propose_rule`) and applied only
when another approves it (`ops.approvals`): a new version row names both. The thresholds that
turn a score into an outcome are versioned the same way (`propose_thresholds`).

The live rule set is compiled once per process and database and kept; every second at most,
a decision asks the database for the newest version ids (two index look-ups) and recompiles
when they moved. So an approved change reaches every process, on any machine, within about a
second of its commit, and at once in the process that approved it.
"""

import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from ebank.core import audit
from ebank.core.errors import EbankError, checked_text
from ebank.core.writer import Command, Tx
from ebank.ops import approvals
from ebank.ops.tables import approval_decisions, approval_requests
from ebank.risk.aggregates import VOCABULARY, Plan
from ebank.risk.expr import Compiled, compile_rule
from ebank.risk.models import OUTCOMES, Rule, Thresholds
from ebank.risk.tables import risk_rules, risk_thresholds

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
MAX_SCORE = 1000
_CODE = re.compile(r"[a-z][a-z0-9_]{2,39}")


def _rule(code: str, zh: str, en: str, expression: str, score: int, outcome: str = "") -> Rule:
    return Rule(code, zh, en, " ".join(expression.split()), score, outcome, True, False)


# The default rule set (docs/risk.md explains each and its parameters). Amounts are fen;
# yuan(n) writes n yuan.
DEFAULT_RULES: tuple[Rule, ...] = (
    _rule("new_device_transfer", "新设备首次使用后短期内转账",
          "A transfer within days of a new device's first use", """
          event == "payment" and has_device and device_age_days < 3
          and device_history_days >= 30 and amount >= yuan(1000)""", 40),
    _rule("new_location_transfer", "新网络位置首次出现后短期内转账",
          "A transfer within days of a new network location", """
          event == "payment" and has_ip and location_age_days < 3
          and location_history_days >= 30 and amount >= yuan(1000)""", 20),
    _rule("sms_after_phone_change", "更换手机号后短期内凭短信验证码办理",
          "SMS-confirmed business soon after the mobile number changed", """
          (factor == "sms" or channel == "sms") and hours_since_phone_change < 72
          and event in ["payment", "payee_add", "limit_change"]""", 80),
    _rule("phone_change_new_device", "在新设备上更换手机号",
          "The mobile number changed from a new device", """
          event == "phone_change" and channel != "counter" and has_device
          and device_age_days < 7 and device_history_days >= 7""", 80),
    _rule("limit_raise_new_device", "在新设备上调整限额",
          "Limits changed from a new device", """
          event == "limit_change" and has_device and device_age_days < 7
          and device_history_days >= 7""", 60),
    _rule("mule_rapid_in_out", "新开或久未使用的账户资金快进快出",
          "Money in and straight out of a new or long-dormant account (mule)", """
          event == "payment" and (account_age_days < 30 or account_dormant_days >= 180)
          and sum(account, "inflow", "24h") >= yuan(5000)
          and (amount + sum(account, "outflow", "24h")) * 10
              >= sum(account, "inflow", "24h") * 8""", 80),
    _rule("funnel_many_to_one", "多人向同一账户集中转入",
          "Many payers funnelling money into one account", """
          event == "payment" and has_payee and payee_is_new
          and distinct(payee_account, "payers", "24h") >= 5""", 60),
    _rule("new_account_payee", "向新开立的账户转入较大金额",
          "A sizeable amount to a newly opened account", """
          event == "payment" and payee_is_new and payee_account_age_days < 30
          and amount >= yuan(2000)""", 40),
    _rule("new_payee_large", "向新收款人大额转账",
          "A large amount to a new payee", """
          event == "payment" and payee_is_new and amount >= yuan(50000)""", 40),
    _rule("amount_above_usual", "金额远超客户平时水平",
          "An amount far above the customer's usual", """
          event == "payment" and customer_usual_count >= 5 and amount >= yuan(5000)
          and amount >= 10 * customer_usual_amount""", 40),
    _rule("night_large", "夜间大额转账",
          "A large transfer at night", """
          event == "payment" and hour < 6 and amount >= yuan(20000)""", 40),
    _rule("repeated_similar_amounts", "短时间内多笔相近金额",
          "Repeated near-equal amounts", """
          event == "payment" and amount >= yuan(1000)
          and count(customer, "similar_amount", "24h") >= 3""", 40),
    _rule("velocity", "短时间内交易过于频繁",
          "Too many payments in a short time", """
          event == "payment" and (count(customer, "payment", "10m") >= 5
          or count(customer, "payment", "1h") >= 10)""", 50),
    _rule("payee_add_burst", "短时间内新增多个收款人",
          "Many payees added in a short time", """
          event == "payee_add" and count(customer, "payee_add", "24h") >= 5""", 40),
    _rule("shared_device", "同一设备被多名客户使用",
          "One device used by several customers", """
          has_device and distinct(device, "customers", "24h") >= 3""", 40),
    _rule("police_listed", "涉及公安机关认定的涉案账户",
          "A police-designated account is involved", """
          on_list("police", payee) or on_list("police", account)""", 100, "block"),
    _rule("sanctioned_party", "涉及制裁名单",
          "A sanctioned party is involved", """
          on_list("sanctioned", customer) or on_list("sanctioned", payee)""", 100, "block"),
    _rule("compromised_credentials", "客户凭据或设备已知泄露",
          "The customer's credentials or device are known to be compromised", """
          on_list("compromised", customer) or on_list("compromised", device)""", 40, "step_up"),
    _rule("merchant_fabricated_volume", "商户疑似刷单：少数买家的大量小额订单",
          "Merchant volume looks fabricated: many small orders from few buyers", """
          event == "gateway_payment" and count(merchant, "gateway_payment", "24h") >= 30
          and distinct(merchant, "buyers", "24h") * 5 <= count(merchant, "gateway_payment", "24h")
          and sum(merchant, "gateway_payment", "24h")
              <= count(merchant, "gateway_payment", "24h") * yuan(100)""", 80),
    _rule("merchant_related_buyer", "买家为商户关联账户",
          "The buyer is related to the merchant", """
          event == "gateway_payment" and buyer_related""", 50),
)  # fmt: skip
DEFAULTS = {rule.code: rule for rule in DEFAULT_RULES}


# -- checking what staff propose --------------------------------------------------------------
def _flag(value: object, what: str) -> bool:
    if type(value) is not int or value not in (0, 1):
        raise EbankError("INVALID_INPUT", reason=f"{what} is 0 or 1")
    return bool(value)


def rule_of(params: dict[str, Any]) -> Rule:
    """The rule a proposal describes, checked; its condition must compile."""
    fields = {"code", "description_zh", "description_en", "expression", "score", "outcome",
              "enabled", "shadow"}  # fmt: skip
    if set(params) != fields:
        raise EbankError("INVALID_INPUT", reason=f"a rule has exactly {sorted(fields)}")
    code = params["code"]
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise EbankError("INVALID_INPUT", reason="a rule code is 3-40 of a-z, 0-9, _")
    score, outcome = params["score"], params["outcome"]
    if type(score) is not int or not 0 <= score <= MAX_SCORE:
        raise EbankError("INVALID_INPUT", reason=f"a score is an integer 0-{MAX_SCORE}")
    if outcome not in ("", *OUTCOMES[1:]):
        raise EbankError("INVALID_INPUT", reason=f'an outcome is "" or one of {OUTCOMES[1:]}')
    if score == 0 and not outcome:
        raise EbankError("INVALID_INPUT", reason="a rule scores or forces an outcome")
    expression = params["expression"]
    compile_rule(expression, VOCABULARY)
    return Rule(
        code, checked_text(params["description_zh"], "the Chinese description", 200),
        checked_text(params["description_en"], "the English description", 200),
        expression.strip(), score, outcome, _flag(params["enabled"], "enabled"),
        _flag(params["shadow"], "shadow"),
    )  # fmt: skip


def thresholds_of(params: dict[str, Any]) -> Thresholds:
    names = ("step_up", "delay", "review", "block")
    if set(params) != set(names):
        raise EbankError("INVALID_INPUT", reason=f"thresholds are exactly {list(names)}")
    values = [params[n] for n in names]
    if any(type(v) is not int or not 0 < v <= MAX_SCORE for v in values):
        raise EbankError("INVALID_INPUT", reason=f"a threshold is an integer 1-{MAX_SCORE}")
    if values != sorted(set(values)):
        raise EbankError("INVALID_INPUT", reason="thresholds rise: step_up, delay, review, block")
    return Thresholds(*values)


def params_of(rule: Rule) -> dict[str, Any]:
    """A rule as a proposal's params (flags as 0/1, as approvals keep them)."""
    return {
        "code": rule.code, "description_zh": rule.description_zh,
        "description_en": rule.description_en, "expression": rule.expression,
        "score": rule.score, "outcome": rule.outcome, "enabled": int(rule.enabled),
        "shadow": int(rule.shadow),
    }  # fmt: skip


def propose_rule(rule: Rule, *, reason: str, maker: str, channel: str = "console") -> Command[int]:
    """Ask for a rule to be added or changed; another member of staff approves it."""
    return approvals.propose("risk.rule.set", params_of(rule), reason=reason, maker=maker,
                             channel=channel)  # fmt: skip


def propose_thresholds(
    thresholds: Thresholds, *, reason: str, maker: str, channel: str = "console"
) -> Command[int]:
    params = {"step_up": thresholds.step_up, "delay": thresholds.delay,
              "review": thresholds.review, "block": thresholds.block}  # fmt: skip
    return approvals.propose("risk.thresholds.set", params, reason=reason, maker=maker,
                             channel=channel)  # fmt: skip


# -- applying an approved change ---------------------------------------------------------------
def approved_request(tx: Tx, action: str, params: dict[str, Any], checker: str) -> Any:
    """The request being approved right now (id, maker, reason): an approval handler is told
    the params and the checker but not the maker, who is the change's author. It is the one
    this checker decided in this transaction (same instant) with exactly these params."""
    r, d = approval_requests, approval_decisions
    return tx.conn.execute(
        select(r.c.id, r.c.maker, r.c.reason)
        .join(d, d.c.request_id == r.c.id)
        .where(
            r.c.action == action, r.c.params == json.dumps(params, sort_keys=True),
            d.c.checker == checker, d.c.outcome == "approved", d.c.decided_at == tx.now,
        )
        .order_by(d.c.id.desc())
        .limit(1)
    ).one()  # fmt: skip


def _set_rule(tx: Tx, params: dict[str, Any], checker: str) -> int:
    rule = rule_of(params)
    request = approved_request(tx, "risk.rule.set", params, checker)
    before = current_rule(tx.conn, rule.code)
    version = (before.version if before else 0) + 1
    tx.conn.execute(
        risk_rules.insert().values(
            **(params_of(rule) | {"enabled": rule.enabled, "shadow": rule.shadow}),
            version=version, author=request.maker, approver=checker,
            request_id=request.id, created_at=tx.now,
        )
    )  # fmt: skip
    audit.record(
        tx, actor=checker, action="risk.rule.set", subject=f"risk_rule:{rule.code}",
        channel="console",
        detail={"version": version, "author": request.maker,
                "from": None if before is None else params_of(before), "to": params},
    )  # fmt: skip
    _refresh_soon()
    return version


def _set_thresholds(tx: Tx, params: dict[str, Any], checker: str) -> int:
    thresholds_of(params)
    request = approved_request(tx, "risk.thresholds.set", params, checker)
    before = current_thresholds(tx.conn)
    version = before.version + 1
    tx.conn.execute(
        risk_thresholds.insert().values(
            **params, version=version, author=request.maker, approver=checker,
            request_id=request.id, created_at=tx.now,
        )
    )  # fmt: skip
    audit.record(
        tx, actor=checker, action="risk.thresholds.set", subject="risk_thresholds",
        channel="console",
        detail={"version": version, "author": request.maker, "to": params,
                "from": [before.step_up, before.delay, before.review, before.block]},
    )  # fmt: skip
    _refresh_soon()
    return version


def _rule_subject(tx: Tx, params: dict[str, Any]) -> str:
    return f"risk_rule:{rule_of(params).code}"


def _thresholds_subject(tx: Tx, params: dict[str, Any]) -> str:
    thresholds_of(params)
    return "risk_thresholds"


approvals.register("risk.rule.set", _set_rule, subject=_rule_subject)
approvals.register("risk.thresholds.set", _set_thresholds, subject=_thresholds_subject)


# -- reading -----------------------------------------------------------------------------------
def _row_rule(row: Any) -> Rule:
    return Rule(
        row["code"], row["description_zh"], row["description_en"], row["expression"],
        row["score"], row["outcome"], bool(row["enabled"]), bool(row["shadow"]),
        row["version"], row["author"], row["approver"],
    )  # fmt: skip


def current_rule(conn: Connection, code: str) -> Rule | None:
    """The live version of a rule: the latest staff version, else the default."""
    row = (
        conn.execute(
            select(risk_rules).where(risk_rules.c.code == code)
            .order_by(risk_rules.c.version.desc()).limit(1)
        ).mappings().first()
    )  # fmt: skip
    return _row_rule(row) if row is not None else DEFAULTS.get(code)


def current_rules(conn: Connection) -> list[Rule]:
    """Every live rule: the defaults in their order (as staff left them), then staff's own."""
    latest = (
        select(risk_rules.c.code, func.max(risk_rules.c.version).label("version"))
        .group_by(risk_rules.c.code)
        .subquery()
    )
    rows = conn.execute(
        select(risk_rules).join(
            latest,
            (latest.c.code == risk_rules.c.code) & (latest.c.version == risk_rules.c.version),
        )
    ).mappings()
    staff = {row["code"]: _row_rule(row) for row in rows}
    ordered = [staff.pop(rule.code, rule) for rule in DEFAULT_RULES]
    return ordered + [staff[code] for code in sorted(staff)]


def versions(conn: Connection, code: str) -> list[Rule]:
    """Every version of a rule, oldest first (the default, if there is one, first)."""
    rows = conn.execute(
        select(risk_rules).where(risk_rules.c.code == code).order_by(risk_rules.c.version)
    ).mappings()
    found = ([DEFAULTS[code]] if code in DEFAULTS else []) + [_row_rule(r) for r in rows]
    if not found:
        raise EbankError("RISK_RULE_NOT_FOUND", code=code[:40])
    return found


def current_thresholds(conn: Connection) -> Thresholds:
    row = (
        conn.execute(select(risk_thresholds).order_by(risk_thresholds.c.version.desc()).limit(1))
        .mappings()
        .first()
    )
    if row is None:
        return Thresholds()
    return Thresholds(
        row["step_up"], row["delay"], row["review"], row["block"], row["version"],
        row["author"], row["approver"],
    )  # fmt: skip


# -- the live rule set -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LiveRule:
    rule: Rule
    test: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The enabled rules compiled, the thresholds, and the one statement their facts need."""

    version: tuple[int, int]  # the newest rule and thresholds row ids (0: defaults only)
    rules: tuple[LiveRule, ...]
    thresholds: Thresholds
    plan: Plan

    @property
    def tag(self) -> str:
        return f"r{self.version[0]}.t{self.version[1]}"


def compile_set(rules: list[Rule], thresholds: Thresholds, version: tuple[int, int]) -> RuleSet:
    """Compile the enabled rules. A stored rule that no longer compiles (a field retired in a
    later release) is left out and logged, never allowed to stop decisions."""
    live: list[LiveRule] = []
    compiled: list[Compiled] = []
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            done = compile_rule(rule.expression, VOCABULARY)
        except EbankError as exc:
            log.error("risk rule %s v%d does not compile: %s", rule.code, rule.version, exc)
            continue
        live.append(LiveRule(rule, done.test))
        compiled.append(done)
    plan = Plan(
        {f for c in compiled for f in c.fields},
        {a: None for c in compiled for a in sorted(c.aggregates, key=lambda a: a.label)},
        {x: None for c in compiled for x in sorted(c.lists, key=lambda x: x.label)},
    )
    return RuleSet(version, tuple(live), thresholds, plan)


_VERSION = select(
    select(func.coalesce(func.max(risk_rules.c.id), 0)).scalar_subquery(),
    select(func.coalesce(func.max(risk_thresholds.c.id), 0)).scalar_subquery(),
)
# Per database (engine): the rule set and when its version was last checked (monotonic).
_cache: "weakref.WeakKeyDictionary[Engine, tuple[RuleSet, float]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def live(tx: Tx) -> RuleSet:
    """The rule set now in force, compiled; reloaded when the stored version has moved,
    checked at most every REFRESH_SECONDS."""
    engine = tx.raw.engine
    cached = _cache.get(engine)
    moment = time.monotonic()
    if cached is not None and moment - cached[1] < REFRESH_SECONDS:
        return cached[0]
    conn = tx.conn
    version = tuple(conn.execute(_VERSION).one())
    if cached is not None and cached[0].version == version:
        ruleset = cached[0]
    else:
        ruleset = compile_set(current_rules(conn), current_thresholds(conn), version)  # type: ignore[arg-type]
    with _lock:
        _cache[engine] = (ruleset, moment)
    return ruleset


def _refresh_soon() -> None:
    """Make every cached rule set check its version on its next use (a change was approved)."""
    with _lock:
        for engine, (ruleset, _) in list(_cache.items()):
            _cache[engine] = (ruleset, float("-inf"))
