"""An enterprise's operators (操作员) of corporate banking, and how they log in.

The enterprise signs up at the counter: staff give each person it names a login with their
roles: makers (经办) enter and submit payroll; checkers (复核) approve what a maker submitted,
never their own. A login is the enterprise's credit code, the operator's username and
password, then a code from the operator's own token (`security.token_login`, the staff's
mechanism): each operator confirms with their own factor, so an approval proves who gave it.
The session is the enterprise's and names the operator (`security.sessions`).
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.writer import Command, Tx
from ebank.corporate.tables import OPERATOR_ROLES, operators
from ebank.customers import service as customers
from ebank.customers.models import Kind
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.service import Checked, Verdict
from ebank.security.token_login import (
    USERNAME_RULE,
    LoginChallenge,
    TokenLogin,
    canonical_username,
)

SEED_PURPOSE = "corporate.operator_token"


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    customer_id: int  # the enterprise
    username: str
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    disabled: bool

    @property
    def actor(self) -> str:
        """How audit records name them."""
        return f"operator:{self.id}"


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A new login; the token's URI (with the seed) is shown this once."""

    operator: Operator
    otpauth_uri: str


@dataclass(frozen=True, slots=True)
class OperatorLogin:
    operator: Operator
    started: sessions.Started


def _view(row: Any) -> Operator:
    return Operator(
        row["id"], row["customer_id"], row["username"], row["name"],
        tuple(row["roles"].split(",")), as_utc(row["created_at"]), row["disabled_at"] is not None,
    )  # fmt: skip


def add(
    vault: Vault, *, customer_id: int, username: str, name: str, roles: tuple[str, ...],
    password: str, actor: str, channel: str = "counter",
) -> Command[Enrolled]:  # fmt: skip
    """Give a person the enterprise named a corporate-banking login with these roles, and the
    token they log in and approve with."""
    new = security.NewSecret("login_password", password)

    def run(tx: Tx) -> Enrolled:
        kind, _ = customers.holder(tx.conn, customer_id)
        if kind != Kind.ENTERPRISE.value:
            raise EbankError("NOT_AN_ENTERPRISE")
        canonical = canonical_username(username)
        if canonical is None:
            raise EbankError("INVALID_INPUT", reason=USERNAME_RULE)
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            raise EbankError("INVALID_INPUT", reason="a name is 1-100 characters")
        if not name.strip().isprintable():
            raise EbankError("INVALID_INPUT", reason="a name is printable text")
        if not isinstance(roles, tuple | list) or not roles:
            raise EbankError("INVALID_INPUT", reason=f"roles are one or more of {OPERATOR_ROLES}")
        if any(role not in OPERATOR_ROLES for role in roles):
            raise EbankError("INVALID_INPUT", reason=f"roles are one or more of {OPERATOR_ROLES}")
        taken = select(operators.c.id).where(
            operators.c.customer_id == customer_id, operators.c.username == canonical
        )
        if tx.conn.execute(taken).first() is not None:
            raise EbankError("OPERATOR_EXISTS", username=canonical)
        sealed, uri = security.new_token(
            vault, purpose=SEED_PURPOSE, label=f"corporate-{customer_id}-{canonical}"
        )
        row = {
            "customer_id": customer_id, "username": canonical, "name": name.strip(),
            "roles": ",".join(sorted(set(roles))), "secret": new.hashed(), "failures": 0,
            "locks": 0, "locked_until": None, "permanently_locked": False, "updated_at": tx.now,
            "token_seed": sealed, "last_step": None, "challenge_hash": None,
            "challenge_expires_at": None, "created_by": actor, "created_at": tx.now,
            "disabled_at": None,
        }  # fmt: skip
        operator_id = tx.conn.execute(operators.insert().values(row)).inserted_primary_key[0]
        audit.record(
            tx, actor=actor, action="operator.add", subject=f"operator:{operator_id}",
            channel=channel,
            detail={"customer": customer_id, "username": canonical, "roles": row["roles"]},
        )  # fmt: skip
        return Enrolled(_view({**row, "id": operator_id}), uri)

    return Command(run, prepare=new.prepare)


