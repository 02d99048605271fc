"""Builds the ASGI app from the channels: API, health and metrics, web pages, static files."""

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html import escape
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.types import ASGIApp

from ebank.bills.service import start_bill_delivery
from ebank.channels.api import bills as bills_api
from ebank.channels.api import certificates, customer, errors, health, limits, staff
from ebank.channels.api import clearing as clearing_api
from ebank.channels.api import corporate as corporate_api
from ebank.channels.api import demo as demo_api
from ebank.channels.api import gateway as gateway_api
from ebank.channels.api import online_payments as online_payments_api
from ebank.channels.api import payments as payments_api
from ebank.channels.api import receipts as receipts_api
from ebank.channels.api import risk as risk_api
from ebank.channels.api import standing as standing_api
from ebank.channels.api.common import vault_of
from ebank.channels.api.health import Metrics
from ebank.channels.api.merchant_auth import SignedResponses
from ebank.channels.api.middleware import RequestMiddleware
from ebank.channels.web import (
    area,
    bank,
    bank_bills,
    bank_payments,
    bank_records,
    bank_settings,
    console,
    console_admin,
    console_counter,
    corporate,
    demo_inbox,
    merchant,
    pages,
    pay,
)
from ebank.clearing import service as clearing
from ebank.core.clock import Clock, SystemClock
from ebank.core.crypto import Vault
from ebank.core.db import make_engine
from ebank.core.settings import Settings, get_settings
from ebank.core.writer import Writer
from ebank.corporate import payroll
from ebank.gateway import orders as gateway_orders
from ebank.gateway import settlement as gateway_settlement
from ebank.gateway.notices import start_notice_delivery
from ebank.notify import delivery
from ebank.notify.service import start_delivery
from ebank.payments import service as payments
from ebank.standing import orders as standing_orders

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).parent / "channels" / "web" / "static"


class _App(FastAPI):
    """FastAPI with the request layer outside its error middleware.

    `add_middleware` would put it inside, and a 500 from the error handler would then leave
    without a request id or security headers, and uncounted (and, from the merchant gateway's
    API, unsigned).
    """

    def build_middleware_stack(self) -> ASGIApp:
        inner = SignedResponses(super().build_middleware_stack())
        return RequestMiddleware(inner, self.state.metrics)


SWEEP_SECONDS = 5.0  # the demo app's sweeps, between passes that found nothing to do


def _settle_merchants(writer: Writer) -> int:
    """The gateway's end of day for the day that ended last (a no-op once it has run)."""
    day = gateway_settlement.day_ended(writer.clock.now())
    return len(gateway_settlement.end_of_day(writer, business_day=day).settled)


def _start_sweeps(writer: Writer, vault: Vault) -> Callable[[], None]:
    """The minute jobs of `ebank worker` that move money, on a thread of the demo app (which
    runs without a worker); returns `stop`."""

    def sweep(limit: int) -> int:
        return (
            payments.execute_due(writer, vault, limit=limit)
            + standing_orders.run_due_orders(writer, vault, limit=limit)
            + payroll.execute_due(writer, vault, limit=limit)
            + writer.execute(gateway_orders.sweep(limit=limit))
            + _settle_merchants(writer)
        )

    def body(stop: threading.Event) -> None:
        delivery.run_loop(sweep, stop, poll_seconds=SWEEP_SECONDS, what="sweep")

    return delivery.start(body, name="ebank-sweeps")


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    writer: Writer | None = None,
    clock: Clock | None = None,
    vault: Vault | None = None,
) -> FastAPI:
    """The app; the engine and writer are made at start-up unless given (and then not closed).

    The vault is made from the settings' data key on first use unless given.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine or make_engine(settings.database_url)
        app_clock = clock or (writer.clock if writer else SystemClock())
        own_writer = writer or Writer(
            own_engine, clock=app_clock, max_batch=settings.writer_max_batch
        )
        app.state.engine, app.state.writer, app.state.clock = own_engine, own_writer, app_clock
        # The demo bank is one process: it delivers its own SMS into the inbox it shows.
        stop_sms = start_delivery(own_writer, vault_of(app)) if settings.demo else None
        # And tells its simulated billers of the bills it paid.
        stop_bills = start_bill_delivery(own_writer, vault_of(app)) if settings.demo else None
        # And notifies its merchants (the example shop) of their orders.
        stop_notices = start_notice_delivery(own_writer) if settings.demo else None
        # And clears its inter-bank transfers, when the demo started a clearing house.
        stop_clearing = (
            clearing.start(own_writer, vault_of(app), settings) if settings.demo else None
        )
        # And runs what `ebank worker` runs each minute: deferred transfers, standing orders
        # and payroll.
        stop_sweeps = _start_sweeps(own_writer, vault_of(app)) if settings.demo else None
        try:
            yield
        finally:
            if stop_sweeps is not None:
                await asyncio.to_thread(stop_sweeps)
            if stop_sms is not None:
                await asyncio.to_thread(stop_sms)
            if stop_bills is not None:
                await asyncio.to_thread(stop_bills)
            if stop_notices is not None:
                await asyncio.to_thread(stop_notices)
            if stop_clearing is not None:
                await asyncio.to_thread(stop_clearing)
            if writer is None:
                # close() waits for queued commands; keep the loop free to answer them.
                await asyncio.to_thread(own_writer.close)
            if engine is None:
                own_engine.dispose()

    app = _App(
        title="ebank",
        version=version("ebank"),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN; ours is vendored
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.vault = vault
    app.state.metrics = Metrics(lambda: getattr(app.state, "writer", None))
    errors.install(app)
    app.include_router(health.router)
    # Routes are tried in order, one pattern at a time: merchants' servers call the gateway
    # most often, so its routes come before the other hundred.
    app.include_router(gateway_api.router)
    app.include_router(customer.router)
    app.include_router(staff.router)
    app.include_router(limits.router)
    app.include_router(certificates.router)
    app.include_router(payments_api.router)
    app.include_router(clearing_api.router)
    app.include_router(receipts_api.router)
    app.include_router(bills_api.router)
    app.include_router(standing_api.router)
    app.include_router(corporate_api.router)
    app.include_router(risk_api.router)
    app.include_router(online_payments_api.router)
    if settings.demo:
        app.include_router(demo_api.router)
        app.include_router(demo_inbox.router)
    app.include_router(pages.router)
    app.include_router(pay.router)
    for pages_router in (
        bank.router,
        bank_payments.router,
        bank_bills.router,
        bank_settings.router,
        bank_records.router,
        corporate.router,
        merchant.router,
        console.router,
        console_admin.router,
        console_counter.router,
    ):
        app.include_router(pages_router)
    area.install(app)
    app.add_api_route(
        f"{API_PREFIX}/docs", api_docs, methods=["GET"], include_in_schema=False,
        response_class=HTMLResponse,
    )  # fmt: skip
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from /static: no CDN, and no inline script for the CSP to refuse."""

    def static(path: str) -> str:
        return escape(request.url_for("static", path=path).path)

    openapi = escape(request.scope.get("root_path", "") + (request.app.openapi_url or ""))
    return HTMLResponse(f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>ebank API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{static("vendor/swagger-ui/swagger-ui.css")}">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi}"></div>
  <script src="{static("vendor/swagger-ui/swagger-ui-bundle.js")}"></script>
  <script src="{static("api-docs.js")}"></script>
</body>
</html>
""")
