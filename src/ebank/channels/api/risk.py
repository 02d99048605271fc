"""The staff console's risk API: rules and thresholds, decisions, the case queue, watch lists.

Roles (`ops.staff`): risk officers and supervisors read everything and decide cases; risk
officers propose rule, threshold and watch-list changes, which another member of staff
approves at POST /api/v1/staff/approvals/{id}/approve (never their own). Every action is
audited as `staff:<id>`. Proposals take an `Idempotency-Key`.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from ebank.channels.api.auth import StaffPrincipal, staff_role
from ebank.channels.api.common import (
    Before,
    IdempotencyKey,
    ObjectId,
    PageSize,
    create,
    read,
    vault_of,
    write,
)
from ebank.channels.api.schemas import ERRORS, MAX_ID, ApprovalOut, In, text
from ebank.core.errors import EbankError
from ebank.core.money import format_minor
from ebank.core.writer import Command, Tx
from ebank.ops import approvals
from ebank.risk import cases, lists, rules, service
from ebank.risk.aggregates import DISTINCT, FIELDS, SUMMED, VOCABULARY
from ebank.risk.expr import MAX_LENGTH, compile_rule
from ebank.risk.models import LISTS, OUTCOMES, Rule, Thresholds

router = APIRouter(prefix="/api/v1/staff/risk", responses=ERRORS, tags=["staff: risk"])
Reader = Annotated[StaffPrincipal, Depends(staff_role("risk", "supervisor"))]
Decider = Annotated[StaffPrincipal, Depends(staff_role("risk", "supervisor"))]
Officer = Annotated[StaffPrincipal, Depends(staff_role("risk"))]
ListName = Annotated[Literal[LISTS], Path(description="police | compromised | sanctioned")]
Reason = Annotated[str, text(500, "Why: kept with the request and in the audit chain")]
Note = Annotated[str, text(500)]


# -- bodies -------------------------------------------------------------------------------------
class RuleIn(In):
    code: Annotated[str, text(40, "a-z, 0-9, _; an existing code makes a new version")]
    description_zh: Annotated[str, text(200)]
    description_en: Annotated[str, text(200)]
    expression: Annotated[str, text(MAX_LENGTH, "The condition, in the rule language")]
    score: Annotated[int, Field(ge=0, le=rules.MAX_SCORE)]
    outcome: Literal["", "step_up", "delay", "review", "block"] = Field(
        "", description="An outcome it forces at least, or none"
    )
    enabled: bool = True
    shadow: bool = Field(False, description="Evaluated and logged, not enforced")
    reason: Reason

    def rule(self) -> Rule:
        return Rule(self.code, self.description_zh, self.description_en, self.expression,
                    self.score, self.outcome, self.enabled, self.shadow)  # fmt: skip


class ThresholdsIn(In):
    step_up: Annotated[int, Field(ge=1, le=rules.MAX_SCORE)]
    delay: Annotated[int, Field(ge=1, le=rules.MAX_SCORE)]
    review: Annotated[int, Field(ge=1, le=rules.MAX_SCORE)]
    block: Annotated[int, Field(ge=1, le=rules.MAX_SCORE)]
    reason: Reason


class CheckIn(In):
    expression: Annotated[str, text(MAX_LENGTH)]


class ListEntryIn(In):
    """Exactly one of: an account (ours; another bank's with `bank`), a customer, a device's
    keyed hash, an IP address, a merchant."""

    account: Annotated[str | None, text(40)] = None
    bank: Annotated[str, text(12, "Another bank's code; empty for ours")] = ""
    customer_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    device_hash: Annotated[str | None, text(64)] = None
    ip: Annotated[str | None, text(45)] = None
    merchant_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    reason: Reason


class ReasonIn(In):
    reason: Reason


class CaseDecisionIn(In):
    note: Note = ""


class SuspendIn(In):
    which: Literal["payer", "payee"]
    note: Note = ""


# -- answers ------------------------------------------------------------------------------------
class RuleOut(BaseModel):
    code: str
    description_zh: str
    description_en: str
    expression: str
    score: int
    outcome: str
    enabled: bool
    shadow: bool
    version: int = Field(description="0: the default in code")
    author: str
    approver: str

    @classmethod
    def of(cls, rule: Rule) -> "RuleOut":
        return cls(
            code=rule.code, description_zh=rule.description_zh,
            description_en=rule.description_en, expression=rule.expression, score=rule.score,
            outcome=rule.outcome, enabled=rule.enabled, shadow=rule.shadow,
            version=rule.version, author=rule.author, approver=rule.approver,
        )  # fmt: skip


class ThresholdsOut(BaseModel):
    step_up: int
    delay: int
    review: int
    block: int
    version: int
    author: str
    approver: str

    @classmethod
    def of(cls, t: Thresholds) -> "ThresholdsOut":
        return cls(step_up=t.step_up, delay=t.delay, review=t.review, block=t.block,
                   version=t.version, author=t.author, approver=t.approver)  # fmt: skip


class RulesOut(BaseModel):
    rules: list[RuleOut]
    thresholds: ThresholdsOut


class RuleVersionsOut(BaseModel):
    versions: list[RuleOut]


class FieldOut(BaseModel):
    name: str
    type: str
    meaning: str


class VocabularyOut(BaseModel):
    fields: list[FieldOut]
    counted: dict[str, list[str]] = Field(description="Metrics of count() and sum(), by entity")
    distinct: dict[str, list[str]] = Field(description="Metrics of distinct(), by entity")
    lists: list[str]
    windows: str


class CheckOut(BaseModel):
    fields: list[str]
    aggregates: list[str]
    lists: list[str]


class DecisionOut(BaseModel):
    id: int
    at: datetime
    event: str
    customer_id: int | None
    channel: str
    amount: str
    outcome: Literal[OUTCOMES]
    score: int
    hits: list[str]
    shadow: list[str]
    context: dict[str, Any] = Field(description="What the service asked about (amounts in fen)")
    evidence: dict[str, Any] = Field(
        description="What the rules saw, by the names they use (amounts in fen); empty when "
        "no rule hit"
    )
    ruleset: str

    @classmethod
    def of(cls, d: service.DecisionRecord) -> "DecisionOut":
        return cls(
            id=d.id, at=d.at, event=d.event, customer_id=d.customer_id, channel=d.channel,
            amount=format_minor(d.amount), outcome=d.outcome, score=d.score, hits=d.hits,
            shadow=d.shadow, context=d.context, evidence=d.evidence, ruleset=d.ruleset,
        )  # fmt: skip


class DecisionsOut(BaseModel):
    decisions: list[DecisionOut]


class CaseOut(BaseModel):
    id: int
    decision_id: int
    kind: str
    subject_id: int
    customer_id: int
    status: Literal["open", "escalated", "released", "rejected"]
    opened_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, c: cases.Case) -> "CaseOut":
        return cls(
            id=c.id, decision_id=c.decision_id, kind=c.kind, subject_id=c.subject_id,
            customer_id=c.customer_id, status=c.status, opened_at=c.opened_at,
            decided_at=c.decided_at,
        )  # fmt: skip


class CasesOut(BaseModel):
    cases: list[CaseOut]


class CaseEventOut(BaseModel):
    action: str
    actor: str
    note: str
    at: datetime


class CaseFileOut(BaseModel):
    case: CaseOut
    decision: DecisionOut
    events: list[CaseEventOut]
    activity: dict[str, int] = Field(description="Recent aggregates of the customer and accounts")
    recent: list[DecisionOut] = Field(description="The customer's latest decisions")


class SuspendedOut(BaseModel):
    status: str


class ListEntryOut(BaseModel):
    id: int
    list: str
    key: str
    label: str
    reason: str
    added_by: str
    approved_by: str
    added_at: datetime

    @classmethod
    def of(cls, e: lists.ListEntry) -> "ListEntryOut":
        return cls(id=e.id, list=e.list, key=e.key, label=e.label, reason=e.reason,
                   added_by=e.added_by, approved_by=e.approved_by, added_at=e.added_at)  # fmt: skip


class ListEntriesOut(BaseModel):
    entries: list[ListEntryOut]


async def _propose(
    request: Request, me: StaffPrincipal, key: str, body: BaseModel, propose: Command[int]
) -> dict[str, Any]:
    """An idempotent proposal, answered with the request a checker will decide."""

    def make(tx: Tx) -> ApprovalOut:
        return ApprovalOut.of(approvals.get(tx.conn, propose.fn(tx)))

    return await create(request, scope=me.actor, key=key, body=body, make=make)


# -- rules and thresholds -----------------------------------------------------------------------
@router.get("/rules", summary="The live rules and thresholds")
async def live_rules(request: Request, me: Reader) -> RulesOut:
    def both(conn: Connection) -> RulesOut:
        return RulesOut(
            rules=[RuleOut.of(r) for r in rules.current_rules(conn)],
            thresholds=ThresholdsOut.of(rules.current_thresholds(conn)),
        )

    return await read(request, both)


@router.get("/rules/{code}/versions", summary="Every version of a rule, oldest first")
async def rule_versions(
    request: Request, me: Reader, code: Annotated[str, Path(max_length=40)]
) -> RuleVersionsOut:
    found = await read(request, lambda conn: rules.versions(conn, code))
    return RuleVersionsOut(versions=[RuleOut.of(r) for r in found])


@router.get("/vocabulary", summary="What a rule may read")
async def vocabulary(me: Reader) -> VocabularyOut:
    """The fields with their types and meanings, the metrics of each entity, the watch lists
    and the windows (see docs/risk.md for the language)."""
    return VocabularyOut(
        fields=[FieldOut(name=n, type=f.type, meaning=f.meaning) for n, f in FIELDS.items()],
        counted={e: sorted(m) for e, m in SUMMED.items()},
        distinct={e: sorted(m) for e, m in DISTINCT.items()},
        lists=list(LISTS),
        windows='"1m"-"120m" (and "1h", "2h") by minute, "3h"-"72h" by hour, '
        '"1d"-"90d" by Shanghai day; the current bucket is included',
    )


@router.post("/rules/check", summary="Check a condition without proposing it")
async def check_rule(me: Reader, body: CheckIn) -> CheckOut:
    """What the condition reads, or 400 INVALID_INPUT saying what is wrong and at which
    position (`details.position`, counted from 0)."""
    compiled = compile_rule(body.expression, VOCABULARY)
    return CheckOut(
        fields=sorted(compiled.fields),
        aggregates=sorted(a.label for a in compiled.aggregates),
        lists=sorted(c.label for c in compiled.lists),
    )


@router.post("/rules", status_code=201, summary="Propose a new rule or a new version of one")
async def propose_rule(
    request: Request, me: Officer, body: RuleIn, key: IdempotencyKey
) -> ApprovalOut:
    """The condition is checked now (400 with its position if it is not valid); the rule
    takes effect when another member of staff approves the request."""
    command = rules.propose_rule(body.rule(), reason=body.reason, maker=me.actor)
    return await _propose(request, me, key, body, command)


@router.post("/thresholds", status_code=201, summary="Propose new score thresholds")
async def propose_thresholds(
    request: Request, me: Officer, body: ThresholdsIn, key: IdempotencyKey
) -> ApprovalOut:
    chosen = Thresholds(body.step_up, body.delay, body.review, body.block)
    command = rules.propose_thresholds(chosen, reason=body.reason, maker=me.actor)
    return await _propose(request, me, key, body, command)


# -- decisions ----------------------------------------------------------------------------------
@router.get("/decisions", summary="Decisions, newest first")
async def list_decisions(
    request: Request,
    me: Reader,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    outcome: Literal[OUTCOMES] | None = None,
    before: Before = None,
    limit: PageSize = 50,
) -> DecisionsOut:
    found = await read(
        request,
        lambda conn: service.decisions(
            conn, customer_id=customer_id, outcome=outcome, before=before, limit=limit
        ),
    )
    return DecisionsOut(decisions=[DecisionOut.of(d) for d in found])


@router.get("/decisions/{decision_id}", summary="One decision")
async def one_decision(request: Request, me: Reader, decision_id: ObjectId) -> DecisionOut:
    return DecisionOut.of(await read(request, lambda c: service.get_decision(c, decision_id)))


# -- cases --------------------------------------------------------------------------------------
@router.get("/cases", summary="The review queue, oldest first")
async def case_queue(
    request: Request,
    me: Reader,
    status: Annotated[
        Literal["open", "escalated", "released", "rejected"] | None,
        Query(description="Default: open and escalated"),
    ] = None,
    after: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Last id seen")] = None,
    limit: PageSize = 50,
) -> CasesOut:
    found = await read(
        request, lambda conn: cases.queue(conn, status=status, after=after, limit=limit)
    )
    return CasesOut(cases=[CaseOut.of(c) for c in found])


@router.get("/cases/{case_id}", summary="A case with its evidence")
async def case_file(request: Request, me: Reader, case_id: ObjectId) -> CaseFileOut:
    now = request.app.state.clock.now()
    file = await read(request, lambda conn: cases.case_file(conn, case_id, now=now))
    return CaseFileOut(
        case=CaseOut.of(file.case), decision=DecisionOut.of(file.decision),
        events=[CaseEventOut(action=e.action, actor=e.actor, note=e.note, at=e.at)
                for e in file.events],
        activity=file.activity, recent=[DecisionOut.of(d) for d in file.recent],
    )  # fmt: skip


@router.post("/cases/{case_id}/suspend", summary="Suspend the payer's or payee's account")
async def suspend_from_case(
    request: Request, me: Decider, case_id: ObjectId, body: SuspendIn
) -> SuspendedOut:
    """At once (the emergency path); the account holder is told. Reinstating is
    account.reinstate under maker-checker, after the customer is seen at a branch."""
    command = cases.suspend_account(
        case_id, which=body.which, actor=me.actor, note=body.note, vault=vault_of(request)
    )
    return SuspendedOut(status=await write(request, command))


@router.post("/cases/{case_id}/{outcome}", summary="Release, reject or escalate a case")
async def decide_case(
    request: Request,
    me: Decider,
    case_id: ObjectId,
    outcome: Annotated[Literal["release", "reject", "escalate"], Path()],
    body: CaseDecisionIn,
) -> CaseOut:
    """Release: the held money proceeds. Reject: it returns to the customer. Both are final
    and tell the customer by SMS. Escalate: another member of staff decides it."""
    command = cases.decide(
        case_id, outcome=outcome, actor=me.actor, note=body.note, vault=vault_of(request)
    )
    return CaseOut.of(await write(request, command))


# -- watch lists --------------------------------------------------------------------------------
@router.get("/lists/{list_name}", summary="A watch list's live entries, newest first")
async def list_entries(
    request: Request, me: Reader, list_name: ListName, before: Before = None,
    limit: PageSize = 50,
) -> ListEntriesOut:  # fmt: skip
    found = await read(request, lambda c: lists.entries(c, list_name, before=before, limit=limit))
    return ListEntriesOut(entries=[ListEntryOut.of(e) for e in found])


@router.post("/lists/{list_name}", status_code=201, summary="Propose putting something on a list")
async def propose_listing(
    request: Request, me: Officer, list_name: ListName, body: ListEntryIn, key: IdempotencyKey
) -> ApprovalOut:
    """Approved, it takes effect at once; one of our accounts put on the police list is
    suspended in the same transaction."""
    vault = vault_of(request)

    def propose(tx: Tx) -> int:
        found, label = lists.target(
            tx.conn, vault, account=body.account, bank=body.bank, customer_id=body.customer_id,
            device_hash=body.device_hash, ip=body.ip, merchant_id=body.merchant_id,
        )  # fmt: skip
        command = lists.propose_add(list_name, found, label, reason=body.reason, maker=me.actor)
        return command.fn(tx)

    return await _propose(request, me, key, body, Command(propose))


@router.post(
    "/lists/{list_name}/{entry_id}/remove", status_code=201, summary="Propose removing an entry"
)
async def propose_removal(
    request: Request, me: Officer, list_name: ListName, entry_id: ObjectId, body: ReasonIn,
    key: IdempotencyKey,
) -> ApprovalOut:  # fmt: skip
    """Removal does not reinstate a suspended account (account.reinstate does)."""

    def propose(tx: Tx) -> int:
        if lists.get_entry(tx.conn, entry_id).list != list_name:
            raise EbankError("RISK_LIST_ENTRY_NOT_FOUND")
        return lists.propose_remove(entry_id, reason=body.reason, maker=me.actor).fn(tx)

    return await _propose(request, me, key, body, Command(propose))
