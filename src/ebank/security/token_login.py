"""A two-step login with a password then a token code (TOTP), for logins that keep both on
their own row: bank staff (the console) and enterprises' operators (corporate banking).

The row's table has the counting columns (`tables.lockout_columns`), `token_seed` (sealed),
`last_step`, `challenge_hash`, `challenge_expires_at` and `disabled_at`. Step one checks the
password (argon2id, before the writer) and leaves a challenge on the row; step two checks a
token code against it and opens a session. Both count on the row's one lockout, exactly as a
customer's factors count (`security.service`): locked after 5 failures, for good after the
3rd lock, a wrong code counting like a wrong password. No answer says which factor failed.
"""

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Table, select

from ebank.core import audit
from ebank.core.clock import as_utc
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.security import service as security
from ebank.security import sessions
from ebank.security.service import Checked, Verdict

T = TypeVar("T")
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,31}")
USERNAME_RULE = "a username is 3-32 of a-z, 0-9, '.', '_', '-'"


def canonical_username(value: object) -> str | None:
    """A login's username in canonical form (lower case), or None when it cannot be one."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if _USERNAME.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class LoginChallenge:
    token: str  # handed to the caller once; only its hash is kept
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenLogin(Generic[T]):
    """How one kind of login (`holder`: "staff", "operator") logs in on `channel`.

    `open_session(tx, row)` opens the session of the row whose factors passed, and says what
    the caller gets back.
    """

    table: Table
    holder: str
    channel: str
    seed_purpose: str
    open_session: Callable[[Tx, Any], T]

    def _failed(self, tx: Tx, row: Any, **detail: str) -> None:
        """Every failed step is in the audit chain; one naming no login is anonymous."""
        who = "anonymous" if row is None else f"{self.holder}:{row['id']}"
        audit.record(
            tx, actor=who, action=f"{self.holder}.login", subject="" if row is None else who,
            channel=self.channel, outcome="failed", detail=detail,
        )  # fmt: skip

    def begin(
        self, load: Callable[[Connection, bool], Any], password: str
    ) -> Command[Checked[LoginChallenge]]:
        """Step one: check the password of the row `load(conn, lock)` names (None: nobody).

        Nobody fails exactly like a wrong password, after hashing a decoy, and so does a
        disabled login whatever the password. A right password does not yet end a run of
        failures: only a completed login does. The challenge lives as long as an SMS code and
        replaces one this login left half done.
        """
        check = security.SecretCheck(password, load, table=self.table)

        def run(tx: Tx) -> Checked[LoginChallenge]:
            verdict = check.record(tx, settle=False)
            row = check.row
            if verdict.ok and row["disabled_at"] is not None:
                self._failed(tx, row, reason="disabled")
                return Checked(Verdict(False))
            if not verdict.ok:
                self._failed(tx, row, factor="password")
                return Checked(verdict)
            token = secrets.token_urlsafe(32)
            expires = tx.now + timedelta(seconds=get_settings().sms_code_ttl_seconds)
            tx.conn.execute(
                self.table.update()
                .where(self.table.c.id == row["id"])
                .values(challenge_hash=sessions.digest(token), challenge_expires_at=expires)
            )
            return Checked(verdict, LoginChallenge(token, expires))

        return Command(run, prepare=check.prepare)

    def complete(self, vault: Vault, *, challenge: str, code: str) -> Command[Checked[T]]:
        """Step two: the token code against the challenge; on success, a session.

        The challenge is spent by the login it completes; an unknown, expired, replaced or
        spent one is SESSION_EXPIRED (log in again). A wrong or replayed code counts on the
        lockout and answers like a wrong password; a login disabled or locked meanwhile does
        not complete.
        """
        table = self.table

        def run(tx: Tx) -> Checked[T]:
            if not isinstance(challenge, str) or not 0 < len(challenge) <= 100:
                raise EbankError("SESSION_EXPIRED")
            query = select(table).where(table.c.challenge_hash == sessions.digest(challenge))
            row = tx.conn.execute(query.with_for_update()).mappings().first()
            if row is None or as_utc(row["challenge_expires_at"]) <= tx.now:
                raise EbankError("SESSION_EXPIRED")
            if row["disabled_at"] is not None:
                self._failed(tx, row, reason="disabled")
                return Checked(Verdict(False))
            sealed = row["token_seed"]
            seed = None if sealed is None else vault.decrypt(sealed, purpose=self.seed_purpose)
            verdict = security.count_token(tx, row, seed, code, table=table)
            if not verdict.ok:
                self._failed(tx, row, factor="token")
                return Checked(verdict)
            tx.conn.execute(
                table.update()
                .where(table.c.id == row["id"])
                .values(challenge_hash=None, challenge_expires_at=None)
            )
            return Checked(verdict, self.open_session(tx, row))

        return Command(run)
