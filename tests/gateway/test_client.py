"""The signed merchant API's plumbing and the merchant SDK.

`signed_merchant` and the answers' signatures are tried over HTTP against the app on both
databases, through a small route of this module's own mounted as app.py mounts routers. The
SDK is tried against a stub gateway that checks signatures as the gateway does.
"""

import base64
import json
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ebank.app import create_app
from ebank.channels.api.merchant_auth import SignedCall, signed_merchant
from ebank.core.clock import FixedClock
from ebank.core.settings import Settings
from ebank.core.writer import Writer
from ebank.gateway import merchants, signing
from ebank.gateway.client import (
    GatewayClient,
    GatewayError,
    SignatureError,
    Signer,
    new_nonce,
    request_message,
    response_message,
    verify,
)
from ebank.gateway.merchants import Merchant
from tests.gateway.support import GatewayBank
from tests.shop.stub_gateway import BASE_URL, MERCHANT_NO, StubGateway
from tests.support import STAFF, VAULT

ECHO = "/api/v1/gateway/_test/echo"
router = APIRouter(prefix="/api/v1/gateway/_test")
Signed = Annotated[SignedCall, Depends(signed_merchant)]


@router.post("/echo")
async def echo_post(call: Signed) -> dict[str, Any]:
    return {"merchant_no": call.merchant_no, "merchant_id": call.merchant_id,
            "customer_id": call.customer_id, "body": call.json()}  # fmt: skip


@router.get("/echo")
async def echo_get(call: Signed, request: Request) -> dict[str, Any]:
    return {"merchant_no": call.merchant_no, "query": dict(request.query_params)}


@router.get("/fault")
async def fault() -> None:
    raise RuntimeError("a bug")


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def alice_pem() -> str:
    """The merchant's private key."""
    return rsa_pem()


@pytest.fixture(scope="module")
def alice(alice_pem: str) -> Signer:
    return Signer("RSA2", alice_pem)


@pytest.fixture(scope="module")
def mallory_pem() -> str:
    """Someone else's."""
    return rsa_pem()


@pytest.fixture(scope="module")
def mallory(mallory_pem: str) -> Signer:
    return Signer("RSA2", mallory_pem)


@pytest.fixture
def api(engine: Engine, writer: Writer, clock: FixedClock) -> Iterator[TestClient]:
    app = create_app(Settings(), engine=engine, writer=writer, clock=clock, vault=VAULT)
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def merchant(bank: GatewayBank, alice: Signer) -> Merchant:
    shop = bank.merchant()
    bank.writer.execute(
        merchants.add_key(merchant_id=shop.id, algorithm="RSA2", public_key=alice.public_key,
                          actor=STAFF)
    )  # fmt: skip
    return shop.merchant


def send(
    api: TestClient,
    clock: FixedClock,
    signer: Signer,
    merchant_no: str,
    method: str = "POST",
    target: str = ECHO,
    body: bytes = b'{"out_trade_no":"A1001","amount":"12.50"}',
    *,
    signed_target: str | None = None,
    signed_body: bytes | None = None,
    offset: int = 0,
    nonce: str | None = None,
) -> httpx.Response:
    """A request signed by `signer` as `merchant_no`: over what is sent, unless told to sign
    another target or body (to alter a request after signing)."""
    timestamp, nonce = str(int(clock.now().timestamp()) + offset), nonce or new_nonce()
    message = request_message(method, signed_target or target, timestamp, nonce,
                              body if signed_body is None else signed_body)  # fmt: skip
    headers = {"Ebank-Merchant": merchant_no, "Ebank-Timestamp": timestamp,
               "Ebank-Nonce": nonce, "Ebank-Signature": signer.sign(message)}  # fmt: skip
    return api.request(method, target, content=body, headers=headers)


def gateway_signed(response: httpx.Response) -> bool:
    """Whether the answer carries the gateway's signature over its exact body."""
    h, key = response.headers, signing.gateway_key()
    if h.get("Ebank-Serial") != key.serial:
        return False
    message = response_message(h["Ebank-Timestamp"], h["Ebank-Nonce"], response.content)
    return verify("RSA2", key.public_pem, message, h["Ebank-Signature"])


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert gateway_signed(response)
    return response.json()  # type: ignore[no-any-return]


