"""Bank parameters (docs/decisions.md §16): numbers a domain declares with a default in code;
staff change one under maker-checker ("parameter.set"), one proposing and another approving;
a bad proposal is refused at once and changes nothing; the audit chain holds every change's
old and new value.

Every database test runs on SQLite and PostgreSQL."""

import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

import ebank.app  # noqa: F401  (imports every domain: every parameter is defined)
from ebank.core import audit
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.ops import approvals, parameters
from ebank.ops.tables import approval_requests, bank_parameters

MAKER = "staff:7"
CHECKER = "staff:9"
SMS_DAILY = "limits.method.sms.daily"
SMS_DEFAULT = 20_000 * 100


# -- helpers ------------------------------------------------------------------------------
def value(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return parameters.values(conn, name)[name]


def propose(writer: Writer, params: dict[str, Any], maker: str = MAKER) -> int:
    return writer.execute(
        approvals.propose("parameter.set", params, reason="监管新规", maker=maker)
    )


def change(writer: Writer, name: str, new: int) -> int:
    """Propose as MAKER and approve as CHECKER; what the approval answers."""
    request = propose(writer, {"name": name, "value": new})
    return writer.execute(approvals.approve(request, checker=CHECKER))


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(bank_parameters)).mappings()]


def requests(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(approval_requests)).scalar_one()


def audited(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        ).mappings()
        return [{**r, "detail": json.loads(r["detail"])} for r in found]


def refused(writer: Writer, params: dict[str, Any], code: str = "INVALID_INPUT") -> EbankError:
    with pytest.raises(EbankError) as caught:
        propose(writer, params)
    assert caught.value.code == code, caught.value
    return caught.value


# -- defaults -----------------------------------------------------------------------------
def test_a_parameter_reads_its_default_while_no_row_exists(writer: Writer, engine: Engine) -> None:
    assert rows(engine) == []
    with engine.connect() as conn:
        limits = parameters.values(conn, "limits.")
    assert limits[SMS_DAILY] == SMS_DEFAULT
    assert limits["limits.tier.II.daily"] == 10_000 * 100
    assert limits["limits.large_warning.enterprise.daily"] == 1_000_000 * 100
    assert all(name.startswith("limits.") for name in limits)
    # Every defined parameter says what it is, and its default is within range.
    defined = {p.name: p for p in parameters.defined()}
    assert set(limits) <= set(defined)
    assert all(p.meaning and 0 <= p.default <= parameters.MAX_VALUE for p in defined.values())


def test_values_reads_only_the_family_asked_for(writer: Writer, engine: Engine) -> None:
    with engine.connect() as conn:
        assert set(parameters.values(conn, "limits.method.")) == {
            "limits.method.sms.daily",
            "limits.method.token.daily",
            "limits.method.certificate.daily",
        }
        assert parameters.values(conn, "no.such.family.") == {}


def test_every_parameter_is_an_amount_in_fen_but_the_ones_that_say_otherwise() -> None:
    """The unit decides how the console shows and reads a value: a count left at the default
    unit would be shown and typed as yuan, so the parameters that are not money are named."""
    units = {p.name: p.unit for p in parameters.defined()}
    assert {name for name, unit in units.items() if unit != parameters.Unit.FEN} == {
        "complaints.due_days"
    }
    assert units[SMS_DAILY] == units["cards.credit_line.alone_max"] == parameters.Unit.FEN
    assert parameters.definition("cards.credit_line.alone_max").money  # type: ignore[union-attr]
    assert not parameters.definition("complaints.due_days").money  # type: ignore[union-attr]
    assert parameters.definition("no.such.parameter") is None
    assert parameters.definition(["limits.method.sms.daily"]) is None


def test_defining_a_parameter_twice_or_out_of_range_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="already defined"):
        parameters.define(SMS_DAILY, 1, "again")
    with pytest.raises(ValueError, match="out of range"):
        parameters.define("tests.negative", -1, "below zero")
    with pytest.raises(ValueError, match="out of range"):
        parameters.define("tests.huge", parameters.MAX_VALUE + 1, "too big")
    assert "tests.negative" not in {p.name for p in parameters.defined()}


