"""What every page of the bank does to stay safe: its security headers, how it reads a form,
and the sealed cookie that keeps a visitor's state.

A sealed cookie is encrypted and authenticated by the vault (AES-GCM) under a purpose of its
own: the browser can neither read it nor forge it, and one page's cookie is no use to another.
"""

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import Response

from ebank.channels.api.common import vault_of

MAX_FORM_BYTES = 16_384  # the largest form a page sends is a few KiB
MAX_FORM_FIELDS = 60


def guarded(
    response: Response, *, scripts: bool = True, form_action: str = "'self'",
    referrer: str = "same-origin",
) -> Response:  # fmt: skip
    """A page's headers: scripts from the bank's own files only (never inline), forms posted
    to `form_action`, no framing, and nothing cached (pages show balances). The request layer
    adds what every answer carries (nosniff, frame denial)."""
    script = "script-src 'self'; connect-src 'self'; " if scripts else ""
    response.headers.update({
        "Content-Security-Policy": (
            f"default-src 'none'; {script}style-src 'self'; img-src 'self' data:; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Cache-Control": "no-store",
        "Referrer-Policy": referrer,
    })  # fmt: skip
    return response


async def read_form(
    request: Request, *, max_bytes: int = MAX_FORM_BYTES, max_fields: int = MAX_FORM_FIELDS
) -> dict[str, str]:
    """A url-encoded form's fields (the first of each name); {} for anything else, for a body
    past `max_bytes`, or for more than `max_fields` fields."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return {}
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=max_fields)
    except ValueError:  # not UTF-8, or too many fields
        return {}
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def unseal(request: Request, name: str, purpose: str) -> dict[str, Any] | None:
    """The state in cookie `name`, or None when it is missing, altered or sealed for another
    purpose."""
    sealed = request.cookies.get(name)
    if not sealed:
        return None
    try:
        state = json.loads(vault_of(request).decrypt(sealed, purpose=purpose))
    except (ValueError, TypeError):
        return None
    return state if isinstance(state, dict) else None


def seal(
    request: Request, response: Response, name: str, purpose: str, state: dict[str, Any], *,
    path: str, max_age: int,
) -> Response:  # fmt: skip
    """Send `state` back sealed: HttpOnly, SameSite=Strict, Secure over https, for `path`."""
    sealed = vault_of(request).encrypt(json.dumps(state), purpose=purpose)
    response.set_cookie(
        name, sealed, max_age=max_age, path=path, secure=request.url.scheme == "https",
        httponly=True, samesite="strict",
    )  # fmt: skip
    return response


def forget(request: Request, response: Response, name: str, *, path: str) -> Response:
    response.delete_cookie(
        name, path=path, secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return response
