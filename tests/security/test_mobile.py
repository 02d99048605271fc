"""Changing a customer's mobile number at the counter, and the SIM-swap defence it arms: for
72 hours an SMS-confirmed transfer is held for review. SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.core.writer import Writer
from ebank.customers import service as customers
from ebank.risk import lists  # noqa: F401 (registers the watch lists' maker-checker actions)
from ebank.security import mobile
from tests.payments.support import YUAN, Payer, PaymentsBank
from tests.support import STAFF, VAULT, last_sms

NEW = "13912345678"


@pytest.fixture
def bank(writer: Writer, engine: Engine, clock: FixedClock) -> PaymentsBank:
    return PaymentsBank(writer, engine, clock)


@pytest.fixture
def alice(bank: PaymentsBank) -> Payer:
    return Payer(bank)


def change(bank: PaymentsBank, customer_id: int, number: str = NEW) -> object:
    return bank.writer.execute(
        mobile.change_at_counter(VAULT, customer_id=customer_id, mobile=number, actor=STAFF)
    )


def test_a_new_number_is_recorded_audited_and_texted(bank: PaymentsBank, alice: Payer) -> None:
    view = change(bank, alice.id)
    assert view.mobile_masked == "139****5678"  # type: ignore[attr-defined]
    with bank.engine.connect() as conn:
        assert [c.id for c in customers.find_by_mobile(conn, VAULT, NEW)] == [alice.id]
        detail = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "customer.mobile")
        ).scalar_one()
    assert '"to": "139****5678"' in detail and NEW not in detail
    assert "手机号" in last_sms(bank.engine) and "柜台" in last_sms(bank.engine)


@pytest.mark.parametrize("number", ["13812345678", "1391234567", "+1 555"])
def test_a_bad_or_unchanged_number_is_refused(
    bank: PaymentsBank, alice: Payer, number: str
) -> None:
    with pytest.raises(EbankError) as refused:
        change(bank, alice.id, number)  # 13812345678 is the number the bank has
    assert refused.value.code == "INVALID_INPUT"


def test_an_sms_confirmed_transfer_soon_after_a_change_is_held_and_later_one_is_not(
    bank: PaymentsBank, alice: Payer
) -> None:
    bob = bank.account(bank.person(), funds=0)
    change(bank, alice.id)
    bank.clock.advance(timedelta(hours=2))
    request = alice.request(bob, 100 * YUAN)
    assert alice.paid(request, alice.sms(request), key="soon").status == "review"
    bank.clock.advance(timedelta(hours=71))  # 73 hours after the change
    assert alice.paid(request, alice.sms(request), key="later").status == "completed"


def test_a_sanctioned_customers_number_is_not_changed(bank: PaymentsBank, alice: Payer) -> None:
    bank.decide("risk.list.add", {"list": "sanctioned", "key": f"c:{alice.id}",
                                  "label": "制裁名单"}, reason="名单比对")  # fmt: skip
    with pytest.raises(EbankError) as refused:
        change(bank, alice.id)
    assert refused.value.code == "RISK_REJECTED"
    with bank.engine.connect() as conn:
        assert customers.find_by_mobile(conn, VAULT, NEW) == []
