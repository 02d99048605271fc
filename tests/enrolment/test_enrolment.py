"""E-banking enrolment (签约, DOMAIN.md §3): at the counter up to the bank's maximum for the
channel; online by the customer with card + PIN + SMS code, at the low self-enrolment limits
only; cancelling; the customer lowering their limits at will and raising them only with their
token, never above the bank's maximum.

The attacks: a wrong PIN counts and tells nothing about the card; an unknown card answers like
a wrong PIN; a code works once, for the channel and card it was sent for; a lost card cannot
enrol; a wrong token is counted and changes nothing.

Every database test runs on SQLite and PostgreSQL. The module swaps the argon2id hasher for a
cheap one (still argon2id): PIN checks count the same, and each would otherwise cost ~0.2 s."""

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from sqlalchemy import Engine, select

from ebank.accounts import service as accounts
from ebank.cards import service as cards
from ebank.core import audit
from ebank.core.clock import FixedClock
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.tables import audit_log, outbox_events
from ebank.core.writer import Command, Writer
from ebank.enrolment import service as enrolment
from ebank.enrolment.service import Enrolment
from ebank.enrolment.tables import channel_enrolments
from ebank.ops import approvals
from ebank.security import service as security
from ebank.security.service import Checked, CodeIssued, Verdict
from ebank.security.tables import credentials, one_time_codes
from tests.support import (
    STAFF,
    VAULT,
    code_of,
    in_one_batch,
    person,
    race_two_writers,
    wait_to_resend,
)

YUAN = 100
PIN = "804317"
WRONG_PIN = "804318"
PASSWORD = "Sunrise2026"
CHECKER = "staff:9"
COUNTER_MAXIMA = {"online": 1_000_000, "mobile": 1_000_000, "phone": 5_000, "sms": 1_000}
SELF_DAILY, SELF_PER_PAYMENT = 5_000 * YUAN, 1_000 * YUAN
SMS_BODY = "sms.body"  # the purpose an SMS body is sealed for in the outbox


pytestmark = pytest.mark.usefixtures("fast_hashing")  # cheap argon2id (tests/conftest.py)


# -- helpers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    customer: int
    card: str  # the full card number, as the customer types it
    card_id: int


def holder(writer: Writer, n: int = 1) -> Holder:
    """A person with a Type I account, a debit card on it and a transaction PIN."""
    customer = person(writer, n)
    account = writer.execute(accounts.open_account(customer_id=customer, tier="I", actor=STAFF))
    issued = writer.execute(
        cards.issue_debit_card(
            VAULT, customer_id=customer, account_number=account.number, actor=STAFF
        )
    )
    writer.execute(
        security.set_secret(customer_id=customer, kind="transaction_pin", secret=PIN, actor=STAFF)
    )
    return Holder(customer, issued.number, issued.card.id)


def unknown_card() -> str:
    """A well-formed card number (BIN, Luhn) the bank never issued."""
    return cards.card_number(get_settings().debit_card_bin, 987_654_321)


def counter(writer: Writer, customer: int, channel: str = "online", **limits: Any) -> Enrolment:
    return writer.execute(
        enrolment.enrol_at_counter(customer_id=customer, channel=channel, actor=STAFF, **limits)
    )


def fails(writer: Writer, command: Command[Any], code: str) -> EbankError:
    with pytest.raises(EbankError) as caught:
        writer.execute(command)
    assert caught.value.code == code, caught.value
    return caught.value


def begin(
    writer: Writer, card: str, pin: str = PIN, channel: str = "online"
) -> Checked[CodeIssued]:
    return writer.execute(
        enrolment.begin_self_enrolment(VAULT, card_number=card, pin=pin, channel=channel)
    )


def complete(
    writer: Writer, card: str, code: str, channel: str = "online", password: str = PASSWORD
) -> Checked[Enrolment]:
    return writer.execute(
        enrolment.complete_self_enrolment(
            VAULT, card_number=card, code=code, login_password=password, channel=channel
        )
    )


