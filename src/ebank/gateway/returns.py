"""The signed result the pay page hands back to the merchant's return URL.

The buyer's browser carries it, so it tells the shop's page what happened, never proves it:
only the notification and a query do (docs/gateway.md). It is signed like every other thing
the gateway sends, `TIMESTAMP\\nNONCE\\nBODY\\n` with the gateway's key, where BODY is the JSON
of the order as the API shows it; the fields travel in the query, so BODY goes as base64url.
The merchant SDK checks it with `GatewayClient.verify_return`.
"""

import base64
import json
from datetime import datetime
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from ebank.gateway import orders, signing
from ebank.gateway.client import RETURN_FIELDS, new_nonce
from ebank.gateway.models import OrderView


def signed_return_url(view: OrderView, *, now: datetime) -> str:
    """The order's return URL with `result`, `timestamp`, `nonce`, `signature` and `serial`
    appended. The merchant's own query is kept as it was written, less any parameter of those
    five names, so that what the shop reads under them can only be what the gateway signed."""
    body = json.dumps(orders.public(view), ensure_ascii=False, separators=(",", ":")).encode()
    timestamp, nonce = str(int(now.timestamp())), new_nonce()
    key = signing.gateway_key()
    signed = {
        "result": base64.urlsafe_b64encode(body).rstrip(b"=").decode(),
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": key.sign(signing.response_message(timestamp, nonce, body)),
        "serial": key.serial,
    }
    parts = urlsplit(view.return_url)
    kept = [p for p in parts.query.split("&") if p and _name(p) not in RETURN_FIELDS]
    return urlunsplit(parts._replace(query="&".join([*kept, urlencode(signed)])))


def _name(parameter: str) -> str:
    return unquote_plus(parameter.partition("=")[0])
