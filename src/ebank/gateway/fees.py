"""The gateway's fee plans and what a payment costs the merchant (DOMAIN.md §5: B2B 0.1% or
¥5 per payment, B2C 0.2%-0.3%).

A fee is taken on money as it reaches the merchant (an instant payment, an escrow release, a
capture), never on a refund, and is not returned by one. Rounding: the rate's part is rounded
half up to the fen, the fixed part added, then the plan's minimum and maximum applied; a fee
never exceeds the payment it is taken on.

A new plan is a bank parameter like the limits: one member of staff proposes it
(`propose_plan`) and another approves it in the approvals queue (`ops.approvals`).
"""

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from ebank.core import audit
from ebank.core.errors import EbankError, checked_text
from ebank.core.money import MAX_MINOR
from ebank.core.writer import Command, Tx
from ebank.gateway.tables import fee_plans
from ebank.ops import approvals

PPM = 1_000_000
_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")  # as in B2C-0.25


@dataclass(frozen=True, slots=True)
class FeePlan:
    code: str
    name: str
    rate_ppm: int  # parts per million of the amount: 0.1% is 1000
    fixed: int  # fen per payment
    minimum: int  # fen
    maximum: int | None  # fen; None: no cap

    def fee_of(self, amount: int) -> int:
        """The fee on a payment of `amount` fen."""
        fee = (amount * self.rate_ppm + PPM // 2) // PPM + self.fixed
        fee = max(fee, self.minimum)
        if self.maximum is not None:
            fee = min(fee, self.maximum)
        return min(fee, amount)


DEFAULT_PLANS = (
    FeePlan("B2B-RATE", "B2B 0.1%", 1000, 0, 0, None),
    FeePlan("B2B-FIXED", "B2B ¥5 per payment", 0, 500, 0, None),
    FeePlan("B2C-0.20", "B2C 0.20%", 2000, 0, 0, None),
    FeePlan("B2C-0.25", "B2C 0.25%", 2500, 0, 0, None),
    FeePlan("B2C-0.30", "B2C 0.30%", 3000, 0, 0, None),
)


def _view(row: Any) -> FeePlan:
    return FeePlan(row.code, row.name, row.rate_ppm, row.fixed, row.minimum, row.maximum)


_PLAN = select(fee_plans).where(fee_plans.c.code == bindparam("code"))  # every payment's fee


def plan(conn: Connection, code: str) -> FeePlan:
    row = conn.execute(_PLAN, {"code": code}).first()
    if row is None:
        raise EbankError("FEE_PLAN_NOT_FOUND", code=str(code)[:24])
    return _view(row)


def plans(conn: Connection) -> list[FeePlan]:
    return [_view(r) for r in conn.execute(select(fee_plans).order_by(fee_plans.c.code))]


def _insert(tx: Tx, p: FeePlan, actor: str) -> None:
    tx.conn.execute(
        fee_plans.insert().values(
            code=p.code, name=p.name, rate_ppm=p.rate_ppm, fixed=p.fixed, minimum=p.minimum,
            maximum=p.maximum, created_by=actor, created_at=tx.now,
        )
    )  # fmt: skip


def ensure_plans(tx: Tx) -> None:
    """Seed the default plans that are missing (`ebank db upgrade`, the demo)."""
    have = set(tx.conn.execute(select(fee_plans.c.code)).scalars())
    for p in DEFAULT_PLANS:
        if p.code not in have:
            _insert(tx, p, "system")


def _checked(tx: Tx, p: FeePlan) -> FeePlan:
    """The plan as it may be made: a free code, a name, figures in range; else the refusal."""
    code = p.code if isinstance(p.code, str) else ""
    if not 0 < len(code) <= 24 or not set(code) <= _CODE_CHARS:
        raise EbankError("INVALID_INPUT", reason="a plan code is 1-24 of A-Z, 0-9, '-' and '.'")
    name = checked_text(p.name, "a plan name", 60)
    numbers = (p.rate_ppm, p.fixed, p.minimum, 0 if p.maximum is None else p.maximum)
    if any(type(n) is not int or not 0 <= n <= MAX_MINOR for n in numbers):
        raise EbankError("INVALID_INPUT", reason="rate and amounts are non-negative integers")
    if p.rate_ppm > 100_000:
        raise EbankError("INVALID_INPUT", reason="a rate is at most 10% (100000 ppm)")
    if p.maximum is not None and p.maximum < p.minimum:
        raise EbankError("INVALID_INPUT", reason="the maximum is below the minimum")
    if tx.conn.execute(select(fee_plans.c.code).where(fee_plans.c.code == code)).first():
        raise EbankError("FEE_PLAN_EXISTS", code=code)
    return FeePlan(code, name, p.rate_ppm, p.fixed, p.minimum, p.maximum)


def _make(tx: Tx, p: FeePlan, actor: str, channel: str) -> FeePlan:
    made = _checked(tx, p)
    _insert(tx, made, actor)
    audit.record(
        tx, actor=actor, action="gateway.fee_plan.add", subject=f"fee_plan:{made.code}",
        channel=channel, detail={"rate_ppm": p.rate_ppm, "fixed": p.fixed,
                                 "minimum": p.minimum, "maximum": p.maximum},
    )  # fmt: skip
    return made


# -- a new plan under maker-checker -----------------------------------------------------------
PLAN_ACTION = "gateway.fee_plan.add"


def _plan_of(params: dict[str, Any]) -> FeePlan:
    if set(params) != set(FeePlan.__slots__):
        raise EbankError("INVALID_INPUT", reason=f"a fee plan has exactly {FeePlan.__slots__}")
    return FeePlan(**params)


def propose_plan(p: FeePlan, *, reason: str, maker: str, channel: str = "console") -> Command[int]:
    """Ask for a new plan (checked now, made when another member of staff approves it): fees
    are bank parameters, changed under maker-checker like the limits. Plans are never changed:
    a merchant moves to another plan instead, so every fee already taken still matches the
    plan it names."""
    return approvals.propose(PLAN_ACTION, asdict(p), reason=reason, maker=maker, channel=channel)


def _proposed(tx: Tx, params: dict[str, Any]) -> str:
    return f"fee_plan:{_checked(tx, _plan_of(params)).code}"


def _approved(tx: Tx, params: dict[str, Any], checker: str) -> FeePlan:
    return _make(tx, _plan_of(params), checker, "console")


approvals.register(PLAN_ACTION, _approved, subject=_proposed)
