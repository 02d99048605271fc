"""The payee book: adding a payee takes the SMS code sent for exactly that payee, once; numbers
are sealed and masked; someone else's payee is unknown. SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select

from ebank.accounts.models import CustomerAccount
from ebank.core import audit
from ebank.core.errors import EbankError
from ebank.core.tables import audit_log
from ebank.payments import service as payments
from ebank.security.service import Checked
from ebank.standing import payees
from ebank.standing.tables import payees as payees_table
from tests.standing.conftest import Holder, StandingBank
from tests.support import VAULT, last_sms, wait_to_resend

OTHER_BANK = "999200000025"


def add(holder: Holder, account: str, name: str, code: str, key: str, **extra: str) -> Checked[int]:
    return holder.bank.writer.execute(
        payees.add(
            VAULT, customer_id=holder.id, channel="online", account=account, name=name,
            code=code, idempotency_key=key, **extra,  # type: ignore[arg-type]
        )
    )  # fmt: skip


def book(bank: StandingBank, holder: Holder) -> list[payees.PayeeView]:
    with bank.engine.connect() as conn:
        return payees.payees_of(conn, holder.id)


def refused(holder: Holder, code: str, *args: str, **extra: str) -> None:
    """Adding is refused with `code` and the book is unchanged."""
    before = book(holder.bank, holder)
    with pytest.raises(EbankError) as caught:
        add(holder, *args, **extra).value()  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value
    assert book(holder.bank, holder) == before


def test_a_payee_is_added_with_the_code_sent_for_it_and_shown_masked(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    name = bank.name_of(bob.customer_id)
    code = alice.payee_code(bob.number, name)
    assert name in last_sms(bank.engine) and bob.number[-4:] in last_sms(bank.engine)
    payee_id = add(alice, bob.number, name, code, "k1", alias="房东").value()
    [entry] = book(bank, alice)
    assert (entry.id, entry.name, entry.alias, entry.bank) == (payee_id, name, "房东", None)
    assert entry.account != bob.number and entry.account.endswith(bob.number[-4:])
    assert entry.created_at == bank.clock.now()
    # The same request under the same key is the first answer, not a second payee.
    assert add(alice, bob.number, name, code, "k1", alias="房东").value() == payee_id
    assert len(book(bank, alice)) == 1
    with bank.engine.connect() as conn:
        row = conn.execute(select(payees_table).where(payees_table.c.id == payee_id)).one()
        actions = conn.execute(select(audit_log.c.action)).scalars().all()
        assert audit.verify(conn).ok
    assert bob.number not in row.account_sealed
    # Found by the keyed hash payments keep: risk can tell a payment to a payee in the book.
    assert row.account_hash == VAULT.lookup_hash(bob.number, purpose=payments.PAYEE_PURPOSE)
    assert "payee.add" in actions


@pytest.mark.parametrize("change", ["account", "name", "bank", "code"])
def test_a_code_sent_for_one_payee_adds_no_other(
    bank: StandingBank, alice: Holder, bob: CustomerAccount, change: str
) -> None:
    name = bank.name_of(bob.customer_id)
    code = alice.payee_code(bob.number, name)
    asked = {"account": bob.number, "name": name, "code": code}
    if change == "account":
        asked["account"] = bank.account(bank.person(), funds=0).number
    elif change == "name":
        asked["name"] = "李四"
    elif change == "code":
        asked["code"] = "000000" if code != "000000" else "111111"
    extra = {"bank": OTHER_BANK} if change == "bank" else {}
    refused(alice, "AUTH_FAILED", asked["account"], asked["name"], asked["code"], "k", **extra)


def test_a_code_adds_a_payee_once(bank: StandingBank, alice: Holder, bob: CustomerAccount) -> None:
    name = bank.name_of(bob.customer_id)
    code = alice.payee_code(bob.number, name)
    payee_id = add(alice, bob.number, name, code, "k1").value()
    bank.writer.execute(payees.remove(customer_id=alice.id, payee_id=payee_id, channel="online"))
    refused(alice, "AUTH_FAILED", bob.number, name, code, "k2")


def test_a_payee_already_in_the_book_is_refused_and_spends_no_code(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    alice.add_payee(bob)
    name = bank.name_of(bob.customer_id)
    wait_to_resend(bank.clock)
    code = alice.payee_code(bob.number, name)
    refused(alice, "PAYEE_ENTRY_EXISTS", f" {bob.number} ", name, code, "k2")
    # The same account number at another bank is another payee.
    wait_to_resend(bank.clock)
    other = alice.payee_code(bob.number, name, OTHER_BANK)
    assert add(alice, bob.number, name, other, "k3", bank=OTHER_BANK).value() > 0
    assert [p.bank for p in book(bank, alice)] == [None, OTHER_BANK]


def test_someone_elses_payee_is_unknown_and_cannot_be_removed(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    payee_id = alice.add_payee(bob)
    mallory = Holder(bank, funds=0)
    with pytest.raises(EbankError) as caught:
        bank.writer.execute(
            payees.remove(customer_id=mallory.id, payee_id=payee_id, channel="online")
        )
    assert caught.value.code == "PAYEE_ENTRY_NOT_FOUND"
    with bank.engine.connect() as conn, pytest.raises(EbankError) as caught:
        payees.entry(conn, VAULT, customer_id=mallory.id, payee_id=payee_id)
    assert caught.value.code == "PAYEE_ENTRY_NOT_FOUND"
    assert book(bank, mallory) == [] and [p.id for p in book(bank, alice)] == [payee_id]


def test_removing_a_payee_takes_it_out_of_the_book_and_again_changes_nothing(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    payee_id = alice.add_payee(bob)
    remove = payees.remove(customer_id=alice.id, payee_id=payee_id, channel="online")
    bank.writer.execute(remove)
    bank.writer.execute(remove)
    assert book(bank, alice) == []
    with bank.engine.connect() as conn:
        removed = payees.entry(conn, VAULT, customer_id=alice.id, payee_id=payee_id)
    assert removed.removed and removed.account == bob.number
    wait_to_resend(bank.clock)
    assert alice.add_payee(bob, key="again") != payee_id  # added again: a new payee


@pytest.mark.parametrize(
    ("account", "name", "extra"),
    [
        ("6217-0010", "张三", {}),
        ("6217001000000000001", "a=b", {}),
        ("6217001000000000001", "张\n三", {}),
        ("6217001000000000001", "", {}),
        ("6217001000000000001", "张三", {"bank": "12345"}),
        ("6217001000000000001", "张三", {"alias": "x" * 31}),
    ],
)
def test_bad_details_are_refused_and_add_nothing(
    bank: StandingBank, alice: Holder, account: str, name: str, extra: dict[str, str]
) -> None:
    refused(alice, "INVALID_INPUT", account, name, "123456", "k1", **extra)


def test_adding_a_payee_moves_no_money_and_counts_no_limit(
    bank: StandingBank, alice: Holder, bob: CustomerAccount
) -> None:
    before = bank.balance(alice.account), bank.usage(alice.id)
    alice.add_payee(bob)
    assert (bank.balance(alice.account), bank.usage(alice.id)) == before
    assert bank.balance(bob) == 0
