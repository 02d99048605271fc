"""Liveness, readiness and Prometheus metrics, for the load balancer and the monitoring.

Each app keeps its metrics in its own registry: a process may build several apps (tests do),
and the writer counters are read from the app's writer when scraped, not copied on each batch.
"""

import logging
from collections.abc import Callable, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from ebank.core.writer import Writer

log = logging.getLogger(__name__)

router = APIRouter(tags=["service"])

# Request latency buckets in seconds, dense around the API's 50 ms p99 target.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _WriterCollector(Collector):
    def __init__(self, writer: Callable[[], Writer | None]) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        writer = self._writer()
        if writer is None:
            return
        yield CounterMetricFamily(
            "ebank_writer_batches", "Transactions the group-commit writer has committed",
            value=writer.batches,
        )  # fmt: skip
        yield CounterMetricFamily(
            "ebank_writer_commands", "Commands the group-commit writer has committed",
            value=writer.commands,
        )  # fmt: skip


class Metrics:
    """One app's metrics; `writer` returns the app's writer (None before start-up)."""

    def __init__(self, writer: Callable[[], Writer | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ebank_http_requests", "HTTP requests answered",
            ("method", "route", "status"), registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "ebank_http_request_duration_seconds", "Time to answer an HTTP request",
            ("method", "route"), registry=self.registry, buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.registry.register(_WriterCollector(writer))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database answers and the writer runs",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ok"}}}},
        503: {"description": "not ready, with the reason"},
    },
)
def readyz(request: Request) -> JSONResponse:
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("not ready: database check failed: %s", exc)
        return _unready(f"database unreachable ({type(exc).__name__})")
    if not request.app.state.writer.alive:
        return _unready("the writer is not running")
    return JSONResponse({"status": "ok"})


def _unready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
