"""What every API router needs: reads off the event loop, the bank's vault, idempotent creates,
and the typed path and header parameters they share."""

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from ebank.core.crypto import Vault, vault_for
from ebank.core.writer import Command, Idempotency, Tx

T = TypeVar("T")
ANSWER_PURPOSE = "api.idempotent_answer"
FINGERPRINT_PURPOSE = "api.idempotent_request"

# Ids are 64-bit: a larger number in a path is refused before it reaches the database.
ObjectId = Annotated[int, Path(ge=1, le=2**63 - 1)]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=128,
        description="Your unique id of this request; a retry with the same key and body gets "
        "the first answer, another body under the same key is a 409",
    ),
]  # fmt: skip
# Cursor pages of newest-first lists: the last id seen, and how many.
Before = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Last id seen")]
PageSize = Annotated[int, Query(ge=1, le=200)]
DeviceId = Annotated[
    str,
    Header(
        alias="X-Device-ID", max_length=200,
        description="The device id: the mobile app's (required on the mobile channel), or a "
        "browser's if it keeps one (a first login from a device texts the customer an alert)",
    ),
]  # fmt: skip


def client_address(request: Request) -> str:
    """The caller's IP address as the connection shows it (what risk control keys on)."""
    return request.client.host[:45] if request.client else ""


async def read(request: Request, fn: Callable[[Connection], T]) -> T:
    """Run a read on its own connection, in a worker thread so the event loop stays free."""

    def run() -> T:
        with request.app.state.engine.connect() as conn:
            return fn(conn)

    return await run_in_threadpool(run)


async def write(request: Request, command: Command[T]) -> T:
    """Hand a command to the app's writer and wait for its commit."""
    return await request.app.state.writer.run(command)  # type: ignore[no-any-return]


def vault_of(request: Request | FastAPI) -> Vault:
    """The bank's vault, made from the settings on first use unless the app was given one."""
    state = (request if isinstance(request, FastAPI) else request.app).state
    if state.vault is None:
        state.vault = vault_for(state.settings)
    return state.vault  # type: ignore[no-any-return]


async def create(
    request: Request,
    *,
    scope: str,
    key: str,
    body: BaseModel | None,
    make: Callable[[Tx], BaseModel],
) -> dict[str, Any]:
    """Run a creating request once per (scope, key), through the writer's idempotency.

    A repeat with the same route, path and body gets the first answer; anything else under the
    key is IDEMPOTENCY_CONFLICT. Both the fingerprint and the stored answer are keyed by the
    vault: a request may carry an ID number, and an answer a card number or a token secret.
    """
    vault = vault_of(request)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    params = None if body is None else body.model_dump(mode="json")
    what = json.dumps(
        [request.method, route, request.path_params, params],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip
    idempotency = Idempotency(scope, key, vault.lookup_hash(what, purpose=FINGERPRINT_PURPOSE))

    def run(tx: Tx) -> str:
        answer = make(tx).model_dump_json()
        return vault.encrypt(answer, purpose=ANSWER_PURPOSE)

    sealed = await write(request, Command(run, idempotency=idempotency))
    return json.loads(vault.decrypt(sealed, purpose=ANSWER_PURPOSE))  # type: ignore[no-any-return]
