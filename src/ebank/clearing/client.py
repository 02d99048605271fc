"""Our bank's HTTP client for the clearing house.

It tells three outcomes apart, because a transfer whose outcome is unknown must never be
guessed: an answer (a signed pacs.002 about the very transaction we sent), a refusal of the
message itself (HTTP 400: the house acted on nothing), and everything else, which is
`OutcomeUnknown`: no answer in time, a dropped connection, a server error, an answer that is
not signed or not about our transaction. Only a status query can tell what became of those.
"""

from dataclasses import dataclass
from types import TracebackType

import httpx

from ebank.clearing.messages import StatusReport, parse, sign, verify
from ebank.core.clock import Clock, SystemClock
from ebank.core.errors import EbankError
from ebank.core.settings import Settings

MESSAGES_PATH = "/messages"


class OutcomeUnknown(Exception):
    """The house may or may not have acted on what we sent: ask it with a status query."""


class MessageRefused(Exception):
    """The house refused the message itself (HTTP 400) and acted on nothing."""


@dataclass(frozen=True, slots=True)
class Answer:
    report: StatusReport
    xml: str  # as it came, for the message log


class ClearingClient:
    """Posts our messages to the house, signed, and checks its answers' signatures."""

    def __init__(
        self, http: httpx.Client, *, bank_code: str, secret: str, clock: Clock | None = None
    ) -> None:
        """`http` is a client whose base URL is the house's, with the timeout to wait."""
        self.bank_code = bank_code
        self._http = http
        self._secret = secret
        self._clock = clock or SystemClock()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> "ClearingClient":
        """The client for the configured house; INTERBANK_UNAVAILABLE when there is none."""
        if not settings.clearing_url:
            raise EbankError("INTERBANK_UNAVAILABLE")
        http = httpx.Client(
            base_url=settings.clearing_url, timeout=settings.clearing_timeout_seconds
        )
        secret = settings.clearing_secret.get_secret_value()
        return cls(http, bank_code=settings.bank_code, secret=secret, clock=clock)

    def send(self, pacs008: bytes, *, end_to_end_id: str) -> Answer:
        """Post a credit transfer; the house's ACSC, ACSP/PDNG or RJCT about it."""
        return self._post(pacs008, end_to_end_id, query=False)

    def query(self, pacs028: bytes, *, end_to_end_id: str) -> Answer:
        """Post a status request; the transfer's current status, or status None when the house
        does not know it (HTTP 404): then it never acted on it."""
        return self._post(pacs028, end_to_end_id, query=True)

    def _post(self, body: bytes, end_to_end_id: str, *, query: bool) -> Answer:
        headers = {"Content-Type": "application/xml"}
        headers |= sign(self._secret, body, now=self._clock.now())
        try:
            response = self._http.post(MESSAGES_PATH, content=body, headers=headers)
        except httpx.TransportError as exc:  # timeouts, resets, refused connections
            raise OutcomeUnknown(f"no answer from the clearing house: {exc!r}") from exc
        status = response.status_code
        if status == 400 and not query:
            raise MessageRefused(response.text[:500])
        if status not in ((200, 404) if query else (200,)):
            raise OutcomeUnknown(f"the clearing house answered HTTP {status}")
        try:
            verify(self._secret, response.content, response.headers, now=self._clock.now())
            report = parse(response.content)
        except EbankError as exc:
            raise OutcomeUnknown(f"an answer that cannot be trusted: {exc}") from exc
        if (
            not isinstance(report, StatusReport)
            or report.end_to_end_id != end_to_end_id
            or report.known != (status == 200)
        ):
            raise OutcomeUnknown("the answer is not a status report about this transfer")
        return Answer(report, response.content.decode("utf-8", errors="replace"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ClearingClient":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()
