"""Mobile devices (DOMAIN.md §3): a new device is bound with an SMS code sent for that device
alone, used once, with wrong codes counted; a customer has at most `max_bound_devices`; every
binding is audited and announced by SMS; someone else's device cannot be unbound. A login from
a device the customer never used raises one alert by SMS (DOMAIN.md §7).

Every test runs on SQLite and PostgreSQL.
"""

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ebank.core.clock import FixedClock, as_utc
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Writer
from ebank.notify.service import InboxSender, deliver_sms, inbox
from ebank.security import login as logins
from ebank.security import sessions
from ebank.security.devices import (
    Device,
    begin_binding,
    confirm_binding,
    device_hash,
    devices_of,
    is_bound,
    note_login,
    unbind,
)
from ebank.security.service import Checked
from ebank.security.tables import devices, one_time_codes
from tests.channels import api_support
from tests.support import (
    VAULT,
    code_of,
    in_one_batch,
    outcome,
    person,
    race_two_writers,
    wait_to_resend,
)

PHONE_A = "iPhone15,2-7F3A9C21-55B0-4E0B-9D1E-0A1B2C3D4E5F"
PHONE_B = "HUAWEI-ALN-AL00-0B6D4F2A-91C3-4E77-8D10-5A6B7C8D9E0F"
LABEL = "我的 iPhone 15"


