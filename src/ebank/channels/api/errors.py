"""Errors as the API shows them: an HTTP status and `{"code", "message", "details"}`.

Messages are in Chinese unless the caller's Accept-Language prefers English. A fault that is
not an `EbankError` is a bug: the caller gets a bare 500 with the request id to quote, and the
traceback goes to the log, never into the response. A 423, 429 or 503 whose wait the domain
knows (`details.seconds`) says it in `Retry-After` (RFC 9110 §10.2.3), so that a client can wait
rather than hammer.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ebank.core.errors import EbankError

log = logging.getLogger(__name__)

# Validation problems listed in one response; a body with thousands of bad fields gets these.
MAX_LISTED_FIELDS = 20

INTERNAL_MESSAGE = {
    "zh": "系统内部错误，请稍后重试；如问题持续，请联系客服并提供请求编号",
    "en": "Internal error: please retry later, and quote the request id if it persists",
}


def pick_language(accept_language: str | None) -> str:
    """ "en" when the caller ranks English above Chinese, else "zh" (the bank's default)."""
    best, best_q = "zh", 0.0
    for item in (accept_language or "").split(","):
        tag, *params = item.strip().split(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("zh", "en"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = primary, q
    return best


def language_of(request: Request) -> str:
    """The language to answer this request in ("zh" or "en")."""
    return pick_language(request.headers.get("accept-language"))


# The answers that mean "not now": the domain puts the seconds to wait in `details.seconds`
# where it knows them, and the header repeats them for clients and proxies.
WAIT_STATUSES = frozenset({423, 429, 503})


async def ebank_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EbankError)
    body = jsonable_encoder(exc.to_dict(language_of(request)))
    seconds = exc.details.get("seconds") if exc.status in WAIT_STATUSES else None
    headers = None if seconds is None else {"Retry-After": str(seconds)}
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    fields = [
        {"field": ".".join(str(part) for part in problem["loc"]), "problem": problem["msg"]}
        for problem in problems[:MAX_LISTED_FIELDS]
    ]
    reason = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    if len(problems) > MAX_LISTED_FIELDS:
        reason += f"; and {len(problems) - MAX_LISTED_FIELDS} more"
    return await ebank_error_handler(
        request, EbankError("INVALID_INPUT", reason=reason, fields=fields)
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    request_id = getattr(request.state, "request_id", None)
    details: dict[str, Any] = {} if request_id is None else {"request_id": request_id}
    body = {
        "code": "INTERNAL",
        "message": INTERNAL_MESSAGE[language_of(request)],
        "details": details,
    }
    return JSONResponse(body, status_code=500)


# Starlette's own HTTP errors (no route, wrong method) in the same shape as ours.
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code)
    if code is None:
        body = {"code": "HTTP_ERROR", "message": str(exc.detail), "details": {}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
    response = await ebank_error_handler(request, EbankError(code))
    if exc.headers:
        response.headers.update(exc.headers)  # e.g. Allow on a 405
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(EbankError, ebank_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