def get(conn: Connection, operator_id: int) -> Operator:
    row = conn.execute(select(operators).where(operators.c.id == operator_id)).mappings().first()
    if row is None:
        raise EbankError("OPERATOR_NOT_FOUND")
    return _view(row)


def of_enterprise(conn: Connection, customer_id: int) -> list[Operator]:
    query = select(operators).where(operators.c.customer_id == customer_id).order_by(operators.c.id)
    return [_view(row) for row in conn.execute(query).mappings()]


def disable(
    *, customer_id: int, operator_id: int, actor: str, channel: str = "counter"
) -> Command[Operator]:
    """Stop an operator's login (someone left the company): it cannot log in, its sessions
    end at once, and what it submitted waits for another operator."""

    def run(tx: Tx) -> Operator:
        query = select(operators).where(
            operators.c.id == operator_id, operators.c.customer_id == customer_id
        )
        row = tx.conn.execute(query.with_for_update()).mappings().first()
        if row is None:
            raise EbankError("OPERATOR_NOT_FOUND")
        values = {"disabled_at": row["disabled_at"] or tx.now}
        tx.conn.execute(operators.update().where(operators.c.id == operator_id).values(values))
        ended = sessions.end_all(
            tx, customer_id=customer_id, operator_id=operator_id, reason="disabled",
            actor=actor, channel=channel,
        )  # fmt: skip
        audit.record(
            tx, actor=actor, action="operator.disable", subject=f"operator:{operator_id}",
            channel=channel, detail={"sessions_ended": ended},
        )  # fmt: skip
        return _view({**row, **values})

    return Command(run)


# -- logging in ---------------------------------------------------------------------------------
def _open_session(tx: Tx, row: Any) -> OperatorLogin:
    started = sessions.start(
        customer_id=row["customer_id"], operator_id=row["id"], channel=sessions.OPERATOR_CHANNEL
    ).fn(tx)
    return OperatorLogin(_view(row), started)


_LOGIN = TokenLogin(
    operators, holder="operator", channel=sessions.OPERATOR_CHANNEL, seed_purpose=SEED_PURPOSE,
    open_session=_open_session,
)  # fmt: skip


def begin_login(
    vault: Vault, *, credit_code: str, username: str, password: str
) -> Command[Checked[LoginChallenge]]:
    """Step one: the enterprise's credit code, the operator's username and password; on
    success a challenge for the token code. A code or username naming nobody fails exactly
    like a wrong password."""
    canonical = canonical_username(username)

    def load(conn: Connection, lock: bool) -> Any:
        if canonical is None or not isinstance(credit_code, str):
            return None
        try:
            enterprise = customers.find_by_id_number(
                conn, vault, Kind.ENTERPRISE, credit_code, today=date.max
            )
        except EbankError:  # not a credit code
            return None
        if enterprise is None:
            return None
        query = select(operators).where(
            operators.c.customer_id == enterprise.id, operators.c.username == canonical
        )
        return conn.execute(query.with_for_update() if lock else query).mappings().first()

    return _LOGIN.begin(load, password)


def complete_login(vault: Vault, *, challenge: str, code: str) -> Command[Checked[OperatorLogin]]:
    """Step two: the token code; on success a corporate session for the enterprise."""
    return _LOGIN.complete(vault, challenge=challenge, code=code)


def check_token(tx: Tx, vault: Vault, operator: Operator, code: str) -> Verdict:
    """An operator confirms an act (a checker's approval) with a fresh token code, counted on
    their login's lockout; a disabled login confirms nothing."""
    row = (
        tx.conn.execute(select(operators).where(operators.c.id == operator.id).with_for_update())
        .mappings()
        .one()
    )
    if row["disabled_at"] is not None:
        return Verdict(False)
    seed = vault.decrypt(row["token_seed"], purpose=SEED_PURPOSE)
    return security.count_token(tx, row, seed, code, table=operators)
