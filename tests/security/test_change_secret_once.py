"""A change of the login password or PIN sent twice (a double click): once per idempotency key.

The repeat gets the first answer and checks nothing, so its current password, now wrong,
counts no failure; the same key with another new password is IDEMPOTENCY_CONFLICT and changes
nothing. The stored fingerprint is a keyed hash: neither a secret nor a plain hash of one.

Every test runs on SQLite and PostgreSQL."""

import hashlib

import pytest
from sqlalchemy import Engine, select

from ebank.core.errors import EbankError
from ebank.core.tables import idempotency_keys
from ebank.core.writer import Writer, fingerprint
from ebank.security.service import Checked, change_secret
from tests.security.test_change_secret import NEW
from tests.security.test_security import (
    SECRETS,
    attempt,
    credential_row,
    failed_audits,
    new_customer,
    with_secret,
)
from tests.support import VAULT, in_one_batch

pytestmark = pytest.mark.usefixtures("fast_hashing")
KINDS = ["login_password", "transaction_pin"]
OTHER_NEW = {"login_password": "Starlight2028", "transaction_pin": "375921"}


@pytest.fixture
def customer(writer: Writer) -> int:
    return new_customer(writer)


def change(customer: int, kind: str, new: str, key: str | None = "form-1") -> Checked[int]:
    return change_secret(
        VAULT, customer_id=customer, kind=kind, current=SECRETS[kind], new=new,
        channel="online", idempotency_key=key,
    )  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_change_sent_twice_changes_once_and_counts_no_failure(
    writer: Writer, engine: Engine, customer: int, kind: str
) -> None:
    with_secret(writer, customer, kind)
    first = writer.execute(change(customer, kind, NEW[kind]))
    changed = credential_row(engine, customer, kind)
    second = writer.execute(change(customer, kind, NEW[kind]))
    assert second == first and second.value() == first.value()
    row = credential_row(engine, customer, kind)
    assert row["secret"] == changed["secret"] and row["updated_at"] == changed["updated_at"]
    assert row["failures"] == 0
    assert failed_audits(engine, customer) == []
    assert attempt(writer, customer, kind, NEW[kind]).ok


@pytest.mark.parametrize("kind", KINDS)
def test_a_double_click_in_one_batch_changes_once(
    writer: Writer, engine: Engine, customer: int, kind: str
) -> None:
    with_secret(writer, customer, kind)
    first, second = in_one_batch(
        writer, [change(customer, kind, NEW[kind]), change(customer, kind, NEW[kind])]
    )
    assert isinstance(first, Checked) and first.verdict.ok and second == first
    assert credential_row(engine, customer, kind)["failures"] == 0
    assert failed_audits(engine, customer) == []


@pytest.mark.parametrize("kind", KINDS)
def test_another_new_secret_under_the_same_key_is_a_conflict_and_changes_nothing(
    writer: Writer, engine: Engine, customer: int, kind: str
) -> None:
    with_secret(writer, customer, kind)
    writer.execute(change(customer, kind, NEW[kind]))
    changed = credential_row(engine, customer, kind)
    with pytest.raises(EbankError) as caught:
        writer.execute(change(customer, kind, OTHER_NEW[kind]))
    assert caught.value.code == "IDEMPOTENCY_CONFLICT" and caught.value.status == 409
    assert credential_row(engine, customer, kind) == changed
    assert attempt(writer, customer, kind, NEW[kind]).ok
    assert not attempt(writer, customer, kind, OTHER_NEW[kind]).ok


def test_a_failed_check_keeps_nothing_so_the_same_form_may_try_again(
    writer: Writer, engine: Engine, customer: int
) -> None:
    with_secret(writer, customer)
    wrong = change_secret(
        VAULT, customer_id=customer, kind="login_password", current="Sunset2026",
        new=NEW["login_password"], channel="online", idempotency_key="form-1",
    )  # fmt: skip
    assert not writer.execute(wrong).verdict.ok
    assert writer.execute(change(customer, "login_password", NEW["login_password"])).verdict.ok


def test_the_kept_fingerprint_is_a_keyed_hash_of_no_secret(
    writer: Writer, engine: Engine, customer: int
) -> None:
    with_secret(writer, customer)
    writer.execute(change(customer, "login_password", NEW["login_password"]))
    with engine.connect() as conn:
        [row] = conn.execute(select(idempotency_keys)).mappings().all()
    kept = " ".join(str(value) for value in row.values())
    for secret in (SECRETS["login_password"], NEW["login_password"]):
        assert secret not in kept
        assert hashlib.sha256(secret.encode()).hexdigest() not in kept
    assert credential_row(engine, customer, "login_password")["secret"] not in kept
    # Not the plain hash of the request either, which anyone could test guesses against.
    plain = fingerprint(
        op="credential.change", kind="login_password", current=SECRETS["login_password"],
        new=NEW["login_password"],
    )  # fmt: skip
    assert row["fingerprint"] != plain


def test_without_a_key_each_change_is_checked_anew(
    writer: Writer, engine: Engine, customer: int
) -> None:
    with_secret(writer, customer)
    first = writer.execute(change(customer, "login_password", NEW["login_password"], None))
    assert first.verdict.ok
    again = writer.execute(change(customer, "login_password", NEW["login_password"], None))
    assert not again.verdict.ok  # the old password no longer matches: counted
    assert credential_row(engine, customer, "login_password")["failures"] == 1