def sms_codes(engine: Engine, customer: int) -> list[str]:
    """The codes texted to the customer, oldest first."""
    with engine.connect() as conn:
        payloads = [
            json.loads(p)
            for p in conn.execute(
                select(outbox_events.c.payload)
                .where(outbox_events.c.topic == "sms.send")
                .order_by(outbox_events.c.id)
            ).scalars()
        ]
    bodies = [
        VAULT.decrypt(p["body"], purpose=SMS_BODY) for p in payloads if p["customer"] == customer
    ]
    return [re.findall(r"(?<!\d)\d{6}(?!\d)", body)[0] for body in bodies]


def texted(writer: Writer, engine: Engine, h: Holder, channel: str = "online") -> str:
    """Begin self-enrolment with the right PIN; the code the customer's phone shows."""
    started = begin(writer, h.card, channel=channel)
    assert started.verdict.ok and isinstance(started.result, CodeIssued)
    return sms_codes(engine, h.customer)[-1]


def live(engine: Engine, customer: int) -> list[Enrolment]:
    with engine.connect() as conn:
        return enrolment.enrolments_of(conn, customer)


def of(engine: Engine, customer: int, channel: str = "online") -> Enrolment | None:
    with engine.connect() as conn:
        return enrolment.enrolment_of(conn, customer, channel)


def all_rows(engine: Engine, customer: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(channel_enrolments)
            .where(channel_enrolments.c.customer_id == customer)
            .order_by(channel_enrolments.c.id)
        ).mappings()
        return [dict(r) for r in found]