# -- helpers --------------------------------------------------------------------------------
def sms_bodies(engine: Engine, customer: int, kind: str | None = None) -> list[str]:
    """The SMS asked for this customer (of one kind), oldest first, opened."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox_events.c.payload)
            .where(outbox_events.c.topic == "sms.send")
            .order_by(outbox_events.c.id)
        )
        payloads = [json.loads(p) for p in rows.scalars()]
    return [
        VAULT.decrypt(p["body"], purpose="sms.body")
        for p in payloads
        if p["customer"] == customer and kind in (None, p["kind"])
    ]


def begin(writer: Writer, engine: Engine, customer: int, device: str, label: str = LABEL) -> str:
    """Ask to bind a device; the code the customer receives."""
    writer.execute(begin_binding(VAULT, customer_id=customer, device=device, label=label))
    [code] = re.findall(r"(?<!\d)\d{6}(?!\d)", sms_bodies(engine, customer, "code")[-1])
    return code


def confirm(
    writer: Writer, customer: int, device: str, code: Any, label: str = LABEL
) -> Checked[Device]:
    return writer.execute(
        confirm_binding(VAULT, customer_id=customer, device=device, label=label, code=code)
    )


def bind(writer: Writer, engine: Engine, customer: int, device: str, label: str = LABEL) -> Device:
    code = begin(writer, engine, customer, device, label)
    return confirm(writer, customer, device, code, label).value()


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def bound(engine: Engine, customer: int) -> list[Device]:
    with engine.connect() as conn:
        return devices_of(conn, customer)


def bound_here(engine: Engine, customer: int, device: str) -> bool:
    with engine.connect() as conn:
        return is_bound(conn, VAULT, customer, device)


def device_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(devices).order_by(devices.c.id)).mappings()]


def audits(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == action))
        return [dict(r) for r in rows.mappings()]


def login(customer: int, device: str, channel: str = "mobile") -> Command[bool]:
    return Command(
        lambda tx: note_login(tx, VAULT, customer_id=customer, channel=channel, device=device)
    )


def fails(code: str, writer: Writer, command: Command[Any]) -> None:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code, caught.value


# -- binding ---------------------------------------------------------------------------------
def test_a_device_binds_with_the_code_sent_for_it(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    code = begin(writer, engine, customer, PHONE_A)
    assert "绑定手机银行新设备“我的 iPhone 15”" in sms_bodies(engine, customer, "code")[-1]
    device = confirm(writer, customer, PHONE_A, code).value()
    assert (device.customer_id, device.label, device.bound_at) == (customer, LABEL, clock.now())
    assert bound(engine, customer) == [device]
    assert bound_here(engine, customer, PHONE_A)
    assert not bound_here(engine, customer, PHONE_B)
    [audit] = audits(engine, "device.bind")
    assert audit["subject"] == f"device:{device.id}" and audit["actor"] == f"customer:{customer}"


def test_only_a_keyed_hash_of_the_device_id_is_stored(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    bind(writer, engine, customer, PHONE_A)
    writer.execute(login(customer, PHONE_B, "online"))
    for row in device_rows(engine):
        for column, value in row.items():
            assert PHONE_A not in str(value) and PHONE_B not in str(value), column
            assert "7F3A9C21" not in str(value), column


def test_a_code_sent_for_device_a_does_not_bind_device_b(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    code = begin(writer, engine, customer, PHONE_A)
    wrong = confirm(writer, customer, PHONE_B, code)
    assert not wrong.verdict.ok and wrong.verdict.attempts_left == 4  # refused and counted
    assert not bound_here(engine, customer, PHONE_B)
    assert device_rows(engine) == []
    assert confirm(writer, customer, PHONE_A, code).verdict.ok  # still good for device A


def test_a_replayed_code_is_refused(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    code = begin(writer, engine, customer, PHONE_A)
    confirm(writer, customer, PHONE_A, code).value()
    again = confirm(writer, customer, PHONE_A, code)
    assert not again.verdict.ok
    with pytest.raises(EbankError) as caught:
        again.value()
    assert caught.value.code == "AUTH_FAILED"
    assert not confirm(writer, customer, PHONE_B, code).verdict.ok
    assert [d.label for d in bound(engine, customer)] == [LABEL]


def test_wrong_codes_are_counted_and_spend_the_code(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    code = begin(writer, engine, customer, PHONE_A)
    answers = [confirm(writer, customer, PHONE_A, other_than(code)) for _ in range(5)]
    assert [a.verdict.attempts_left for a in answers] == [4, 3, 2, 1, 0]
    with pytest.raises(EbankError) as caught:
        answers[2].value()
    assert caught.value.code == "AUTH_FAILED_WARNING"
    assert not confirm(writer, customer, PHONE_A, code).verdict.ok  # the right one, too late
    assert device_rows(engine) == []
    with engine.connect() as conn:
        attempts = conn.execute(select(one_time_codes.c.attempts)).scalar_one()
    assert attempts == 5  # the failures were committed although binding failed


def test_an_expired_code_does_not_bind(writer: Writer, engine: Engine, clock: FixedClock) -> None:
    customer = person(writer, 1)
    code = begin(writer, engine, customer, PHONE_A)
    clock.advance(timedelta(seconds=301))
    assert not confirm(writer, customer, PHONE_A, code).verdict.ok
    assert device_rows(engine) == []


def test_binding_a_bound_device_again_changes_nothing(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    first = bind(writer, engine, customer, PHONE_A)
    wait_to_resend(clock)
    again = bind(writer, engine, customer, PHONE_A, "另一个名字")
    assert again == first
    assert len(device_rows(engine)) == 1
    assert len(audits(engine, "device.bind")) == 1
    assert len(sms_bodies(engine, customer, "alert")) == 1


def test_one_shared_phone_bound_by_two_customers_is_two_bindings(
    writer: Writer, engine: Engine
) -> None:
    mine, theirs = person(writer, 1), person(writer, 2)
    my_device = bind(writer, engine, mine, PHONE_A)
    their_device = bind(writer, engine, theirs, PHONE_A)
    assert my_device.id != their_device.id
    writer.execute(unbind(customer_id=mine, device_id=my_device.id, actor="x", channel="mobile"))
    assert not bound_here(engine, mine, PHONE_A)
    assert bound_here(engine, theirs, PHONE_A)


@pytest.mark.parametrize(
    "label",
    [
        "",
        "   ",
        "长" * 31,
        "手机\n第二行",
        "<script>",
        "客服电话4001234567",  # the bank's own SMS would carry someone's number
        "客服４００１２３４５６７",
        None,
    ],
)
def test_a_bad_device_name_is_refused_and_sends_nothing(
    writer: Writer, engine: Engine, label: Any
) -> None:
    customer = person(writer, 1)
    fails(
        "INVALID_INPUT",
        writer,
        begin_binding(VAULT, customer_id=customer, device=PHONE_A, label=label),
    )
    assert sms_bodies(engine, customer) == []


@pytest.mark.parametrize("device", ["", "x" * 201, "id\x00with-nul", None, 42])
def test_a_bad_device_id_is_refused_and_sends_nothing(
    writer: Writer, engine: Engine, device: Any
) -> None:
    customer = person(writer, 1)
    fails(
        "INVALID_INPUT",
        writer,
        begin_binding(VAULT, customer_id=customer, device=device, label=LABEL),
    )
    assert sms_bodies(engine, customer) == []


def test_names_in_any_script_with_model_numbers_are_accepted(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    device = bind(writer, engine, customer, PHONE_A, "  华为 Mate 60 Pro (工作)  ")
    assert device.label == "华为 Mate 60 Pro (工作)"


def test_binding_for_an_unknown_customer_is_refused(writer: Writer) -> None:
    fails(
        "CUSTOMER_NOT_FOUND",
        writer,
        begin_binding(VAULT, customer_id=9999, device=PHONE_A, label=LABEL),
    )


# -- the limit ---------------------------------------------------------------------------------
def test_at_most_max_bound_devices_and_room_again_after_unbinding(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    limit = get_settings().max_bound_devices
    assert limit == 5

    def bind_later(device: str) -> Device:
        wait_to_resend(clock)
        return bind(writer, engine, customer, device)

    made = [bind_later(f"phone-{n}") for n in range(limit)]
    sent = len(sms_bodies(engine, customer))
    fails(
        "TOO_MANY_DEVICES",
        writer,
        begin_binding(VAULT, customer_id=customer, device="phone-new", label=LABEL),
    )
    assert len(sms_bodies(engine, customer)) == sent  # no code sent for nothing
    # Confirming a new device at the limit is refused before any code is looked at.
    fails(
        "TOO_MANY_DEVICES",
        writer,
        confirm_binding(VAULT, customer_id=customer, device="phone-new", label=LABEL, code="1"),
    )
    # A device already bound is not a new one.
    assert bind_later("phone-0") == made[0]
    writer.execute(unbind(customer_id=customer, device_id=made[0].id, actor="x", channel="mobile"))
    bind_later("phone-new")
    assert len(bound(engine, customer)) == limit


def test_the_limit_is_configurable(
    writer: Writer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = person(writer, 1)
    monkeypatch.setenv("EBANK_MAX_BOUND_DEVICES", "1")
    get_settings.cache_clear()
    try:
        bind(writer, engine, customer, PHONE_A)
        fails(
            "TOO_MANY_DEVICES",
            writer,
            begin_binding(VAULT, customer_id=customer, device=PHONE_B, label=LABEL),
        )
    finally:
        monkeypatch.delenv("EBANK_MAX_BOUND_DEVICES")
        get_settings.cache_clear()


# -- unbinding -------------------------------------------------------------------------------
def test_unbinding_ends_the_binding_is_audited_and_is_harmless_twice(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    device = bind(writer, engine, customer, PHONE_A)
    clock.advance(timedelta(minutes=1))
    command = unbind(customer_id=customer, device_id=device.id, actor="staff:7", channel="counter")
    writer.execute(command)
    assert bound(engine, customer) == []
    assert not bound_here(engine, customer, PHONE_A)
    [row] = device_rows(engine)
    assert row["status"] == "unbound" and as_utc(row["unbound_at"]) == clock.now()
    writer.execute(command)
    [audit] = audits(engine, "device.unbind")
    assert (audit["actor"], audit["channel"]) == ("staff:7", "counter")


def test_unbinding_someone_elses_device_fails_and_changes_nothing(
    writer: Writer, engine: Engine
) -> None:
    mine, theirs = person(writer, 1), person(writer, 2)
    device = bind(writer, engine, mine, PHONE_A)
    my_session = session_from(writer, mine, PHONE_A)
    writer.execute(login(theirs, PHONE_B))  # a device they only logged in from
    [_, seen] = device_rows(engine)
    before = device_rows(engine)
    for customer, device_id in ((theirs, device.id), (mine, seen["id"]), (mine, 9999), (mine, "1")):
        fails(
            "DEVICE_NOT_FOUND",
            writer,
            unbind(customer_id=customer, device_id=device_id, actor="x", channel="mobile"),
        )
    assert device_rows(engine) == before
    assert audits(engine, "device.unbind") == []
    assert writer.execute(sessions.resume(my_session)).customer_id == mine


def session_from(writer: Writer, customer: int, device: str) -> str:
    """A mobile session of the customer's opened from this device; its token."""
    started = sessions.start(
        customer_id=customer, channel="mobile", device_hash=device_hash(VAULT, device)
    )
    return writer.execute(started).token


