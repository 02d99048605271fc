"""The example shop: a one-page tea shop that takes payment through the bank's gateway, using
only the merchant SDK (`ebank.gateway.client`), as a merchant's own site would.

Buy creates an order and sends the browser to the bank's pay page. The bank sends the browser
back to /return with a signed result, and POSTs signed notifications to /notify. The shop
believes the notification and its own query, never the return alone. Orders are kept in
memory: this is a demonstration, not a shop to run.
"""

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from ebank.gateway.client import GatewayClient, GatewayError, SignatureError

HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
)


class ShopSettings(BaseSettings):
    """Where the bank is and the keys: from EBANK_SHOP_* variables."""

    model_config = SettingsConfigDict(env_prefix="EBANK_SHOP_")

    gateway_url: str = "http://127.0.0.1:8000"
    merchant_no: str  # the shop's merchant number at the bank
    key_path: Path = Path("var/shop-key.pem")  # the shop's RSA2 private key
    gateway_key_path: Path = Path("var/gateway-public.pem")  # the gateway's public key


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    name: str
    price: str  # yuan, as the gateway takes amounts
    escrow: bool  # offered with escrow (延时支付): paid to us once the buyer confirms receipt


PRODUCTS = {
    p.code: p
    for p in (
        Product("longjing", "西湖龙井 Longjing tea, 250 g", "168.00", escrow=False),
        Product("tieguanyin", "安溪铁观音 Tieguanyin tea, 250 g", "98.00", escrow=True),
        Product("puer", "云南普洱 Pu-erh tea cake, 357 g", "45.00", escrow=False),
    )
}


@dataclass
class Sale:
    """An order of ours: what the gateway last said of it, and each notification's type."""

    out_trade_no: str
    product: Product
    mode: str
    trade_no: str
    status: str
    notified: list[str] = field(default_factory=list)


class Shop:
    """The shop's memory: its sales, and the notifications it has acted on (by event id)."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.sales: dict[str, Sale] = {}
        self._events: set[str] = set()
        self._lock = threading.Lock()

    def buy(self, product: Product, mode: str, base_url: str) -> str:
        """Create the order; the pay page's URL to send the buyer to."""
        out_trade_no = f"TEA{datetime.now(UTC):%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}"
        order = self.client.create_order(
            out_trade_no=out_trade_no, amount=product.price, subject=product.name, mode=mode,
            return_url=f"{base_url}return", notify_url=f"{base_url}notify",
        )  # fmt: skip
        with self._lock:
            self.sales[out_trade_no] = Sale(
                out_trade_no, product, mode, order["trade_no"], order["status"]
            )
        return str(order["pay_url"])

    def learn(self, order: dict[str, Any]) -> Sale | None:
        """Note the order's status as the gateway's query or notification gave it."""
        with self._lock:
            sale = self.sales.get(order.get("out_trade_no", ""))
            if sale is None or order.get("trade_no") != sale.trade_no:
                return None  # not the order this sale was made with
            sale.status = order["status"]
            return sale

    def notified(self, event: dict[str, Any]) -> None:
        """Act on a verified notification once, however often it comes."""
        with self._lock:
            if event["id"] in self._events:
                return
            self._events.add(event["id"])
        sale = self.learn(event["data"]) if event["type"].startswith("order.") else None
        if sale is not None:
            with self._lock:
                sale.notified.append(event["type"])


def _page(request: Request, shop: Shop, status: int = 200, **context: Any) -> HTMLResponse:
    newest_first = list(reversed(shop.sales.values()))
    return templates.TemplateResponse(
        request, "shop.html", {"products": PRODUCTS.values(), "sales": newest_first, **context},
        status_code=status,
    )  # fmt: skip


def create_shop(
    settings: ShopSettings,
    *,
    http: httpx.Client | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The shop's app. The keys are read now, so a missing file stops it at start."""
    client = GatewayClient(
        settings.gateway_url, settings.merchant_no, settings.key_path.read_text(),
        settings.gateway_key_path.read_text(), http=http, clock=clock,
    )  # fmt: skip
    shop = Shop(client)
    app = FastAPI(title="ebank example shop", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return _page(request, shop)

    @app.post("/buy")
    async def buy(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        product = PRODUCTS.get(form.get("product", [""])[0])
        mode = form.get("mode", ["instant"])[0]
        if (
            product is None
            or mode not in ("instant", "escrow")
            or (mode == "escrow" and not product.escrow)
        ):
            return _page(request, shop, 400, error="没有这件商品或这种付款方式 / No such offer")
        try:
            pay_url = await run_in_threadpool(shop.buy, product, mode, str(request.base_url))
        except (GatewayError, SignatureError, httpx.HTTPError) as exc:
            return _page(request, shop, 502, error=f"银行暂时无法下单 / The bank said: {exc}")
        return RedirectResponse(pay_url, status_code=303)

    @app.get("/return", response_class=HTMLResponse)
    def returned(request: Request) -> HTMLResponse:
        """The buyer is back. The signed result says what the pay page saw; only a query (or
        a notification) proves what happened, so the page asks the bank and shows both."""
        try:
            result = shop.client.verify_return(request.query_params)
        except SignatureError:
            return _page(request, shop, 400, error="返回结果的签名无效 / Not signed by the bank")
        try:
            order = shop.client.query_order(result["out_trade_no"])
        except (GatewayError, SignatureError, httpx.HTTPError) as exc:
            return _page(request, shop, 502, returned=result,
                         error=f"查询订单失败 / The query failed: {exc}")  # fmt: skip
        shop.learn(order)
        return _page(request, shop, returned=result, queried=order)

    @app.post("/notify")
    async def notify(request: Request) -> PlainTextResponse:
        try:
            event = shop.client.verify_notification(request.headers, await request.body())
        except SignatureError:
            return PlainTextResponse("fail", status_code=401)  # the bank will try again
        shop.notified(event)
        return PlainTextResponse("success")

    app.state.shop = shop
    return app