# -- maker-checker ------------------------------------------------------------------------
def test_a_change_proposed_by_one_and_approved_by_another_takes_effect(
    writer: Writer, engine: Engine
) -> None:
    request = propose(writer, {"name": SMS_DAILY, "value": 10_000 * 100})
    assert value(engine, SMS_DAILY) == SMS_DEFAULT  # a proposal alone changes nothing
    assert writer.execute(approvals.approve(request, checker=CHECKER)) == 10_000 * 100
    assert value(engine, SMS_DAILY) == 10_000 * 100
    [row] = rows(engine)
    assert (row["name"], row["value"], row["changed_by"]) == (SMS_DAILY, 10_000 * 100, CHECKER)
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "approved"
        assert approvals.get(conn, request).subject == f"parameter:{SMS_DAILY}"


def test_a_second_change_updates_the_one_row(writer: Writer, engine: Engine) -> None:
    change(writer, SMS_DAILY, 1)
    change(writer, SMS_DAILY, 0)
    assert value(engine, SMS_DAILY) == 0
    assert [(r["name"], r["value"]) for r in rows(engine)] == [(SMS_DAILY, 0)]


def test_the_limits_of_zero_and_the_maximum_are_accepted(writer: Writer, engine: Engine) -> None:
    change(writer, SMS_DAILY, parameters.MAX_VALUE)
    assert value(engine, SMS_DAILY) == parameters.MAX_VALUE
    change(writer, SMS_DAILY, 0)
    assert value(engine, SMS_DAILY) == 0


def test_the_maker_cannot_approve_their_own_change(writer: Writer, engine: Engine) -> None:
    request = propose(writer, {"name": SMS_DAILY, "value": 1})
    with pytest.raises(EbankError) as caught:
        writer.execute(approvals.approve(request, checker=MAKER))
    assert caught.value.code == "SAME_MAKER_AND_CHECKER"
    assert value(engine, SMS_DAILY) == SMS_DEFAULT
    assert rows(engine) == []
    assert audited(engine, "parameter.set") == []
    with engine.connect() as conn:
        assert approvals.get(conn, request).status == "pending"


def test_a_rejected_change_leaves_the_value(writer: Writer, engine: Engine) -> None:
    request = propose(writer, {"name": SMS_DAILY, "value": 1})
    writer.execute(approvals.reject(request, checker=CHECKER, note="no reason given"))
    assert value(engine, SMS_DAILY) == SMS_DEFAULT
    assert rows(engine) == []


@pytest.mark.parametrize(
    "params",
    [
        {"name": "limits.no.such.thing", "value": 1},
        {"name": "", "value": 1},
        {"name": 17, "value": 1},
        {"name": SMS_DAILY, "value": -1},
        {"name": SMS_DAILY, "value": "100"},
        {"name": SMS_DAILY, "value": 1.0},
        {"name": SMS_DAILY, "value": 2.5},
        {"name": SMS_DAILY, "value": True},
        {"name": SMS_DAILY, "value": False},
        {"name": SMS_DAILY, "value": None},
        {"name": SMS_DAILY, "value": parameters.MAX_VALUE + 1},
        {"name": SMS_DAILY, "value": 10**30},
        {"name": SMS_DAILY},
        {"value": 1},
        {"name": SMS_DAILY, "value": 1, "extra": 1},
    ],
    ids=lambda p: repr(p)[:60],
)
def test_a_bad_proposal_is_refused_at_once_and_nothing_changes(
    writer: Writer, engine: Engine, params: dict[str, Any]
) -> None:
    refused(writer, params)
    assert requests(engine) == 0
    assert rows(engine) == []
    assert value(engine, SMS_DAILY) == SMS_DEFAULT
    assert audited(engine, "parameter.set.propose") == []


# -- audit --------------------------------------------------------------------------------
def test_each_change_is_audited_with_its_old_and_new_value(writer: Writer, engine: Engine) -> None:
    change(writer, SMS_DAILY, 15_000 * 100)
    change(writer, SMS_DAILY, 5_000 * 100)
    changes = audited(engine, "parameter.set")
    assert [(c["actor"], c["subject"], c["detail"]) for c in changes] == [
        (CHECKER, f"parameter:{SMS_DAILY}", {"from": SMS_DEFAULT, "to": 15_000 * 100}),
        (CHECKER, f"parameter:{SMS_DAILY}", {"from": 15_000 * 100, "to": 5_000 * 100}),
    ]
    assert [c["actor"] for c in audited(engine, "parameter.set.propose")] == [MAKER, MAKER]
    assert [c["actor"] for c in audited(engine, "parameter.set.approve")] == [CHECKER, CHECKER]
    with engine.connect() as conn:
        assert audit.verify(conn).ok
