"""Bank parameters: the numbers a bank sets (limits, thresholds), as data with defaults in code.

A domain declares each parameter it reads with its default, what it means and its unit
(`define`). The default holds until staff change it: a change is a maker-checker action
("parameter.set"), so one person proposes a value and another approves it, and both steps are
audited. The unit tells the channels how to show and read a value: an amount in fen is shown
and typed in yuan, whatever the parameter is called.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.errors import EbankError
from ebank.core.writer import Tx
from ebank.ops import approvals
from ebank.ops.tables import bank_parameters

# A value is an integer in its parameter's unit. Far above any real one.
MAX_VALUE = 10**15


class Unit(StrEnum):
    FEN = "fen"  # an amount of CNY: shown and typed in yuan
    DAYS = "days"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: int
    meaning: str  # what it is, for the staff console and the docs
    unit: Unit

    @property
    def money(self) -> bool:
        return self.unit == Unit.FEN


_DEFINED: dict[str, Parameter] = {}


def define(name: str, default: int, meaning: str, *, unit: Unit = Unit.FEN) -> Parameter:
    """Declare a parameter. Most a bank sets are amounts, so the unit is fen unless told."""
    if name in _DEFINED:
        raise ValueError(f"parameter {name} is already defined")
    if not 0 <= default <= MAX_VALUE:
        raise ValueError(f"parameter {name} has a default out of range")
    _DEFINED[name] = parameter = Parameter(name, default, meaning, Unit(unit))
    return parameter


def defined() -> list[Parameter]:
    return sorted(_DEFINED.values(), key=lambda p: p.name)


def definition(name: object) -> Parameter | None:
    """The parameter called `name`; None if there is none (a forged or stale form's name)."""
    return _DEFINED.get(name) if isinstance(name, str) else None


def values(conn: Connection, prefix: str) -> dict[str, int]:
    """Every parameter whose name starts with `prefix`: the bank's value, else the default."""
    chosen = {name: p.default for name, p in _DEFINED.items() if name.startswith(prefix)}
    # The table holds only the values staff changed, a few rows: read them all with one
    # statement built once, rather than build an IN over every name on each payment.
    chosen.update({name: value for name, value in conn.execute(_CHANGED) if name in chosen})
    return chosen


_CHANGED = select(bank_parameters.c.name, bank_parameters.c.value)


def _subject(tx: Tx, params: dict[str, Any]) -> str:
    if set(params) != {"name", "value"}:
        raise EbankError("INVALID_INPUT", reason="a parameter change names a parameter and value")
    if params["name"] not in _DEFINED:
        raise EbankError("INVALID_INPUT", reason=f"no parameter is called {params['name']!r}")
    value = params["value"]
    if type(value) is not int or not 0 <= value <= MAX_VALUE:
        raise EbankError("INVALID_INPUT", reason=f"a parameter is an integer 0-{MAX_VALUE}")
    return f"parameter:{params['name']}"


def _set(tx: Tx, params: dict[str, Any], checker: str) -> int:
    name, value = params["name"], params["value"]
    before = values(tx.conn, name).get(name)
    row = {"value": value, "changed_by": checker, "changed_at": tx.now}
    done = tx.conn.execute(
        bank_parameters.update().where(bank_parameters.c.name == name).values(row)
    )
    if done.rowcount == 0:
        tx.conn.execute(bank_parameters.insert().values(name=name, **row))
    audit.record(
        tx, actor=checker, action="parameter.set", subject=f"parameter:{name}",
        channel="console", detail={"from": before, "to": value},
    )  # fmt: skip
    return value


approvals.register("parameter.set", _set, subject=_subject)
