"""Watch lists under maker-checker: a police-designated account of ours is suspended when
listed, and payments to a listed account elsewhere are blocked. SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select

from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log
from ebank.ledger import queries
from ebank.ops import approvals
from ebank.risk import lists
from ebank.risk.models import payee_key
from tests.risk.conftest import World
from tests.support import VAULT, code_of, outcome

MAKER, CHECKER = "staff:21", "staff:22"
OTHER_BANK = "999200000025"


def listed(world: World, list_: str, key: str, label: str = "test") -> int:
    request = world.writer.execute(
        lists.propose_add(list_, key, label, reason="公安机关协查通知", maker=MAKER)
    )
    return world.writer.execute(approvals.approve(request, checker=CHECKER))


def status(world: World, ledger_id: int) -> str:
    with world.engine.connect() as conn:
        return queries.get_account(conn, account_id=ledger_id).status


def test_police_listing_one_of_our_accounts_suspends_it_once_a_second_person_approves(world):
    _, account = world.aged(funds=500)
    with world.engine.connect() as conn:
        key = lists.key_of_account(conn, VAULT, number=account.number)
    assert key == f"acct:{account.ledger_account_id}"
    request = world.writer.execute(
        lists.propose_add("police", key, lists.label_of_account(account.number), reason="协查",
                          maker=MAKER)
    )  # fmt: skip
    assert status(world, account.ledger_account_id) == "active"
    own = outcome(world.writer.submit(approvals.approve(request, checker=MAKER)))
    assert code_of(own) == "SAME_MAKER_AND_CHECKER"
    entry_id = world.writer.execute(approvals.approve(request, checker=CHECKER))
    assert status(world, account.ledger_account_id) == "suspended"
    with world.engine.connect() as conn:
        [entry] = lists.entries(conn, "police")
        detail = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "risk.list.add")
        ).scalar_one()  # fmt: skip
    assert (entry.id, entry.key, entry.added_by, entry.approved_by) == (
        entry_id, key, MAKER, CHECKER,
    )  # fmt: skip
    assert entry.reason == "协查" and "*" in entry.label
    assert f'"suspended": {account.ledger_account_id}' in detail


def test_removing_an_entry_does_not_reinstate_the_account(world):
    _, account = world.aged()
    entry = listed(world, "police", f"acct:{account.ledger_account_id}")
    request = world.writer.execute(lists.propose_remove(entry, reason="撤销", maker=MAKER))
    world.writer.execute(approvals.approve(request, checker=CHECKER))
    with world.engine.connect() as conn:
        assert lists.entries(conn, "police") == []
        assert lists.get_entry(conn, entry).removed_by == CHECKER
    assert status(world, account.ledger_account_id) == "suspended"
    again = outcome(world.writer.submit(lists.propose_remove(entry, reason="x", maker=MAKER)))
    assert code_of(again) == "RISK_LIST_ENTRY_NOT_FOUND"


def test_another_banks_account_is_listed_by_its_keyed_hash_and_blocked(world):
    customer, _ = world.aged()
    with world.engine.connect() as conn:
        key = lists.key_of_account(conn, VAULT, number="6222 0200 0000 0001", bank=OTHER_BANK)
    assert key == payee_key(VAULT, bank=OTHER_BANK, account_number="6222020000000001")
    assert "6222020000000001" not in key
    listed(world, "police", key, lists.label_of_account("6222020000000001", OTHER_BANK))
    assert world.decide(world.ctx(customer, payee=key)).outcome == "block"


def test_a_key_already_listed_is_refused(world):
    listed(world, "compromised", "c:5")
    again = outcome(world.writer.submit(
        lists.propose_add("compromised", "c:5", "x", reason="x", maker=MAKER)
    ))  # fmt: skip
    assert code_of(again) == "RISK_LIST_ENTRY_EXISTS"
    listed(world, "sanctioned", "c:5")  # another list is another matter


@pytest.mark.parametrize(
    ("list_", "key"),
    [("friends", "c:5"), ("police", "c:05"), ("police", "acct:1; DROP TABLE x"),
     ("police", "d:XYZ"), ("police", "")],
)  # fmt: skip
def test_bad_entries_are_refused_when_proposed(world, list_, key):
    refused = outcome(world.writer.submit(
        lists.propose_add(list_, key, "x", reason="x", maker=MAKER)
    ))  # fmt: skip
    assert code_of(refused) == "INVALID_INPUT"
    with world.engine.connect() as conn:
        assert approvals.pending(conn) == []


def test_an_unknown_account_of_ours_is_not_found(world):
    with world.engine.connect() as conn, pytest.raises(EbankError) as missing:
        lists.key_of_account(conn, VAULT, number="6217000000000000000")
    assert missing.value.code == "ACCOUNT_NOT_FOUND"


def test_one_of_our_accounts_named_with_our_own_bank_code_is_keyed_as_ours(world):
    """As a payment to it is: otherwise the listing would never match one."""
    _, account = world.aged(funds=500)
    with world.engine.connect() as conn:
        key = lists.key_of_account(
            conn, VAULT, number=account.number, bank=get_settings().bank_code
        )
    assert key == f"acct:{account.ledger_account_id}"
