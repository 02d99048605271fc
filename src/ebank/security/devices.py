"""Devices: mobile devices bound to a customer, and the devices customers log in from.

DOMAIN.md §3: mobile banking binds devices, and a new device is enrolled with an SMS code. The
app makes up a device id; the bank keeps only a keyed hash of it (`Vault.lookup_hash`), with
a name the customer gives it. The code is bound to the device's hash, so a code sent to bind
one device binds no other. Every new binding is audited and announced to the customer by SMS,
and a customer may have at most `max_bound_devices` bound at once. Two customers may bind one
shared phone: each has their own binding.

A login from a device (a browser's id online, the app's id on mobile) the customer has never
used raises a login alert by SMS (DOMAIN.md §7). Such a device is remembered as `seen`, which
is not a binding.

Sessions keep the same keyed hash of the device they were opened from (`device_hash`), so
unbinding a device ends every session the customer opened from it, at once.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ebank.core import audit
from ebank.core.channels import NAMES_ZH
from ebank.core.clock import BUSINESS_TZ, as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.notify import service as notify
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.sessions import SESSION_CHANNELS
from ebank.security.tables import devices

DEVICE_PURPOSE = "security.device"
BINDING_PURPOSE = "device_binding"  # of the SMS codes that bind a device
MAX_DEVICE_ID = 200
MAX_LABEL = 30
_LABEL = re.compile(r"[\w '.()（）-]+")  # letters (any script), digits, spaces, a little else
# The name goes into the bank's own SMS: it must not smuggle in a phone number to call.
_PHONE_LIKE = re.compile(r"\d{5,}")


@dataclass(frozen=True, slots=True)
class Device:
    """A device bound to a customer's mobile banking."""

    id: int
    customer_id: int
    label: str
    bound_at: datetime
    last_seen_at: datetime


def device_hash(vault: Vault, device: object) -> str:
    """The keyed hash a device is known by: in its binding, and in the sessions opened from
    it. The bank never keeps the device's id itself."""
    if not isinstance(device, str) or not 0 < len(device) <= MAX_DEVICE_ID:
        raise EbankError("INVALID_INPUT", reason="a device id is 1-200 characters")
    if not device.isprintable():
        raise EbankError("INVALID_INPUT", reason="a device id is printable characters")
    return vault.lookup_hash(device, purpose=DEVICE_PURPOSE)


def _label(label: object) -> str:
    if not isinstance(label, str) or not 0 < len(label.strip()) <= MAX_LABEL:
        raise EbankError("INVALID_INPUT", reason="a device name is 1-30 characters")
    label = label.strip()
    if not _LABEL.fullmatch(label):
        raise EbankError("INVALID_INPUT", reason="a device name is letters, digits and spaces")
    if _PHONE_LIKE.search(label):
        raise EbankError("INVALID_INPUT", reason="a device name has no run of 5 digits")
    return label


def _row(conn: Connection, customer_id: int, channel: str, digest: str) -> Any:
    query = select(devices).where(
        devices.c.customer_id == customer_id,
        devices.c.channel == channel,
        devices.c.device_hash == digest,
    )
    return conn.execute(query.with_for_update()).mappings().first()


def _check_room(conn: Connection, customer_id: int, row: Any) -> None:
    """TOO_MANY_DEVICES unless this device is bound already or there is room for one more."""
    if row is not None and row["status"] == "bound":
        return
    bound = conn.execute(
        select(func.count())
        .select_from(devices)
        .where(devices.c.customer_id == customer_id, devices.c.status == "bound")
    ).scalar_one()
    limit = get_settings().max_bound_devices
    if bound >= limit:
        raise EbankError("TOO_MANY_DEVICES", limit=limit)


def _binding(digest: str) -> str:
    return security.binding_of(device=digest)


def begin_binding(
    vault: Vault, *, customer_id: int, device: str, label: str
) -> Command[security.CodeIssued]:
    """Send the customer an SMS code to bind this device, naming it in the message."""

    def run(tx: Tx) -> security.CodeIssued:
        digest, name = device_hash(vault, device), _label(label)
        customers.holder(tx.conn, customer_id)
        _check_room(tx.conn, customer_id, _row(tx.conn, customer_id, "mobile", digest))
        return security.issue_code(
            vault,
            customer_id=customer_id,
            purpose=BINDING_PURPOSE,
            binding=_binding(digest),
            message=f"绑定手机银行新设备“{name}”",
        ).fn(tx)

    return Command(run)


