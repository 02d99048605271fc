"""Registering and finding customers: numbers sealed at rest, masked on the way out, one
customer per identity number, every registration audited."""

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ebank.core import audit
from ebank.core.clock import FixedClock
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Command, Writer
from ebank.customers.identity import check_digit_for, credit_check_for
from ebank.customers.models import CustomerView, Kind
from ebank.customers.service import (
    find_by_id_number,
    find_by_mobile,
    get_customer,
    register_enterprise,
    register_individual,
)
from ebank.customers.tables import customers
from tests.support import in_one_batch

VAULT = Vault(bytes(range(32)))
OTHER_VAULT = Vault(bytes(range(1, 33)))
TODAY = date(2026, 11, 23)  # the business day of the `clock` fixture

PERSON_ID = "11010519491231002X"
PERSON_MOBILE = "13812345678"
CODE = "91350100M000100Y43"
COMPANY_MOBILE = "15900001111"


def person_id(sequence: int, born: str = "19900615") -> str:
    first17 = f"440305{born}{sequence:03d}"
    return first17 + check_digit_for(first17)


def individual(
    *, name: str = "张三", id_number: str = PERSON_ID, mobile: str = PERSON_MOBILE
) -> Command[CustomerView]:
    return register_individual(
        VAULT, name=name, id_number=id_number, mobile=mobile, actor="staff:7"
    )


def enterprise(**changes: Any) -> Command[CustomerView]:
    values: dict[str, Any] = {
        "name": "福州示例科技有限公司",
        "credit_code": CODE,
        "legal_representative": "欧阳锋",
        "mobile": COMPANY_MOBILE,
        "actor": "staff:7",
        "channel": "counter",
    }
    values |= changes
    return register_enterprise(VAULT, **values)


def refused(writer: Writer, command: Command[Any], code: str) -> EbankError:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code
    return caught.value


def customer_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(customers).order_by(customers.c.id)).mappings().all()
        return [dict(r) for r in rows]


def audit_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
        return [dict(r) for r in rows]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def nothing_written(engine: Engine) -> bool:
    return count(engine, customers) == 0 and count(engine, audit_log) == 0


def find(engine: Engine, kind: Kind, number: str, vault: Vault = VAULT) -> CustomerView | None:
    with engine.connect() as conn:
        return find_by_id_number(conn, vault, kind, number, today=TODAY)


