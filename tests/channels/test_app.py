"""The HTTP shell: health, metrics, error mapping, request ids, headers, docs and landing page."""

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Engine

from ebank.app import create_app
from ebank.channels.api.errors import pick_language
from ebank.channels.api.middleware import SECURITY_HEADERS
from ebank.core import logging as ebank_logging
from ebank.core.errors import EbankError
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from ebank.ledger import service as L

pytestmark = pytest.mark.anyio

SCRIPT_NAME = "<script>alert(1)</script>"


class TransferBody(BaseModel):
    amount: str
    to_account: int


def add_test_routes(app: FastAPI) -> None:
    @app.get("/test/refused/{status}")
    def refused(status: str) -> None:
        raise EbankError("INVALID_STATUS_CHANGE", from_status="closed", to_status=status)

    @app.post("/test/transfers")
    def transfer(body: TransferBody, limit: int = 10) -> dict[str, str]:
        return {"amount": body.amount}

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("secret-internal-detail")

    @app.get("/test/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan run) and a client talking to it in process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def build(engine: Engine, writer: Writer, *, demo: bool = False) -> FastAPI:
    app = create_app(Settings(demo=demo), engine=engine, writer=writer)
    add_test_routes(app)
    return app


@pytest.fixture
def app(engine: Engine, writer: Writer) -> FastAPI:
    return build(engine, writer)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as c:
        yield c


async def open_account(writer: Writer, code: str, name: str) -> None:
    await writer.run(L.command(lambda tx: L.open_account(tx, code=code, name=name, currency="CNY")))


# -- health and readiness -------------------------------------------------------------------
async def test_healthz_says_the_process_is_alive(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ok_when_database_and_writer_answer(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_with_a_reason_once_the_writer_is_closed(client, writer):
    writer.close()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "the writer is not running"}


async def test_readyz_is_503_when_the_database_is_unreachable(client, engine, monkeypatch):
    def broken_connect() -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(engine, "connect", broken_connect)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": "database unreachable (OSError)",
    }


async def test_app_closes_the_writer_and_engine_it_made_but_not_ones_it_was_given(
    db_url, engine, writer
):
    own = create_app(Settings(database_url=db_url))
    async with serve(own) as c:
        assert (await c.get("/readyz")).status_code == 200
        made = own.state.writer
        assert made is not writer
    assert not made.alive

    given = create_app(Settings(), engine=engine, writer=writer)
    async with serve(given) as c:
        assert (await c.get("/readyz")).status_code == 200
    assert writer.alive
    await open_account(writer, "AFTER", "still writing")


# -- metrics ----------------------------------------------------------------------------------
async def test_metrics_count_requests_by_route_template_and_status(client):
    await client.get("/test/items/1")
    await client.get("/test/items/2")
    await client.get("/no/such/page")
    text = (await client.get("/metrics")).text
    item = 'method="GET",route="/test/items/{item_id}"'
    assert f'ebank_http_requests_total{{{item},status="200"}} 2.0' in text
    assert f"ebank_http_request_duration_seconds_count{{{item}}} 2.0" in text
    assert 'ebank_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert "/test/items/1" not in text


async def test_metrics_read_the_writer_counters_when_scraped(client, writer):
    await open_account(writer, "A1", "first")
    await open_account(writer, "A2", "second")
    text = (await client.get("/metrics")).text
    assert f"ebank_writer_batches_total {float(writer.batches)}" in text
    assert f"ebank_writer_commands_total {float(writer.commands)}" in text
    assert writer.commands == 2


async def test_metrics_of_one_app_are_not_seen_by_another(engine, writer):
    first, second = build(engine, writer), build(engine, writer)
    async with serve(first) as a, serve(second) as b:
        await a.get("/healthz")
        text = (await b.get("/metrics")).text
    assert 'route="/healthz"' not in text


# -- errors -----------------------------------------------------------------------------------
async def test_ebank_error_maps_to_its_status_with_a_chinese_message_by_default(client):
    response = await client.get("/test/refused/active")
    assert response.status_code == 422
    assert response.json() == {
        "code": "INVALID_STATUS_CHANGE",
        "message": "账户状态不能从 closed 变为 active",
        "details": {"from_status": "closed", "to_status": "active"},
    }


async def test_ebank_error_message_is_english_when_the_caller_prefers_it(client):
    response = await client.get("/test/refused/active", headers={"Accept-Language": "en-GB"})
    assert response.status_code == 422
    assert response.json()["message"] == "Account status cannot change from closed to active"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh"),
        ("", "zh"),
        ("en", "en"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("fr-FR,en;q=0.5", "en"),
        ("fr-FR", "zh"),
        ("zh;q=0.4, en;q=0.6", "en"),
        ("en;q=0", "zh"),
        ("en;q=bogus", "zh"),
    ],
)
def test_language_follows_the_accept_language_ranking(header, expected):
    assert pick_language(header) == expected


async def test_validation_error_is_400_invalid_input_naming_the_bad_fields(client):
    response = await client.post(
        "/test/transfers?limit=many", json={"to_account": "not-a-number"},
        headers={"Accept-Language": "en"},
    )  # fmt: skip
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_INPUT"
    assert body["message"].startswith("Invalid input: ")
    for field in ("query.limit", "body.amount", "body.to_account"):
        assert field in body["message"]
    assert {f["field"] for f in body["details"]["fields"]} == {
        "query.limit", "body.amount", "body.to_account",
    }  # fmt: skip
    assert "pydantic" not in response.text and "Traceback" not in response.text


