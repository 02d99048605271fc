"""The outbox: events a write must announce, appended in the write's own transaction.

Workers deliver them afterwards (notifications, merchant webhooks, risk aggregates), so an event
exists if and only if the write that caused it committed.
"""

import json
from typing import Any

from ebank.core.tables import outbox_events
from ebank.core.writer import BufferedRows, Tx


class Outbox(BufferedRows):
    order = 50
    table = outbox_events


def emit(tx: Tx, topic: str, key: str, payload: dict[str, Any]) -> None:
    tx.part(Outbox).add(
        {
            "topic": topic,
            "key": key,
            "payload": json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str),
            "created_at": tx.now,
        }
    )
