"""The outbox: events a write must announce, appended in the write's own transaction.

Workers deliver them afterwards (notifications, merchant webhooks, risk aggregates), so an event
exists if and only if the write that caused it committed.
"""

import json
from typing import Any

from ebank.core.tables import outbox_events
from ebank.core.writer import Participant, Tx


class Outbox(Participant):
    order = 50

    def __init__(self, tx: Tx) -> None:
        super().__init__(tx)
        self.pending: list[dict[str, Any]] = []
        self._mark = 0

    def begin_command(self) -> None:
        self._mark = len(self.pending)

    def rollback_command(self) -> None:
        del self.pending[self._mark :]

    def flush(self) -> None:
        if self.pending:
            self.tx.raw.execute(outbox_events.insert(), self.pending)
            self.pending.clear()
            self._mark = 0


def emit(tx: Tx, topic: str, key: str, payload: dict[str, Any]) -> None:
    outbox = tx.part(Outbox)
    outbox.touch()
    outbox.pending.append(
        {
            "topic": topic,
            "key": key,
            "payload": json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str),
            "created_at": tx.now,
        }
    )