# -- registering -----------------------------------------------------------------------------
def test_registering_an_individual_returns_a_masked_view(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    view = writer.execute(individual())
    assert view.kind == "individual"
    assert view.name == "张三"
    assert view.id_number_masked == "110105********002X"
    assert view.mobile_masked == "138****5678"
    assert view.legal_representative is None
    assert view.created_at == clock.now()
    with engine.connect() as conn:
        assert get_customer(conn, VAULT, view.id) == view


def test_registering_an_enterprise_returns_a_masked_view(writer: Writer, engine: Engine) -> None:
    view = writer.execute(enterprise())
    assert view.kind == "enterprise"
    assert view.name == "福州示例科技有限公司"
    assert view.id_number_masked == "913501********0Y43"
    assert view.mobile_masked == "159****1111"
    assert view.legal_representative == "欧阳锋"
    with engine.connect() as conn:
        assert get_customer(conn, VAULT, view.id) == view


def test_the_database_holds_no_plain_identity_or_mobile_number(
    writer: Writer, engine: Engine
) -> None:
    writer.execute(individual())
    writer.execute(enterprise())
    secrets = [PERSON_ID, "19491231", PERSON_MOBILE, CODE, COMPANY_MOBILE]
    rows = customer_rows(engine) + audit_rows(engine)
    assert len(rows) == 4
    for row in rows:
        for column, value in row.items():
            for secret in secrets:
                assert secret not in str(value), f"{secret} found in {column}"
    # ... yet the sealed columns open with the key.
    person, company = customer_rows(engine)
    assert VAULT.decrypt(person["id_number_sealed"], purpose="customers.id_number") == PERSON_ID
    assert VAULT.decrypt(company["mobile_sealed"], purpose="customers.mobile") == COMPANY_MOBILE


def test_the_same_id_twice_is_refused_and_nothing_more_is_written(
    writer: Writer, engine: Engine
) -> None:
    first = writer.execute(individual())
    refused(writer, individual(name="李四", mobile="13900000000"), "CUSTOMER_EXISTS")
    assert [r["id"] for r in customer_rows(engine)] == [first.id]
    assert count(engine, audit_log) == 1


@pytest.mark.parametrize(
    "same", [" 11010519491231002x ", "11010519491231002x", "\t11010519491231002X\n"]
)
def test_the_same_id_written_differently_is_the_same_customer(
    writer: Writer, engine: Engine, same: str
) -> None:
    writer.execute(individual())
    refused(writer, individual(id_number=same, name="李四"), "CUSTOMER_EXISTS")
    assert count(engine, customers) == 1


def test_the_same_credit_code_in_lower_case_is_the_same_enterprise(
    writer: Writer, engine: Engine
) -> None:
    writer.execute(enterprise())
    refused(writer, enterprise(credit_code=" " + CODE.lower(), name="另一家"), "CUSTOMER_EXISTS")
    assert count(engine, customers) == 1


def test_the_same_id_with_full_width_digits_is_not_a_second_customer(
    writer: Writer, engine: Engine
) -> None:
    writer.execute(individual())
    full_width = (
        PERSON_ID[0]
        + PERSON_ID[1:17].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        + PERSON_ID[17]
    )
    with pytest.raises(EbankError) as caught:
        writer.execute(individual(id_number=full_width, name="李四"))
    assert caught.value.code in {"INVALID_INPUT", "CUSTOMER_EXISTS"}
    assert count(engine, customers) == 1


def test_two_registrations_of_one_id_in_one_batch_make_one_customer(
    writer: Writer, engine: Engine
) -> None:
    outcomes = in_one_batch(
        writer,
        [
            individual(name="张三"),
            individual(name="张三", id_number=PERSON_ID.lower()),
            individual(name="王五", id_number=person_id(1)),
        ],
    )
    first, second, other = outcomes
    assert isinstance(first, CustomerView)
    assert isinstance(second, EbankError) and second.code == "CUSTOMER_EXISTS"
    assert isinstance(other, CustomerView)
    assert [r["id"] for r in customer_rows(engine)] == [first.id, other.id]
    assert count(engine, audit_log) == 2


# -- invalid input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"id_number": PERSON_ID[:17] + "1"},
        {"id_number": PERSON_ID[:17]},
        {"id_number": person_id(1, born="20300101")},
        {"mobile": "12812345678"},
        {"mobile": "1381234567"},
        {"mobile": ""},
        {"name": ""},
        {"name": "   "},
        {"name": "张" * 101},
        {"name": "张三\n管理员"},
        {"name": "张三\tx"},
    ],
    ids=[
        "bad-check-digit",
        "short-id",
        "future-birth",
        "12x-mobile",
        "10-digit-mobile",
        "empty-mobile",
        "empty-name",
        "blank-name",
        "overlong-name",
        "newline-in-name",
        "tab-in-name",
    ],
)
def test_invalid_individual_input_is_refused_and_nothing_written(
    writer: Writer, engine: Engine, changes: dict[str, str]
) -> None:
    values = {"name": "张三", "id_number": PERSON_ID, "mobile": PERSON_MOBILE} | changes
    error = refused(writer, individual(**values), "INVALID_INPUT")
    assert PERSON_ID not in str(error) and PERSON_MOBILE not in str(error)
    assert nothing_written(engine)


@pytest.mark.parametrize(
    "changes",
    [
        {"credit_code": CODE[:17] + "0"},
        {"credit_code": PERSON_ID},
        {"mobile": "10012345678"},
        {"name": ""},
        {"name": "公" * 101},
        {"name": "示例\r\n公司"},
        {"legal_representative": ""},
        {"legal_representative": "  "},
        {"legal_representative": None},
        {"legal_representative": "欧阳\n锋"},
    ],
    ids=[
        "bad-check",
        "resident-id-as-code",
        "bad-mobile",
        "empty-name",
        "overlong-name",
        "newline-in-name",
        "no-representative",
        "blank-representative",
        "none-representative",
        "newline-in-representative",
    ],
)
def test_invalid_enterprise_input_is_refused_and_nothing_written(
    writer: Writer, engine: Engine, changes: dict[str, Any]
) -> None:
    refused(writer, enterprise(**changes), "INVALID_INPUT")
    assert nothing_written(engine)


def test_a_name_of_exactly_100_characters_is_accepted(writer: Writer, engine: Engine) -> None:
    name = "欧" * 100
    assert writer.execute(individual(name=name)).name == name
    assert customer_rows(engine)[0]["name"] == name


def test_names_are_stored_as_given_markup_included(writer: Writer, engine: Engine) -> None:
    name = "<script>alert(1)</script>"
    view = writer.execute(individual(name=f"  {name} "))
    assert view.name == name
    assert customer_rows(engine)[0]["name"] == name
    with engine.connect() as conn:
        assert get_customer(conn, VAULT, view.id).name == name