def confirm_binding(
    vault: Vault, *, customer_id: int, device: str, label: str, code: str
) -> Command[security.Checked[Device]]:
    """Bind the device if the code sent for it is right; binding it again changes nothing.

    A wrong code is committed and counted (the verdict comes back failed, nothing bound);
    `Checked.value()` turns it into the customer's error.
    """

    def run(tx: Tx) -> security.Checked[Device]:
        digest, name = device_hash(vault, device), _label(label)
        customers.holder(tx.conn, customer_id, lock=True)  # bindings one at a time: the limit
        row = _row(tx.conn, customer_id, "mobile", digest)
        _check_room(tx.conn, customer_id, row)
        verdict = security.check_code(
            vault,
            customer_id=customer_id,
            purpose=BINDING_PURPOSE,
            binding=_binding(digest),
            code=code,
        ).fn(tx)
        if not verdict.ok:
            return security.Checked(verdict)
        if row is not None and row["status"] == "bound":
            return security.Checked(verdict, _view(row))
        values = {
            "status": "bound",
            "label": name,
            "bound_at": tx.now,
            "unbound_at": None,
            "last_seen_at": tx.now,
        }
        if row is None:
            insert = devices.insert().values(
                customer_id=customer_id,
                channel="mobile",
                device_hash=digest,
                first_seen_at=tx.now,
                **values,
            )
            device_id = tx.conn.execute(insert).inserted_primary_key[0]
        else:
            device_id = row["id"]
            tx.conn.execute(devices.update().where(devices.c.id == device_id).values(values))
        audit.record(
            tx,
            actor=f"customer:{customer_id}",
            action="device.bind",
            subject=f"device:{device_id}",
            channel="mobile",
            detail={"customer": customer_id, "label": name},
        )
        notify.send_sms(
            tx,
            vault,
            customer_id=customer_id,
            kind="alert",
            body=f"【ebank】您的手机银行已绑定新设备“{name}”，如非本人操作请立即致电本行客服并解绑。",
        )
        return security.Checked(verdict, Device(device_id, customer_id, name, tx.now, tx.now))

    return Command(run)


def unbind(*, customer_id: int, device_id: int, actor: str, channel: str) -> Command[None]:
    """Unbind one of the customer's devices (by the customer, or staff for them), and end at
    once every session the customer opened from it: a lost phone is signed out too.

    Someone else's device is answered like an unknown one, and their sessions, even from a
    phone both bound, stay; unbinding twice is harmless.
    """

    def run(tx: Tx) -> None:
        if type(device_id) is not int:
            raise EbankError("DEVICE_NOT_FOUND")
        query = select(devices).where(devices.c.id == device_id).with_for_update()
        row = tx.conn.execute(query).mappings().first()
        if row is None or row["customer_id"] != customer_id or row["status"] == "seen":
            raise EbankError("DEVICE_NOT_FOUND")
        if row["status"] == "unbound":
            return
        tx.conn.execute(
            devices.update()
            .where(devices.c.id == device_id)
            .values(status="unbound", unbound_at=tx.now)
        )
        ended = sessions.end_all(
            tx, customer_id=customer_id, device_hash=row["device_hash"], reason="unbound",
            actor=actor, channel=channel,
        )  # fmt: skip
        audit.record(
            tx,
            actor=actor,
            action="device.unbind",
            subject=f"device:{device_id}",
            channel=channel,
            detail={"customer": customer_id, "label": row["label"], "sessions_ended": ended},
        )

    return Command(run)


def _view(row: Any) -> Device:
    return Device(
        row["id"],
        row["customer_id"],
        row["label"],
        as_utc(row["bound_at"]),
        as_utc(row["last_seen_at"]),
    )


def devices_of(conn: Connection, customer_id: int) -> list[Device]:
    """The customer's bound devices, the latest bound first."""
    rows = conn.execute(
        select(devices)
        .where(devices.c.customer_id == customer_id, devices.c.status == "bound")
        .order_by(devices.c.bound_at.desc(), devices.c.id.desc())
    ).mappings()
    return [_view(row) for row in rows]


def is_bound(conn: Connection, vault: Vault, customer_id: int, device: str) -> bool:
    """Whether this device is bound to this customer's mobile banking."""
    if not isinstance(device, str):
        return False
    query = select(devices.c.id).where(
        devices.c.customer_id == customer_id,
        devices.c.channel == "mobile",
        devices.c.device_hash == vault.lookup_hash(device, purpose=DEVICE_PURPOSE),
        devices.c.status == "bound",
    )
    return conn.execute(query).first() is not None


def note_login(tx: Tx, vault: Vault, *, customer_id: int, channel: str, device: str) -> bool:
    """Remember the device a customer logs in from, in the login's own transaction.

    A device this customer never used on this channel before is recorded as seen and raises
    a login alert by SMS; returns whether it was new. A known device's last use moves on.
    """
    if channel not in SESSION_CHANNELS:
        raise EbankError("INVALID_INPUT", reason=f"logins with devices are {SESSION_CHANNELS}")
    if type(customer_id) is not int:
        raise EbankError("INVALID_INPUT", reason="a customer id is an integer")
    digest = device_hash(vault, device)
    row = _row(tx.conn, customer_id, channel, digest)
    if row is not None:
        tx.conn.execute(
            devices.update().where(devices.c.id == row["id"]).values(last_seen_at=tx.now)
        )
        return False
    tx.conn.execute(
        devices.insert().values(
            customer_id=customer_id,
            channel=channel,
            device_hash=digest,
            status="seen",
            first_seen_at=tx.now,
            last_seen_at=tx.now,
        )
    )
    at = tx.now.astimezone(BUSINESS_TZ)
    notify.send_sms(
        tx,
        vault,
        customer_id=customer_id,
        kind="alert",
        body=(
            f"【ebank】您的{NAMES_ZH[channel]}于{at.month}月{at.day}日{at:%H:%M}在新设备登录。"
            "如非本人操作，请立即修改登录密码并致电本行客服。"
        ),
    )
    return True