# -- signed_merchant ----------------------------------------------------------------------------
def test_a_signed_request_reaches_the_route_as_its_merchant(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    response = send(api, clock, alice, merchant.merchant_no)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "merchant_no": merchant.merchant_no, "merchant_id": merchant.id,
        "customer_id": merchant.customer_id, "body": {"out_trade_no": "A1001", "amount": "12.50"},
    }  # fmt: skip
    assert gateway_signed(response)


def test_a_signed_get_with_its_query_reaches_the_route(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    target = ECHO + "?from=2026-11-01&to=2026-11-30&name=%E8%8C%B6"
    response = send(api, clock, alice, merchant.merchant_no, "GET", target, b"")
    assert response.status_code == 200, response.text
    assert response.json()["query"] == {"from": "2026-11-01", "to": "2026-11-30", "name": "茶"}


def test_a_wrong_signature_is_refused_and_uses_up_nothing(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    nonce = new_nonce()
    bad = send(api, clock, alice, merchant.merchant_no, signed_body=b"{}", nonce=nonce)
    refused(bad, 401, "SIGNATURE_INVALID")
    good = send(api, clock, alice, merchant.merchant_no, nonce=nonce)  # the nonce is unused
    assert good.status_code == 200, good.text


def test_a_signature_by_another_key_is_refused(
    api: TestClient, clock: FixedClock, mallory: Signer, merchant: Merchant
) -> None:
    refused(send(api, clock, mallory, merchant.merchant_no), 401, "SIGNATURE_INVALID")


def test_a_body_changed_after_signing_is_refused(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    changed = send(api, clock, alice, merchant.merchant_no,
                   body=b'{"out_trade_no":"A1001","amount":"99.50"}',
                   signed_body=b'{"out_trade_no":"A1001","amount":"12.50"}')  # fmt: skip
    refused(changed, 401, "SIGNATURE_INVALID")


@pytest.mark.parametrize(
    ("sent", "signed"),
    [
        (ECHO + "?from=2026-11-01&to=2026-11-30", ECHO + "?from=2026-11-01&to=2026-12-31"),
        (ECHO + "?a=1", ECHO),
        (ECHO, ECHO + "?a=1"),
        (ECHO, "/api/v1/gateway/orders"),
        (ECHO + "?name=%E8%8C%B6", ECHO + "?name=茶"),  # signed as sent, encoding included
    ],
)
def test_a_path_or_query_changed_after_signing_is_refused(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant, sent: str, signed: str
) -> None:
    response = send(api, clock, alice, merchant.merchant_no, "GET", sent, b"",
                    signed_target=signed)  # fmt: skip
    refused(response, 401, "SIGNATURE_INVALID")


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_a_timestamp_more_than_five_minutes_away_is_stale(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant, offset: int
) -> None:
    refused(send(api, clock, alice, merchant.merchant_no, offset=offset), 401, "TIMESTAMP_STALE")


@pytest.mark.parametrize("offset", [-300, 300])
def test_a_timestamp_at_the_edge_of_the_window_is_accepted(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant, offset: int
) -> None:
    assert send(api, clock, alice, merchant.merchant_no, offset=offset).status_code == 200


def test_a_replayed_request_is_refused(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    first = send(api, clock, alice, merchant.merchant_no)
    assert first.status_code == 200
    replay = api.post(ECHO, content=first.request.content, headers=first.request.headers)
    refused(replay, 401, "NONCE_REUSED")
    again = send(api, clock, alice, merchant.merchant_no, body=b"{}",
                 nonce=first.request.headers["Ebank-Nonce"])  # fmt: skip
    refused(again, 401, "NONCE_REUSED")  # a new request with a used nonce, too


def test_two_copies_of_one_request_at_once_get_through_once(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    nonce = new_nonce()
    timestamp = str(int(clock.now().timestamp()))
    body = b'{"out_trade_no":"A1001"}'
    signature = alice.sign(request_message("POST", ECHO, timestamp, nonce, body))
    headers = {"Ebank-Merchant": merchant.merchant_no, "Ebank-Timestamp": timestamp,
               "Ebank-Nonce": nonce, "Ebank-Signature": signature}  # fmt: skip
    start = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        start.wait(30)
        statuses.append(api.post(ECHO, content=body, headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200, 401]


def test_an_unknown_merchant_or_one_without_a_key_reads_like_a_wrong_signature(
    api: TestClient, clock: FixedClock, bank: GatewayBank, alice: Signer, mallory: Signer,
    merchant: Merchant,
) -> None:  # fmt: skip
    keyless = bank.merchant().merchant
    wrong = refused(send(api, clock, mallory, merchant.merchant_no), 401, "SIGNATURE_INVALID")
    unknown = refused(send(api, clock, alice, "M999999999"), 401, "SIGNATURE_INVALID")
    no_key = refused(send(api, clock, alice, keyless.merchant_no), 401, "SIGNATURE_INVALID")
    assert wrong == unknown == no_key


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_a_merchant_not_active_is_refused_once_its_signature_verifies(
    api: TestClient, clock: FixedClock, writer: Writer, alice: Signer, mallory: Signer,
    merchant: Merchant, status: str,
) -> None:  # fmt: skip
    writer.execute(merchants.set_status(merchant_id=merchant.id, status=status, actor=STAFF,
                                        channel="counter"))  # fmt: skip
    refused(send(api, clock, alice, merchant.merchant_no), 403, "MERCHANT_SUSPENDED")
    # To anyone else it is a wrong signature, as ever: nothing said about the merchant.
    refused(send(api, clock, mallory, merchant.merchant_no), 401, "SIGNATURE_INVALID")


def test_a_revoked_key_signs_nothing_and_a_newer_key_replaces_the_old(
    api: TestClient, clock: FixedClock, writer: Writer, alice: Signer, mallory: Signer,
    merchant: Merchant,
) -> None:  # fmt: skip
    newer = writer.execute(
        merchants.add_key(merchant_id=merchant.id, algorithm="RSA2",
                          public_key=mallory.public_key, actor=STAFF)
    )  # fmt: skip
    refused(send(api, clock, alice, merchant.merchant_no), 401, "SIGNATURE_INVALID")
    assert send(api, clock, mallory, merchant.merchant_no).status_code == 200
    writer.execute(merchants.revoke_key(merchant_id=merchant.id, key_id=newer.id, actor=STAFF,
                                        channel="counter"))  # fmt: skip
    refused(send(api, clock, mallory, merchant.merchant_no), 401, "SIGNATURE_INVALID")


def test_an_sm2_merchant_signs_with_its_sm2_key(
    api: TestClient, clock: FixedClock, bank: GatewayBank
) -> None:
    sm2 = Signer("SM2", "6d2d582da7908c24eabcd93d18b8313a0042741f5aef643249ef9ec365fea73e")
    shop = bank.merchant()
    bank.writer.execute(merchants.add_key(merchant_id=shop.id, algorithm="SM2",
                                          public_key=sm2.public_key, actor=STAFF))  # fmt: skip
    assert send(api, clock, sm2, shop.merchant.merchant_no).status_code == 200


@pytest.mark.parametrize(
    "missing", ["Ebank-Merchant", "Ebank-Timestamp", "Ebank-Nonce", "Ebank-Signature"]
)
def test_a_request_without_a_signing_header_is_told_which(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant, missing: str
) -> None:
    headers = {
        "Ebank-Merchant": merchant.merchant_no,
        "Ebank-Nonce": new_nonce(),
        "Ebank-Timestamp": str(int(clock.now().timestamp())),
        "Ebank-Signature": "AAAA",
    }
    del headers[missing]
    answer = refused(api.post(ECHO, content=b"{}", headers=headers), 401, "SIGNATURE_INVALID")
    assert missing in answer["details"]["reason"]


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "with space and more", "a/b" * 6])
def test_a_malformed_nonce_is_refused(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant, nonce: str
) -> None:
    response = send(api, clock, alice, merchant.merchant_no, nonce=nonce)
    assert "Ebank-Nonce" in refused(response, 401, "SIGNATURE_INVALID")["details"]["reason"]


def test_a_signed_body_that_is_not_a_json_object_is_a_signed_400(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    for body in (b"not json", b"[1, 2]"):
        refused(send(api, clock, alice, merchant.merchant_no, body=body), 400, "INVALID_INPUT")


# -- the gateway signs its answers --------------------------------------------------------------
def test_every_answer_under_the_gateway_is_signed_and_no_other(api: TestClient) -> None:
    refused(api.post(ECHO, content=b"{}"), 401, "SIGNATURE_INVALID")
    refused(api.get("/api/v1/gateway/no-such-thing"), 404, "NOT_FOUND")
    refused(api.delete(ECHO), 405, "METHOD_NOT_ALLOWED")
    fault = api.get("/api/v1/gateway/_test/fault")
    assert fault.status_code == 500 and gateway_signed(fault)
    assert fault.headers["X-Request-ID"]  # the request layer still stamps it
    elsewhere = api.get("/healthz")
    assert elsewhere.status_code == 200 and "Ebank-Signature" not in elsewhere.headers


def test_an_answer_changed_on_the_way_no_longer_verifies(
    api: TestClient, clock: FixedClock, alice: Signer, merchant: Merchant
) -> None:
    response = send(api, clock, alice, merchant.merchant_no)
    assert gateway_signed(response)
    forged = httpx.Response(200, headers=response.headers,
                            content=response.content.replace(b"12.50", b"99.50"))  # fmt: skip
    assert not gateway_signed(forged)


# -- the SDK ---------------------------------------------------------------------------------
@pytest.fixture
def stub(clock: FixedClock, alice: Signer) -> StubGateway:
    return StubGateway(clock, "RSA2", alice.public_key)


def sdk(stub: StubGateway, private_pem: str, clock: FixedClock) -> GatewayClient:
    """The merchant's client of the stub, on the bank's clock."""
    return GatewayClient(
        BASE_URL, MERCHANT_NO, private_pem, signing.gateway_key().public_pem,
        http=httpx.Client(transport=stub.transport()), clock=lambda: clock.now().timestamp(),
    )  # fmt: skip


ORDER = {
    "out_trade_no": "A/1001", "amount": "12.50", "subject": "龙井茶 250g",
    "return_url": "https://shop.example/return", "notify_url": "https://shop.example/notify",
}  # fmt: skip
CALLS: list[tuple[Callable[[GatewayClient], Any], str, str, dict[str, Any] | None]] = [
    (lambda c: c.query_order("A/1001"), "GET", "/api/v1/gateway/orders/A%2F1001", None),
    (lambda c: c.close_order("A/1001"), "POST", "/api/v1/gateway/orders/A%2F1001/close", None),
    (lambda c: c.capture("A/1001", out_capture_no="C1", amount="5.00", final=True), "POST",
     "/api/v1/gateway/orders/A%2F1001/captures",
     {"out_capture_no": "C1", "amount": "5.00", "final": True}),
    (lambda c: c.void("A/1001"), "POST", "/api/v1/gateway/orders/A%2F1001/void", None),
    (lambda c: c.refund("A/1001", out_refund_no="R1", amount="2.00", reason="破损"), "POST",
     "/api/v1/gateway/orders/A%2F1001/refunds",
     {"out_refund_no": "R1", "amount": "2.00", "reason": "破损"}),
    (lambda c: c.query_refund("R 1"), "GET", "/api/v1/gateway/refunds/R%201", None),
    (lambda c: c.notifications("T0001"), "GET", "/api/v1/gateway/notifications?trade_no=T0001",
     None),
    (lambda c: c.resend_notification(42), "POST", "/api/v1/gateway/notifications/42/resend",
     None),
    (lambda c: c.settlements(date(2026, 11, 1), date(2026, 11, 30)), "GET",
     "/api/v1/gateway/settlements?from=2026-11-01&to=2026-11-30", None),
    (lambda c: c.reconciliation(date(2026, 11, 23)), "GET",
     "/api/v1/gateway/reconciliation/2026-11-23", None),
]  # fmt: skip


@pytest.mark.parametrize(("call", "method", "target", "body"), CALLS)
def test_each_sdk_method_signs_its_request_to_its_route(
    stub: StubGateway, clock: FixedClock, alice_pem: str,
    call: Callable[[GatewayClient], Any], method: str, target: str, body: dict[str, Any] | None,
) -> None:  # fmt: skip
    client = sdk(stub, alice_pem, clock)
    client.create_order(**ORDER)
    call(client)
    seen = stub.seen[-1]  # the stub checked its signature before recording it
    assert (seen.method, seen.target) == (method, target)
    assert (json.loads(seen.body) if seen.body else None) == body


def test_create_order_sends_its_fields_and_answers_the_order(
    stub: StubGateway, clock: FixedClock, alice_pem: str
) -> None:
    client = sdk(stub, alice_pem, clock)
    order = client.create_order(**ORDER, mode="escrow", confirm_days=7)
    assert order["status"] == "created" and order["pay_url"].startswith(BASE_URL)
    assert json.loads(stub.seen[-1].body) == {**ORDER, "currency": "CNY", "mode": "escrow",
                                              "confirm_days": 7}  # fmt: skip
    assert client.create_order(**ORDER, mode="escrow", confirm_days=7) == order  # a repeat


def test_a_refusal_is_a_gateway_error_with_its_code(
    stub: StubGateway, clock: FixedClock, alice_pem: str
) -> None:
    client = sdk(stub, alice_pem, clock)
    client.create_order(**ORDER)
    with pytest.raises(GatewayError) as caught:
        client.create_order(**{**ORDER, "amount": "99.00"})
    assert (caught.value.status, caught.value.code) == (409, "ORDER_CONFLICT")
    with pytest.raises(GatewayError) as caught:
        client.query_order("NO-SUCH")
    assert (caught.value.status, caught.value.code) == (404, "ORDER_NOT_FOUND")
    assert caught.value.message == "Order not found"


def test_a_request_signed_with_another_key_is_refused_by_the_gateway(
    stub: StubGateway, clock: FixedClock, mallory_pem: str
) -> None:
    with pytest.raises(GatewayError) as caught:
        sdk(stub, mallory_pem, clock).query_order("A1001")
    assert caught.value.code == "SIGNATURE_INVALID"
    assert stub.seen == []


@pytest.mark.parametrize("tamper", ["unsigned", "body", "stale", "serial", "key"])
def test_an_answer_not_signed_by_the_gateway_is_a_signature_error(
    stub: StubGateway, clock: FixedClock, alice_pem: str, mallory: Signer, tamper: str
) -> None:
    client = sdk(stub, alice_pem, clock)
    stub.tamper, stub.impostor = tamper, mallory
    with pytest.raises(SignatureError):
        client.create_order(**ORDER)
    with pytest.raises(SignatureError):  # a refusal is checked before it is believed, too
        client.query_order("NO-SUCH")


def test_the_reconciliation_file_is_the_signed_bytes(
    stub: StubGateway, clock: FixedClock, alice_pem: str
) -> None:
    assert sdk(stub, alice_pem, clock).reconciliation(date(2026, 11, 23)) == (
        b"trade_no,amount\r\nT1,12.50\r\n"
    )


def test_an_sm2_merchant_uses_the_sdk_alike(stub: StubGateway, clock: FixedClock) -> None:
    private = "6d2d582da7908c24eabcd93d18b8313a0042741f5aef643249ef9ec365fea73e"
    stub.algorithm, stub.public_key = "SM2", Signer("SM2", private).public_key
    client = GatewayClient(
        BASE_URL, MERCHANT_NO, private, signing.gateway_key().public_pem, algorithm="SM2",
        http=httpx.Client(transport=stub.transport()), clock=lambda: clock.now().timestamp(),
    )  # fmt: skip
    assert client.create_order(**ORDER)["status"] == "created"


def test_the_sdk_refuses_a_malformed_gateway_key_at_once(alice_pem: str) -> None:
    with pytest.raises(ValueError):
        GatewayClient(BASE_URL, MERCHANT_NO, alice_pem, "not a key")


def test_a_notification_is_believed_only_with_the_gateway_signature(
    stub: StubGateway, clock: FixedClock, alice_pem: str, mallory: Signer
) -> None:
    client = sdk(stub, alice_pem, clock)
    client.create_order(**ORDER)
    headers, body = stub.notification("ev-1", stub.settle("A/1001", "paid"))
    event = client.verify_notification(headers, body)
    assert (event["id"], event["type"], event["data"]["status"]) == ("ev-1", "order.paid", "paid")
    lower = {k.lower(): v for k, v in headers.items()}  # header names in any case
    assert client.verify_notification(lower, body) == event
    stub.clock.advance(timedelta(hours=6))  # a retry hours later, signed when it is sent
    assert client.verify_notification(signing.signed_headers(body, now=stub.clock.now()),
                                      body) == event  # fmt: skip
    with pytest.raises(SignatureError):  # ... but not the first attempt replayed then
        client.verify_notification(headers, body)
    stub.clock.advance(timedelta(hours=-6))
    with pytest.raises(SignatureError):
        client.verify_notification(headers, body.replace(b"paid", b"refunded"))
    other = json.dumps({**json.loads(body), "merchant_no": "M000000002"}).encode()
    with pytest.raises(SignatureError):  # signed by the gateway, but for another merchant
        client.verify_notification(signing.signed_headers(other, now=stub.clock.now()), other)
    with pytest.raises(SignatureError):
        client.verify_notification({k: v for k, v in headers.items() if k != "Ebank-Nonce"}, body)
    forged = dict(headers)
    message = response_message(headers["Ebank-Timestamp"], headers["Ebank-Nonce"], body)
    forged["Ebank-Signature"] = mallory.sign(message)
    with pytest.raises(SignatureError):
        client.verify_notification(forged, body)


def test_a_return_is_believed_only_with_the_gateway_signature(
    stub: StubGateway, clock: FixedClock, alice_pem: str
) -> None:
    client = sdk(stub, alice_pem, clock)
    client.create_order(**ORDER)
    url = stub.return_url("https://shop.example/return?cart=7", stub.settle("A/1001", "paid"))
    params = dict(parse_qsl(urlsplit(url).query))
    result = client.verify_return(params)
    assert (result["out_trade_no"], result["status"]) == ("A/1001", "paid")
    claimed = json.dumps({**result, "amount": "0.01"}).encode()
    forged = {**params, "result": base64.urlsafe_b64encode(claimed).decode().rstrip("=")}
    with pytest.raises(SignatureError):
        client.verify_return(forged)
    with pytest.raises(SignatureError):
        client.verify_return({k: v for k, v in params.items() if k != "signature"})
    with pytest.raises(SignatureError):
        client.verify_return({**params, "result": "%%%"})


# -- the SDK at the real gateway ---------------------------------------------------------------
def test_the_sdk_creates_queries_and_closes_an_order_at_the_gateway(
    api: TestClient, clock: FixedClock, alice_pem: str, merchant: Merchant
) -> None:
    client = GatewayClient(
        "http://testserver", merchant.merchant_no, alice_pem, signing.gateway_key().public_pem,
        http=api, clock=lambda: clock.now().timestamp(),
    )  # fmt: skip
    asked = {**ORDER, "out_trade_no": "A1001"}
    order = client.create_order(**asked)
    assert (order["status"], order["amount"], order["merchant_no"]) == (
        "created", "12.50", merchant.merchant_no,
    )  # fmt: skip
    assert order["pay_url"].startswith("http://testserver/pay/")
    assert client.create_order(**asked) == order  # the same order number, the same order
    with pytest.raises(GatewayError) as caught:
        client.create_order(**{**asked, "amount": "99.00"})
    assert (caught.value.status, caught.value.code) == (409, "ORDER_CONFLICT")
    assert client.query_order("A1001")["trade_no"] == order["trade_no"]
    assert client.close_order("A1001")["status"] == "closed"
    with pytest.raises(GatewayError) as caught:
        client.query_order("NO-SUCH")
    assert caught.value.code == "ORDER_NOT_FOUND"
    assert isinstance(client.notifications(order["trade_no"]), list)  # signed both ways