# -- audit -----------------------------------------------------------------------------------
def test_registration_is_audited_with_the_masked_number_only(
    writer: Writer, engine: Engine
) -> None:
    person = writer.execute(individual())
    company = writer.execute(enterprise(channel="web"))
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert result.ok and result.records == 2

    first, second = audit_rows(engine)
    assert (first["actor"], first["action"], first["channel"]) == (
        "staff:7",
        "customer.register",
        "counter",
    )
    assert first["subject"] == f"customer:{person.id}"
    assert first["outcome"] == "ok"
    assert json.loads(first["detail"]) == {"kind": "individual", "id_number": "110105********002X"}
    assert second["subject"] == f"customer:{company.id}"
    assert second["channel"] == "web"
    assert json.loads(second["detail"]) == {"kind": "enterprise", "id_number": "913501********0Y43"}
    for row in (first, second):
        for secret in (PERSON_ID, "19491231", PERSON_MOBILE, CODE, COMPANY_MOBILE):
            assert secret not in row["detail"]


# -- finding ---------------------------------------------------------------------------------
def test_get_customer_of_an_unknown_id_is_not_found(writer: Writer, engine: Engine) -> None:
    view = writer.execute(individual())
    with engine.connect() as conn, pytest.raises(EbankError) as caught:
        get_customer(conn, VAULT, view.id + 1000)
    assert caught.value.code == "CUSTOMER_NOT_FOUND"


def test_find_by_id_number_finds_each_kind(writer: Writer, engine: Engine) -> None:
    person = writer.execute(individual())
    company = writer.execute(enterprise())
    writer.execute(individual(name="王五", id_number=person_id(2), mobile="13700000000"))

    assert find(engine, Kind.INDIVIDUAL, PERSON_ID) == person
    assert find(engine, Kind.INDIVIDUAL, " 11010519491231002x ") == person
    assert find(engine, Kind.ENTERPRISE, CODE) == company
    assert find(engine, Kind.ENTERPRISE, CODE.lower()) == company


def test_find_by_id_number_of_an_unknown_valid_number_is_none(
    writer: Writer, engine: Engine
) -> None:
    writer.execute(individual())
    writer.execute(enterprise())
    assert find(engine, Kind.INDIVIDUAL, person_id(3)) is None
    other_code = "91350100M000100Y5"
    assert find(engine, Kind.ENTERPRISE, other_code + credit_check_for(other_code)) is None


def test_find_by_id_number_refuses_an_invalid_number(writer: Writer, engine: Engine) -> None:
    writer.execute(individual())
    with engine.connect() as conn:
        for kind, number in [(Kind.INDIVIDUAL, PERSON_ID[:17] + "1"), (Kind.ENTERPRISE, "x")]:
            with pytest.raises(EbankError) as caught:
                find_by_id_number(conn, VAULT, kind, number, today=TODAY)
            assert caught.value.code == "INVALID_INPUT"


def test_find_by_id_number_returns_only_a_customer_of_the_kind_asked_for(
    writer: Writer, engine: Engine
) -> None:
    # 110105199001110003 passes both checks: a valid credit code and a valid resident ID.
    both = "110105199001110003"
    company = writer.execute(enterprise(credit_code=both))
    assert find(engine, Kind.ENTERPRISE, both) == company
    # No individual holds this resident ID: the enterprise must not be returned as one.
    assert find(engine, Kind.INDIVIDUAL, both) is None
    # And a person whose resident ID reads the same is a different customer, not a duplicate.
    person = writer.execute(individual(id_number=both))
    assert person.id != company.id
    assert find(engine, Kind.INDIVIDUAL, both) == person
    assert find(engine, Kind.ENTERPRISE, both) == company


def test_a_vault_with_another_key_cannot_find_the_customer(writer: Writer, engine: Engine) -> None:
    writer.execute(individual())
    writer.execute(enterprise())
    assert find(engine, Kind.INDIVIDUAL, PERSON_ID, vault=OTHER_VAULT) is None
    assert find(engine, Kind.ENTERPRISE, CODE, vault=OTHER_VAULT) is None
    with engine.connect() as conn:
        assert find_by_mobile(conn, OTHER_VAULT, PERSON_MOBILE) == []
    assert OTHER_VAULT.lookup_hash(PERSON_ID, purpose="customers.id_number") != VAULT.lookup_hash(
        PERSON_ID, purpose="customers.id_number"
    )


def test_find_by_mobile_returns_every_customer_sharing_it(writer: Writer, engine: Engine) -> None:
    father = writer.execute(individual(name="张三"))
    writer.execute(individual(name="李四", id_number=person_id(4), mobile="13900000000"))
    son = writer.execute(
        individual(
            name="张小三", id_number=person_id(5, born="20100101"), mobile="+86 138 1234 5678"
        )
    )
    company = writer.execute(enterprise(mobile="138-1234-5678"))
    with engine.connect() as conn:
        assert find_by_mobile(conn, VAULT, PERSON_MOBILE) == [father, son, company]
        assert find_by_mobile(conn, VAULT, "+8613812345678") == [father, son, company]
        assert find_by_mobile(conn, VAULT, "13600000000") == []
        with pytest.raises(EbankError) as caught:
            find_by_mobile(conn, VAULT, "12345")
    assert caught.value.code == "INVALID_INPUT"