def credential(engine: Engine, customer: int, kind: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        found = conn.execute(
            select(credentials).where(
                credentials.c.customer_id == customer, credentials.c.kind == kind
            )
        ).mappings()
        row = found.first()
        return None if row is None else dict(row)


def failures(engine: Engine, customer: int, kind: str) -> int:
    """The credential's consecutive failures so far."""
    row = credential(engine, customer, kind)
    assert row is not None
    return int(row["failures"])


def code_rows(engine: Engine, customer: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(one_time_codes).where(one_time_codes.c.customer_id == customer)
        ).mappings()
        return [dict(r) for r in found]


def password_ok(writer: Writer, customer: int, password: str = PASSWORD) -> bool:
    return writer.execute(
        security.check_secret(customer_id=customer, kind="login_password", secret=password)
    ).ok


def audits(engine: Engine, prefix: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(audit_log).where(audit_log.c.action.startswith(prefix)).order_by(audit_log.c.id)
        ).mappings()
        return [{**r, "detail": json.loads(r["detail"])} for r in found]


def customer_error(checked: Checked[Any]) -> EbankError:
    """What the customer is told for a failed check."""
    with pytest.raises(EbankError) as caught:
        checked.value()
    return caught.value


def token(writer: Writer, customer: int) -> pyotp.TOTP:
    uri = writer.execute(
        security.enroll_token(VAULT, customer_id=customer, label="客户", actor=STAFF)
    )
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    return totp


def token_code(totp: pyotp.TOTP, clock: FixedClock) -> str:
    return totp.at(clock.now())


def set_limits(
    writer: Writer, customer: int, daily: int, per_payment: int, code: str | None = None
) -> Checked[Enrolment]:
    return writer.execute(
        enrolment.set_limits(
            VAULT, via="online", customer_id=customer, channel="online", daily_limit=daily,
            per_payment_limit=per_payment, token_code=code,
        )
    )  # fmt: skip


def limits_of(engine: Engine, customer: int) -> tuple[int, int]:
    found = of(engine, customer)
    assert found is not None
    return found.daily_limit, found.per_payment_limit


# -- at the counter -----------------------------------------------------------------------
@pytest.mark.parametrize("channel", sorted(COUNTER_MAXIMA))
def test_counter_enrolment_defaults_to_the_banks_maximum_for_the_channel(
    writer: Writer, engine: Engine, clock: FixedClock, channel: str
) -> None:
    customer = person(writer)
    done = counter(writer, customer, channel)
    top = COUNTER_MAXIMA[channel] * YUAN
    assert (done.assurance, done.daily_limit, done.per_payment_limit) == ("counter", top, top)
    assert (done.customer_id, done.channel, done.enrolled_at) == (customer, channel, clock.now())
    assert of(engine, customer, channel) == done
    [entry] = audits(engine, "enrolment.")
    assert (entry["action"], entry["actor"]) == ("enrolment.counter", STAFF)
    assert entry["channel"] == "counter"
    assert entry["detail"] == {"channel": channel, "daily_limit": top, "per_payment_limit": top}


def test_counter_enrolment_takes_the_limits_asked_within_the_maximum(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    done = counter(writer, customer, daily_limit=8_000 * YUAN, per_payment_limit=2_000 * YUAN)
    assert (done.daily_limit, done.per_payment_limit) == (8_000 * YUAN, 2_000 * YUAN)
    # A per-payment limit not asked is the lower of the daily limit and the maximum.
    low = counter(writer, customer, "phone", daily_limit=300 * YUAN)
    assert (low.daily_limit, low.per_payment_limit) == (300 * YUAN, 300 * YUAN)
    top = 1_000 * YUAN
    exact = counter(writer, customer, "sms", daily_limit=top, per_payment_limit=top)
    assert (exact.daily_limit, exact.per_payment_limit) == (top, top)


@pytest.mark.parametrize(
    ("channel", "limits"),
    [
        ("online", {"daily_limit": 1_000_000 * YUAN + 1}),
        ("phone", {"daily_limit": 5_000 * YUAN + 1}),
        ("sms", {"daily_limit": 1_000 * YUAN, "per_payment_limit": 1_000 * YUAN + 1}),
        ("online", {"daily_limit": 10**15}),
    ],
)
def test_limits_above_the_banks_maximum_are_refused_and_nothing_is_written(
    writer: Writer, engine: Engine, channel: str, limits: dict[str, int]
) -> None:
    customer = person(writer)
    fails(writer, enrolment.enrol_at_counter(
        customer_id=customer, channel=channel, actor=STAFF, **limits
    ), "ABOVE_BANK_MAXIMUM")  # fmt: skip
    assert all_rows(engine, customer) == []
    assert audits(engine, "enrolment.") == []


def test_above_bank_maximum_names_the_maxima_in_yuan(writer: Writer) -> None:
    customer = person(writer)
    err = fails(writer, enrolment.enrol_at_counter(
        customer_id=customer, channel="phone", actor=STAFF, daily_limit=6_000 * YUAN
    ), "ABOVE_BANK_MAXIMUM")  # fmt: skip
    assert err.details == {"daily": "5000.00", "per_payment": "5000.00"}
    assert "¥5000.00" in err.message("zh") and "¥5000.00" in err.message("en")


def test_a_per_payment_limit_above_the_daily_one_is_refused(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    err = fails(writer, enrolment.enrol_at_counter(
        customer_id=customer, channel="online", actor=STAFF, daily_limit=1_000 * YUAN,
        per_payment_limit=1_000 * YUAN + 1,
    ), "INVALID_INPUT")  # fmt: skip
    assert "per-payment" in err.details["reason"]
    assert all_rows(engine, customer) == []


@pytest.mark.parametrize(
    "limits",
    [
        {"daily_limit": 0},
        {"daily_limit": -100},
        {"daily_limit": True},
        {"daily_limit": 1.5},
        {"daily_limit": "10000"},
        {"daily_limit": 100 * YUAN, "per_payment_limit": 0},
        {"daily_limit": 100 * YUAN, "per_payment_limit": False},
    ],
    ids=repr,
)
def test_malformed_limits_are_invalid_input(
    writer: Writer, engine: Engine, limits: dict[str, Any]
) -> None:
    customer = person(writer)
    fails(writer, enrolment.enrol_at_counter(
        customer_id=customer, channel="online", actor=STAFF, **limits
    ), "INVALID_INPUT")  # fmt: skip
    assert all_rows(engine, customer) == []


@pytest.mark.parametrize("channel", ["counter", "ONLINE", "atm", "", None])
def test_only_the_four_e_channels_can_be_enrolled(
    writer: Writer, engine: Engine, channel: Any
) -> None:
    customer = person(writer)
    fails(writer, enrolment.enrol_at_counter(customer_id=customer, channel=channel, actor=STAFF),
          "INVALID_INPUT")  # fmt: skip
    assert all_rows(engine, customer) == []


def test_an_unknown_customer_cannot_be_enrolled(writer: Writer) -> None:
    fails(writer, enrolment.enrol_at_counter(customer_id=999, channel="online", actor=STAFF),
          "CUSTOMER_NOT_FOUND")  # fmt: skip


def test_enrolling_again_replaces_the_live_enrolment(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer)
    first = counter(writer, customer, daily_limit=1_000 * YUAN)
    counter(writer, customer, "mobile")
    clock.advance(timedelta(minutes=5))
    second = counter(writer, customer, daily_limit=2_000 * YUAN)
    assert of(engine, customer) == second != first
    assert [e.channel for e in live(engine, customer)] == ["online", "mobile"]
    online = [r for r in all_rows(engine, customer) if r["channel"] == "online"]
    assert [(r["id"], r["daily_limit"]) for r in online] == [
        (first.id, 1_000 * YUAN), (second.id, 2_000 * YUAN),
    ]  # fmt: skip
    assert online[0]["cancelled_at"] is not None and online[1]["cancelled_at"] is None


def test_two_writers_enrolling_one_customer_leave_one_live_enrolment(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer)
    mine, theirs = (
        [enrolment.enrol_at_counter(customer_id=customer, channel="online", actor=STAFF,
                                    daily_limit=yuan * YUAN)]
        for yuan in (1_000, 2_000)
    )  # fmt: skip
    [(first, second)] = race_two_writers(writer, engine, clock, mine, theirs)
    assert (code_of(first), code_of(second)) == ("ok", "ok")
    [one] = live(engine, customer)
    assert one.id == max(first.id, second.id)
    assert len(all_rows(engine, customer)) == 2


def test_cancel_ends_the_enrolment_on_that_channel_only(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    counter(writer, customer)
    counter(writer, customer, "sms")
    me = f"customer:{customer}"
    writer.execute(enrolment.cancel(customer_id=customer, channel="online", actor=me, via="mobile"))
    assert of(engine, customer) is None
    assert [e.channel for e in live(engine, customer)] == ["sms"]
    entry = audits(engine, "enrolment.cancel")[-1]
    assert (entry["actor"], entry["channel"]) == (me, "mobile")
    assert entry["detail"] == {"channel": "online"}
    # The history stays; cancelling again finds nothing live.
    assert len(all_rows(engine, customer)) == 2
    fails(writer, enrolment.cancel(customer_id=customer, channel="online", actor=me, via="mobile"),
          "NOT_ENROLLED")  # fmt: skip


def test_cancelling_what_was_never_enrolled_is_not_enrolled(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    fails(writer, enrolment.cancel(customer_id=customer, channel="phone", actor=STAFF,
                                   via="counter"), "NOT_ENROLLED")  # fmt: skip
    fails(writer, enrolment.cancel(customer_id=999, channel="phone", actor=STAFF, via="counter"),
          "CUSTOMER_NOT_FOUND")  # fmt: skip
    assert audits(engine, "enrolment.") == []


# -- online self-enrolment ----------------------------------------------------------------
@pytest.mark.parametrize("channel", ["online", "mobile"])
def test_self_enrolment_gets_the_low_limits_and_sets_the_login_password(
    writer: Writer, engine: Engine, channel: str
) -> None:
    h = holder(writer)
    code = texted(writer, engine, h, channel)
    done = complete(writer, h.card, code, channel).value()
    assert (done.customer_id, done.channel, done.assurance) == (h.customer, channel, "self")
    assert (done.daily_limit, done.per_payment_limit) == (SELF_DAILY, SELF_PER_PAYMENT)
    assert of(engine, h.customer, channel) == done
    assert password_ok(writer, h.customer)
    assert not password_ok(writer, h.customer, "Sunset2026")
    me = f"customer:{h.customer}"
    assert [(a["action"], a["actor"], a["channel"]) for a in audits(engine, "enrolment.")] == [
        ("enrolment.self", me, channel)
    ]
    with engine.connect() as conn:
        assert audit.verify(conn).ok


def test_the_sms_names_what_the_code_is_for_and_no_code_is_kept_in_clear(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    code = texted(writer, engine, h)
    with engine.connect() as conn:
        body = VAULT.decrypt(
            json.loads(conn.execute(select(outbox_events.c.payload)
                                    .where(outbox_events.c.topic == "sms.send")).scalar_one()
                       )["body"], purpose=SMS_BODY,
        )  # fmt: skip
    assert "开通网上银行" in body
    [row] = code_rows(engine, h.customer)
    assert code not in json.dumps({k: str(v) for k, v in row.items()})


@pytest.mark.parametrize("channel", ["phone", "sms", "counter"])
def test_self_enrolment_is_for_online_and_mobile_only(
    writer: Writer, engine: Engine, channel: str
) -> None:
    h = holder(writer)
    fails(writer, enrolment.begin_self_enrolment(VAULT, card_number=h.card, pin=PIN,
                                                 channel=channel), "INVALID_INPUT")  # fmt: skip
    assert sms_codes(engine, h.customer) == []


def test_a_wrong_pin_counts_sends_nothing_and_says_nothing_about_the_card(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    failed = begin(writer, h.card, WRONG_PIN)
    assert failed.result is None and not failed.verdict.ok
    assert customer_error(failed).code == "AUTH_FAILED"
    assert failures(engine, h.customer, "transaction_pin") == 1
    assert sms_codes(engine, h.customer) == [] and code_rows(engine, h.customer) == []
    # On a lost card a wrong PIN answers just the same: the card's state is not told.
    writer.execute(cards.report_lost(VAULT, customer_id=h.customer, card_number=h.card,
                                     channel="phone"))  # fmt: skip
    again = begin(writer, h.card, WRONG_PIN)
    assert customer_error(again).code == "AUTH_FAILED"
    assert failures(engine, h.customer, "transaction_pin") == 2


def test_wrong_pins_lock_the_pin_and_then_the_right_one_is_refused(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    for _ in range(get_settings().auth_max_failures):
        assert not begin(writer, h.card, WRONG_PIN).verdict.ok
    pin = credential(engine, h.customer, "transaction_pin")
    assert pin is not None and pin["locked_until"] is not None
    locked = begin(writer, h.card, PIN)
    assert not locked.verdict.ok and locked.result is None
    assert sms_codes(engine, h.customer) == []


def test_an_unknown_card_answers_exactly_like_a_wrong_pin(writer: Writer, engine: Engine) -> None:
    h = holder(writer)
    unknown = begin(writer, unknown_card(), PIN)
    wrong = begin(writer, h.card, WRONG_PIN)
    assert unknown.result is None and not unknown.verdict.ok
    told_unknown, told_wrong = customer_error(unknown), customer_error(wrong)
    assert (told_unknown.code, told_unknown.details, told_unknown.message("zh")) == (
        told_wrong.code, told_wrong.details, told_wrong.message("zh"),
    )  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(select(outbox_events.c.id)).first() is None  # no SMS to anyone


def test_a_malformed_card_number_is_invalid_input_and_counts_nothing(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    numbers: list[Any] = [h.card[:-1] + str((int(h.card[-1]) + 1) % 10), "12345", 6217990000, ""]
    for number in numbers:
        command = enrolment.begin_self_enrolment(VAULT, card_number=number, pin=PIN)
        fails(writer, command, "INVALID_INPUT")
    assert failures(engine, h.customer, "transaction_pin") == 0


def test_a_code_sent_for_one_channel_does_not_enrol_another(writer: Writer, engine: Engine) -> None:
    h = holder(writer)
    code = texted(writer, engine, h, "online")
    wrong_channel = complete(writer, h.card, code, "mobile")
    assert not wrong_channel.verdict.ok and wrong_channel.result is None
    assert live(engine, h.customer) == []
    assert credential(engine, h.customer, "login_password") is None
    # It still works where it was sent for.
    assert complete(writer, h.card, code, "online").value().channel == "online"
    assert [e.channel for e in live(engine, h.customer)] == ["online"]


def test_a_code_works_once(writer: Writer, engine: Engine) -> None:
    h = holder(writer)
    code = texted(writer, engine, h)
    first = complete(writer, h.card, code).value()
    replay = complete(writer, h.card, code, password="Another2027")
    assert not replay.verdict.ok and replay.result is None
    assert [e.id for e in live(engine, h.customer)] == [first.id]
    assert password_ok(writer, h.customer)  # the replay set no new password
    assert not password_ok(writer, h.customer, "Another2027")


def test_one_code_completing_twice_in_one_batch_enrols_once(writer: Writer, engine: Engine) -> None:
    h = holder(writer)
    code = texted(writer, engine, h)
    command = enrolment.complete_self_enrolment(
        VAULT, card_number=h.card, code=code, login_password=PASSWORD
    )
    answers = in_one_batch(writer, [command, command])
    assert [a.verdict.ok for a in answers] == [True, False]
    assert len(all_rows(engine, h.customer)) == 1


def test_a_code_sent_for_my_card_does_not_enrol_someone_else(
    writer: Writer, engine: Engine
) -> None:
    mine, theirs = holder(writer, 1), holder(writer, 2)
    code = texted(writer, engine, mine)
    stolen = complete(writer, theirs.card, code)
    assert not stolen.verdict.ok
    assert live(engine, theirs.customer) == [] and live(engine, mine.customer) == []


def test_completing_with_an_unknown_card_or_a_wrong_code_enrols_no_one(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    code = texted(writer, engine, h)
    assert not complete(writer, unknown_card(), code).verdict.ok
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert complete(writer, h.card, wrong).verdict == Verdict(False, attempts_left=4)
    assert live(engine, h.customer) == []
    assert complete(writer, h.card, code).verdict.ok


def test_a_weak_password_is_refused_and_the_code_stays_usable(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    code = texted(writer, engine, h)
    fails(writer, enrolment.complete_self_enrolment(
        VAULT, card_number=h.card, code=code, login_password="short1"
    ), "INVALID_INPUT")  # fmt: skip
    assert live(engine, h.customer) == []
    assert complete(writer, h.card, code).verdict.ok


def test_a_lost_card_cannot_begin_even_with_the_right_pin(writer: Writer, engine: Engine) -> None:
    h = holder(writer)
    writer.execute(cards.report_lost(VAULT, customer_id=h.customer, card_number=h.card,
                                     channel="phone"))  # fmt: skip
    fails(writer, enrolment.begin_self_enrolment(VAULT, card_number=h.card, pin=PIN),
          "CARD_REPORTED_LOST")  # fmt: skip
    assert sms_codes(engine, h.customer) == [] and code_rows(engine, h.customer) == []


def test_a_card_lost_after_the_code_was_sent_cannot_complete(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    code = texted(writer, engine, h)
    writer.execute(cards.report_lost(VAULT, customer_id=h.customer, card_number=h.card,
                                     channel="phone"))  # fmt: skip
    fails(writer, enrolment.complete_self_enrolment(
        VAULT, card_number=h.card, code=code, login_password=PASSWORD
    ), "CARD_REPORTED_LOST")  # fmt: skip
    assert live(engine, h.customer) == []
    assert credential(engine, h.customer, "login_password") is None


def test_a_customer_enrolled_at_the_counter_keeps_the_counter_limits(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    at_counter = counter(writer, h.customer, daily_limit=50_000 * YUAN)
    code = texted(writer, engine, h)
    kept = complete(writer, h.card, code).value()
    assert kept == at_counter
    assert of(engine, h.customer) == at_counter
    assert len(all_rows(engine, h.customer)) == 1
    assert password_ok(writer, h.customer)


def test_a_self_enrolled_customer_can_be_lifted_at_the_counter(
    writer: Writer, engine: Engine
) -> None:
    h = holder(writer)
    complete(writer, h.card, texted(writer, engine, h)).value()
    lifted = counter(writer, h.customer)
    assert (lifted.assurance, lifted.daily_limit) == ("counter", 1_000_000 * YUAN)
    assert of(engine, h.customer) == lifted


def test_self_enrolling_again_does_not_raise_a_lowered_limit(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    h = holder(writer)
    complete(writer, h.card, texted(writer, engine, h)).value()
    set_limits(writer, h.customer, 500 * YUAN, 100 * YUAN).value()
    wait_to_resend(clock)
    complete(writer, h.card, texted(writer, engine, h)).value()
    assert limits_of(engine, h.customer) == (500 * YUAN, 100 * YUAN)


# -- the customer's own limits ------------------------------------------------------------
def test_lowering_a_limit_needs_no_factor_and_is_audited(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    counter(writer, customer)
    done = set_limits(writer, customer, 3_000 * YUAN, 1_000 * YUAN).value()
    assert (done.daily_limit, done.per_payment_limit) == (3_000 * YUAN, 1_000 * YUAN)
    assert limits_of(engine, customer) == (3_000 * YUAN, 1_000 * YUAN)
    [entry] = audits(engine, "enrolment.limits")
    assert entry["actor"] == f"customer:{customer}"
    assert entry["detail"] == {
        "channel": "online",
        "from": [1_000_000 * YUAN, 1_000_000 * YUAN],
        "to": [3_000 * YUAN, 1_000 * YUAN],
    }


@pytest.mark.parametrize("raised", ["daily", "per_payment"])
def test_raising_a_limit_without_the_token_is_refused(
    writer: Writer, engine: Engine, raised: str
) -> None:
    customer = person(writer)
    counter(writer, customer, daily_limit=3_000 * YUAN, per_payment_limit=1_000 * YUAN)
    daily, per_payment = (4_000, 500) if raised == "daily" else (2_000, 1_500)
    err = fails(writer, enrolment.set_limits(
        VAULT, via="online", customer_id=customer, channel="online", daily_limit=daily * YUAN,
        per_payment_limit=per_payment * YUAN,
    ), "STRONGER_FACTOR_REQUIRED")  # fmt: skip
    assert err.details == {"methods": ["token"]}
    assert limits_of(engine, customer) == (3_000 * YUAN, 1_000 * YUAN)


def test_raising_a_limit_with_the_token_works_once_per_code(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer)
    counter(writer, customer, daily_limit=3_000 * YUAN)
    totp = token(writer, customer)
    code = token_code(totp, clock)
    done = set_limits(writer, customer, 9_000 * YUAN, 2_000 * YUAN, code).value()
    assert (done.daily_limit, done.per_payment_limit) == (9_000 * YUAN, 2_000 * YUAN)
    assert limits_of(engine, customer) == (9_000 * YUAN, 2_000 * YUAN)
    replay = set_limits(writer, customer, 10_000 * YUAN, 2_000 * YUAN, code)
    assert not replay.verdict.ok
    assert limits_of(engine, customer) == (9_000 * YUAN, 2_000 * YUAN)


def test_the_token_never_lifts_a_limit_above_the_banks_maximum(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer)
    counter(writer, customer, daily_limit=3_000 * YUAN)
    totp = token(writer, customer)
    code = token_code(totp, clock)
    fails(writer, enrolment.set_limits(
        VAULT, via="online", customer_id=customer, channel="online",
        daily_limit=1_000_000 * YUAN + 1,
        per_payment_limit=100 * YUAN, token_code=code,
    ), "ABOVE_BANK_MAXIMUM")  # fmt: skip
    assert limits_of(engine, customer) == (3_000 * YUAN, 3_000 * YUAN)
    # The refusal spent nothing: the code still lifts the limit to the maximum.
    set_limits(writer, customer, 1_000_000 * YUAN, 1_000_000 * YUAN, code).value()


def test_a_self_enrolled_customer_raises_only_up_to_the_self_enrolment_maximum(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    h = holder(writer)
    complete(writer, h.card, texted(writer, engine, h)).value()
    set_limits(writer, h.customer, 1_000 * YUAN, 500 * YUAN).value()
    totp = token(writer, h.customer)
    fails(writer, enrolment.set_limits(
        VAULT, via="online", customer_id=h.customer, channel="online", daily_limit=SELF_DAILY + 1,
        per_payment_limit=500 * YUAN, token_code=token_code(totp, clock),
    ), "ABOVE_BANK_MAXIMUM")  # fmt: skip
    set_limits(writer, h.customer, SELF_DAILY, SELF_PER_PAYMENT, token_code(totp, clock)).value()
    assert limits_of(engine, h.customer) == (SELF_DAILY, SELF_PER_PAYMENT)


def test_a_wrong_token_code_is_counted_and_changes_no_limit(
    writer: Writer, engine: Engine, clock: FixedClock
) -> None:
    customer = person(writer)
    counter(writer, customer, daily_limit=3_000 * YUAN)
    totp = token(writer, customer)
    right = token_code(totp, clock)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    failed = set_limits(writer, customer, 9_000 * YUAN, 2_000 * YUAN, wrong)
    assert not failed.verdict.ok and failed.result is None
    assert failed.verdict.attempts_left == get_settings().auth_max_failures - 1
    assert customer_error(failed).code == "AUTH_FAILED"
    # The failure was committed, although the command did nothing else.
    assert failures(engine, customer, "token") == 1
    assert limits_of(engine, customer) == (3_000 * YUAN, 3_000 * YUAN)
    assert audits(engine, "enrolment.limits") == []
    assert [a["outcome"] for a in audits(engine, "credential.check.token")] == ["failed"]


def test_a_customer_without_a_token_cannot_raise(writer: Writer, engine: Engine) -> None:
    customer = person(writer)
    counter(writer, customer, daily_limit=3_000 * YUAN)
    assert not set_limits(writer, customer, 9_000 * YUAN, 2_000 * YUAN, "123456").verdict.ok
    assert limits_of(engine, customer) == (3_000 * YUAN, 3_000 * YUAN)


def test_setting_limits_needs_a_live_enrolment_and_sane_values(
    writer: Writer, engine: Engine
) -> None:
    customer = person(writer)
    fails(writer, enrolment.set_limits(
        VAULT, via="online", customer_id=customer, channel="online", daily_limit=100,
        per_payment_limit=100,
    ), "NOT_ENROLLED")  # fmt: skip
    counter(writer, customer)
    for daily, per_payment in ((0, 0), (100, 200), (True, 1), (100, -1)):
        fails(writer, enrolment.set_limits(
            VAULT, via="online", customer_id=customer, channel="online", daily_limit=daily,
            per_payment_limit=per_payment,
        ), "INVALID_INPUT")  # fmt: skip
    assert limits_of(engine, customer) == (1_000_000 * YUAN, 1_000_000 * YUAN)


def test_a_lowered_bank_maximum_refuses_keeping_an_older_higher_limit(
    writer: Writer, engine: Engine
) -> None:
    """Agreements above today's maximum stay as written (the limits service caps them), but
    the customer cannot set them again above it."""
    customer = person(writer)
    counter(writer, customer)
    request = writer.execute(approvals.propose(
        "parameter.set", {"name": "limits.channel.online.daily", "value": 50_000 * YUAN},
        reason="风险提示", maker=STAFF,
    ))  # fmt: skip
    writer.execute(approvals.approve(request, checker=CHECKER))
    assert limits_of(engine, customer) == (1_000_000 * YUAN, 1_000_000 * YUAN)
    fails(writer, enrolment.set_limits(
        VAULT, via="online", customer_id=customer, channel="online", daily_limit=60_000 * YUAN,
        per_payment_limit=10_000 * YUAN,
    ), "ABOVE_BANK_MAXIMUM")  # fmt: skip
    set_limits(writer, customer, 50_000 * YUAN, 10_000 * YUAN).value()