def test_unbinding_a_device_ends_every_session_opened_from_it_at_once(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    phone_a = bind(writer, engine, customer, PHONE_A)
    wait_to_resend(clock)
    bind(writer, engine, customer, PHONE_B)
    from_a = [session_from(writer, customer, PHONE_A) for _ in range(2)]
    from_b = session_from(writer, customer, PHONE_B)
    online = writer.execute(sessions.start(customer_id=customer, channel="online")).token
    writer.execute(unbind(customer_id=customer, device_id=phone_a.id, actor="x", channel="mobile"))
    for token in from_a:
        fails("SESSION_EXPIRED", writer, sessions.resume(token))
    for token in (from_b, online):
        assert writer.execute(sessions.resume(token)).customer_id == customer
    [record] = audits(engine, "device.unbind")
    assert json.loads(record["detail"])["sessions_ended"] == 2
    assert len(audits(engine, "session.end.unbound")) == 2


def test_unbinding_my_device_leaves_another_customers_sessions_on_a_shared_phone(
    writer: Writer, engine: Engine
) -> None:
    mine, theirs = person(writer, 1), person(writer, 2)
    my_device = bind(writer, engine, mine, PHONE_A)
    bind(writer, engine, theirs, PHONE_A)
    my_session = session_from(writer, mine, PHONE_A)
    their_session = session_from(writer, theirs, PHONE_A)
    writer.execute(unbind(customer_id=mine, device_id=my_device.id, actor="x", channel="mobile"))
    fails("SESSION_EXPIRED", writer, sessions.resume(my_session))
    assert writer.execute(sessions.resume(their_session)).customer_id == theirs


def test_a_session_opened_by_a_login_from_a_phone_ends_when_the_phone_is_unbound(
    writer: Writer, engine: Engine, clock: FixedClock, fast_hashing: None
) -> None:
    """Through the login itself: the session keeps the hash the binding keeps."""
    me = api_support.customer(writer, 1, enrolled=("mobile",))
    api_support.bind_device(writer, me, PHONE_A)
    started = writer.execute(
        logins.begin(VAULT, login=me.mobile, password=api_support.PASSWORD, channel="mobile",
                     device=PHONE_A)
    ).value()  # fmt: skip
    token = writer.execute(
        logins.complete(VAULT, challenge=started.token, factor="token",
                        code=api_support.token_code(me, clock), device=PHONE_A)
    ).value().token  # fmt: skip
    [device] = bound(engine, me.id)
    writer.execute(unbind(customer_id=me.id, device_id=device.id, actor="x", channel="mobile"))
    fails("SESSION_EXPIRED", writer, sessions.resume(token))
    # And its login alert still knows the phone: a login from it again is not a new device.
    assert writer.execute(login(me.id, PHONE_A)) is False


def test_a_device_can_be_bound_again_after_unbinding(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    first = bind(writer, engine, customer, PHONE_A)
    writer.execute(unbind(customer_id=customer, device_id=first.id, actor="x", channel="mobile"))
    wait_to_resend(clock)
    again = bind(writer, engine, customer, PHONE_A, "换了名字")
    assert again.id == first.id and again.label == "换了名字"
    assert len(audits(engine, "device.bind")) == 2
    assert len(sms_bodies(engine, customer, "alert")) == 2


# -- alerts ----------------------------------------------------------------------------------
def test_every_new_binding_sends_an_alert_that_reaches_the_inbox(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    bind(writer, engine, customer, PHONE_A)
    assert deliver_sms(writer, VAULT, InboxSender(writer, VAULT)) == 2
    with engine.connect() as conn:
        alert, code = inbox(conn, VAULT, customer_id=customer)
    assert alert.kind == "alert" and code.kind == "code"
    assert "已绑定新设备“我的 iPhone 15”" in alert.body and "如非本人操作" in alert.body


def test_a_login_from_a_new_device_alerts_only_the_first_time(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    assert writer.execute(login(customer, PHONE_A, "online")) is True
    [alert] = sms_bodies(engine, customer, "alert")
    assert "网上银行" in alert and "11月23日10:00" in alert  # Beijing time
    clock.advance(timedelta(hours=1))
    assert writer.execute(login(customer, PHONE_A, "online")) is False
    assert len(sms_bodies(engine, customer, "alert")) == 1
    [row] = device_rows(engine)
    assert row["status"] == "seen" and as_utc(row["last_seen_at"]) == clock.now()
    assert bound(engine, customer) == []  # seen is not bound
    assert not bound_here(engine, customer, PHONE_A)


def test_a_login_from_a_bound_device_raises_no_alert(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    bind(writer, engine, customer, PHONE_A)
    assert writer.execute(login(customer, PHONE_A, "mobile")) is False
    assert len(sms_bodies(engine, customer, "alert")) == 1  # the binding's, no other


def test_a_device_known_to_another_customer_is_new_to_me(writer: Writer, engine: Engine) -> None:
    mine, theirs = person(writer, 1), person(writer, 2)
    writer.execute(login(theirs, PHONE_A))
    assert writer.execute(login(mine, PHONE_A)) is True
    assert len(sms_bodies(engine, mine, "alert")) == 1


def test_the_login_alert_reaches_the_inbox(writer: Writer, engine: Engine) -> None:
    customer = person(writer, 1)
    writer.execute(login(customer, PHONE_A, "mobile"))
    deliver_sms(writer, VAULT, InboxSender(writer, VAULT))
    with engine.connect() as conn:
        [message] = inbox(conn, VAULT, customer_id=customer)
    assert message.kind == "alert" and "手机银行" in message.body and "新设备登录" in message.body


def test_two_first_logins_from_one_device_in_one_batch_alert_once(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer, 1)
    results = in_one_batch(writer, [login(customer, PHONE_A), login(customer, PHONE_A)])
    assert sorted(results) == [False, True]
    assert len(sms_bodies(engine, customer, "alert")) == 1


def test_two_first_logins_racing_on_two_writers_alert_once(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer, 1)
    pairs = race_two_writers(writer, engine, clock, [login(customer, PHONE_A)])
    assert sorted(pairs[0]) == [False, True], pairs
    assert len(sms_bodies(engine, customer, "alert")) == 1
    assert len(device_rows(engine)) == 1


@pytest.mark.parametrize(
    ("channel", "device"), [("phone", PHONE_A), ("online", ""), ("mobile", None)]
)
def test_a_bad_login_device_is_refused_and_stores_nothing(
    writer: Writer, engine: Engine, channel: str, device: Any
) -> None:
    customer = person(writer, 1)
    assert code_of(outcome(writer.submit(login(customer, device, channel)))) == "INVALID_INPUT"
    assert device_rows(engine) == []
    assert sms_bodies(engine, customer) == []
