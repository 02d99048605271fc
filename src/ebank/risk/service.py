"""The risk service: `evaluate` before an attempt, `observe` after it happened.

Both run inside the caller's writer command. `evaluate` reads what the live rule set needs
(one statement), runs the compiled rules and records the decision; it never raises for a
block (the caller decides what to say) and never changes an aggregate. `observe`, called once
the action has happened in the same transaction, feeds the aggregates and facts, so that an
attempt refused or rolled back counts nowhere.

A decision is kept even when the command that asked for it fails afterwards: a payment that
answers a block with RISK_REJECTED rolls its own work back, but the record of the block stays
(`_Decisions` writes it again after the command's savepoint is undone).
"""

import json
import logging
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core.clock import as_utc
from ebank.core.db import BulkWrite
from ebank.core.errors import EbankError
from ebank.core.writer import Participant, Tx
from ebank.risk import aggregates, rules
from ebank.risk.models import OUTCOMES, SEVERITY, STRONG_FACTORS, Context, Decision, Reason
from ebank.risk.tables import risk_decisions

log = logging.getLogger(__name__)
_CONTEXT = tuple(f.name for f in fields(Context))
_COLUMNS = ("id", "at", "event", "customer_id", "channel", "amount", "outcome", "score", "hits",
            "shadow", "context", "evidence", "ruleset")  # fmt: skip


class _Decisions(Participant):
    """The batch's decisions, written with one statement per flush. Rows written during a
    command that then fails are queued again: its savepoint took them away, but a decision
    (a block, above all) must stay on record."""

    order = 40  # before anything (a case) that refers to a decision
    INSERT = BulkWrite(risk_decisions, _COLUMNS)

    def __init__(self, tx: Tx) -> None:
        super().__init__(tx)
        self.pending: list[tuple[Any, ...]] = []
        self.written: list[tuple[Any, ...]] = []  # by the current command

    def begin_command(self) -> None:
        self.written = []

    def rollback_command(self) -> None:
        self.pending[:0] = self.written
        self.written = []

    def flush(self) -> None:
        if self.pending:
            self.INSERT.run(self.tx.raw, self.pending)
            self.written += self.pending
            self.pending = []


def evaluate(tx: Tx, ctx: Context) -> Decision:
    """Score the attempt with the live rules and record the decision (see the module)."""
    ruleset = rules.live(tx)
    env = ruleset.plan.gather(tx.conn, ctx, tx.now)
    score, worst = 0, 0
    reasons: list[Reason] = []
    hits: list[str] = []
    shadow: list[str] = []
    for live in ruleset.rules:
        rule = live.rule
        try:
            hit = live.test(env)
        except Exception:  # a staff rule must never stop a decision: noted, logged, skipped
            log.exception("risk rule %s v%d failed", rule.code, rule.version)
            hits.append(f"!{rule.code}")
            continue
        if not hit:
            continue
        if rule.shadow:
            shadow.append(rule.code)
            continue
        score += rule.score
        worst = max(worst, SEVERITY[rule.outcome] if rule.outcome else 0)
        reasons.append(Reason(rule.code, rule.description_zh, rule.description_en))
        hits.append(rule.code)
    outcome = ruleset.thresholds.outcome(score)
    if worst > SEVERITY[outcome]:
        outcome = OUTCOMES[worst]
    decision_id = tx.new_id("risk_decisions")
    evidence = _evidence(env, ruleset.plan.labels) if hits or shadow else "{}"
    context = json.dumps({name: getattr(ctx, name) for name in _CONTEXT})
    part = tx.part(_Decisions)
    part.touch()
    part.pending.append((
        decision_id, tx.now_param, ctx.event, ctx.customer_id, ctx.channel, ctx.amount, outcome,
        score, json.dumps(hits), json.dumps(shadow), context, evidence, ruleset.tag,
    ))  # fmt: skip
    return Decision(decision_id, outcome, score, tuple(reasons), tuple(shadow))


def admit(tx: Tx, ctx: Context, *, step_up: bool = False) -> Decision:
    """`evaluate` for an attempt that can neither wait nor be held (a login, a payee, a limit
    or phone change): a block or a hold for review refuses it (RISK_REJECTED, the decision
    kept). With `step_up`, so does a step-up of an attempt confirmed with less than
    `STRONG_FACTORS` (RISK_STEP_UP). Any other outcome is the caller's to honour."""
    decision = evaluate(tx, ctx)
    if decision.outcome in ("block", "review"):
        raise EbankError("RISK_REJECTED")
    if step_up and decision.outcome == "step_up" and ctx.factor not in STRONG_FACTORS:
        raise EbankError("RISK_STEP_UP")
    return decision


def _evidence(env: dict[str, Any], labels: dict[str, str]) -> str:
    """What the rules saw, by name as written in them."""
    seen = {labels.get(key, key): value for key, value in env.items()}
    return json.dumps(seen, sort_keys=True, ensure_ascii=False)


def observe(tx: Tx, ctx: Context) -> None:
    """Feed the aggregates and facts with an action that has happened (see the module)."""
    aggregates.record(tx, ctx)


# -- reading decisions -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision as kept: what was asked, what was seen, what was decided."""

    id: int
    at: datetime
    event: str
    customer_id: int | None
    channel: str
    amount: int
    outcome: str
    score: int
    hits: list[str]
    shadow: list[str]
    context: dict[str, Any]
    evidence: dict[str, Any]
    ruleset: str


def _record(row: Any) -> DecisionRecord:
    return DecisionRecord(
        row["id"], as_utc(row["at"]), row["event"], row["customer_id"], row["channel"],
        row["amount"], row["outcome"], row["score"], json.loads(row["hits"]),
        json.loads(row["shadow"]), json.loads(row["context"]), json.loads(row["evidence"]),
        row["ruleset"],
    )  # fmt: skip


def get_decision(conn: Connection, decision_id: int) -> DecisionRecord:
    row = (
        conn.execute(select(risk_decisions).where(risk_decisions.c.id == decision_id))
        .mappings()
        .first()
    )
    if row is None:
        raise EbankError("RISK_DECISION_NOT_FOUND")
    return _record(row)


def decisions(
    conn: Connection,
    *,
    customer_id: int | None = None,
    outcome: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[DecisionRecord]:
    """Decisions newest first, of one customer and/or one outcome; `before` pages on."""
    d = risk_decisions
    query = select(d).order_by(d.c.id.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(d.c.customer_id == customer_id)
    if outcome is not None:
        query = query.where(d.c.outcome == outcome)
    if before is not None:
        query = query.where(d.c.id < before)
    return [_record(row) for row in conn.execute(query).mappings()]