async def test_malformed_json_body_is_400_invalid_input(client):
    response = await client.post(
        "/test/transfers", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"
    assert response.json()["message"].startswith("输入有误：")


async def test_unexpected_exception_is_a_bare_500_and_the_traceback_goes_to_the_log(client, caplog):
    with caplog.at_level(logging.ERROR):
        response = await client.get("/test/crash", headers={"X-Request-ID": "req-crash-1"})
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "INTERNAL"
    assert body["details"] == {"request_id": "req-crash-1"}
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert response.headers["X-Request-ID"] == "req-crash-1"
    assert response.headers["X-Frame-Options"] == "DENY"
    logged = [
        r for r in caplog.records if r.exc_info and "secret-internal-detail" in str(r.exc_info[1])
    ]
    assert len(logged) == 1


async def test_unexpected_exception_is_counted_as_a_500(client):
    await client.get("/test/crash")
    text = (await client.get("/metrics")).text
    assert 'ebank_http_requests_total{method="GET",route="/test/crash",status="500"} 1.0' in text


# -- request ids and headers ----------------------------------------------------------------
async def test_valid_incoming_request_id_is_echoed(client):
    rid = "Abc_123-" + "x" * 56  # 64 characters, the longest accepted
    response = await client.get("/healthz", headers={"X-Request-ID": rid})
    assert response.headers["X-Request-ID"] == rid


@pytest.mark.parametrize("bad", ["abc<script>", "has space", "a/b", "x" * 65, "", "ünï"])
async def test_unsafe_incoming_request_id_is_replaced_by_a_fresh_one(client, bad):
    response = await client.get("/healthz", headers={"X-Request-ID": bad.encode("utf-8")})
    rid = response.headers["X-Request-ID"]
    assert rid != bad
    assert re.fullmatch(r"[0-9a-f]{32}", rid)


async def test_each_request_gets_its_own_id(client):
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/metrics", "/api/v1/docs", "/static/ebank.css", "/no/such/page"]
)
async def test_security_headers_are_on_every_response(client, path):
    response = await client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_https_answers_tell_the_browser_to_keep_to_https_and_http_ones_do_not(app, client):
    assert "Strict-Transport-Security" not in (await client.get("/healthz")).headers
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://bank.example") as tls:
        answer = await tls.get("/healthz")
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


async def test_each_request_is_logged_as_one_json_line_with_its_request_id(client, capsys):
    root = logging.getLogger()
    level = root.level
    ebank_logging.configure_logging("info")
    ebank_logging.configure_logging("info")  # a second call replaces, not duplicates
    try:
        assert sum(isinstance(h, ebank_logging._JsonHandler) for h in root.handlers) == 1
        capsys.readouterr()
        await client.get("/test/items/7?secret=1", headers={"X-Request-ID": "log-test-1"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        for handler in [h for h in root.handlers if isinstance(h, ebank_logging._JsonHandler)]:
            root.removeHandler(handler)
        root.setLevel(level)
    access = [line for line in lines if line["logger"] == "ebank.access"]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "GET"
    assert line["path"] == "/test/items/7"
    assert line["status"] == 200
    assert line["request_id"] == "log-test-1"
    assert line["level"] == "info"
    assert isinstance(line["duration_ms"], float)
    assert line["ts"].endswith("+00:00")
    assert "secret" not in json.dumps(line)


# -- OpenAPI and docs -------------------------------------------------------------------------
async def test_openapi_document_is_served_under_api_v1(client):
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    info = response.json()["info"]
    assert info == {"title": "ebank", "version": version("ebank")}


async def test_fastapi_default_docs_urls_are_not_served(client):
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/redoc")).status_code == 404


async def test_docs_page_loads_only_assets_from_static_and_no_inline_script(client):
    response = await client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.text
    assert "http://" not in page and "https://" not in page
    urls = re.findall(r'(?:src|href)="([^"]*)"', page)
    assets = [u for u in urls if u != "data:,"]
    assert assets and all(u.startswith("/static/") for u in assets)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 2
    assert all('src="/static/' in attrs and body.strip() == "" for attrs, body in scripts)
    assert 'data-openapi-url="/api/v1/openapi.json"' in page
    for url in assets:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content


# -- landing page -----------------------------------------------------------------------------
async def test_landing_page_says_what_ebank_is_and_links_docs_and_health(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "电子银行" in page and "electronic banking platform" in page
    for link in ("/api/v1/docs", "/healthz", "/metrics"):
        assert f'href="{link}"' in page
    assert "http://" not in page and "https://" not in page
    assert "演示银行客户账户" not in page  # not a demo bank


async def test_demo_landing_page_lists_customer_accounts_with_names_escaped(engine, writer):
    await open_account(writer, "DEMO-001", SCRIPT_NAME)
    await writer.run(
        L.command(lambda tx: L.open_account(
            tx, code="GL-CASH", name="vault cash", currency="CNY", kind="internal",
            normal_side="D",
        ))
    )  # fmt: skip
    async with serve(build(engine, writer, demo=True)) as c:
        page = (await c.get("/")).text
    assert "演示银行客户账户" in page
    assert "DEMO-001" in page and "0.00 CNY" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert SCRIPT_NAME not in page
    assert "GL-CASH" not in page  # internal accounts are not customers'


async def test_an_unknown_address_answers_in_the_error_shape(client):
    response = await client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert response.json() == {"code": "NOT_FOUND", "message": "No such address", "details": {}}


async def test_a_wrong_method_answers_405_in_the_error_shape_with_allow(client):
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["allow"]
