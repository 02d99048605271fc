"""What the risk service is asked about and what it answers (issue 5; DOMAIN.md §6).

A caller describes an attempt as a `Context` (who, on which channel, from which device, how
much, to whom) and gets a `Decision`: one of `OUTCOMES`, the score, and the reasons in words.
"""

from dataclasses import dataclass

from ebank.core.crypto import Vault

EVENTS = ("login", "payee_add", "payment", "phone_change", "limit_change", "gateway_payment")
MONEY_EVENTS = ("payment", "gateway_payment")
OUTCOMES = ("allow", "step_up", "delay", "review", "block")  # increasing severity
SEVERITY = {outcome: n for n, outcome in enumerate(OUTCOMES)}
CHANNELS = (
    "online", "mobile", "phone", "sms", "counter", "atm", "gateway", "corporate", "clearing",
)  # fmt: skip
FACTORS = ("", "password", "pin", "sms", "token", "certificate")
STRONG_FACTORS = ("token", "certificate")  # what a step-up asks for
# Watch lists: police-designated (涉案) accounts, compromised credentials, sanctioned parties.
LISTS = ("police", "compromised", "sanctioned")
PAYEE_PURPOSE = "risk.payee_account"  # the keyed hash naming another bank's account


@dataclass(frozen=True, slots=True)
class Context:
    """One attempt, as the service that is about to carry it out sees it."""

    event: str  # one of EVENTS
    customer_id: int | None  # who acts (payer / the person logging in)
    channel: str  # one of CHANNELS
    device: str = ""  # the device's keyed hash as security.devices stores it, "" unknown
    ip: str = ""
    amount: int = 0  # fen, for money events
    account_id: int | None = None  # the paying LEDGER account id (ledger_accounts.id)
    payee: str = ""  # `payee_key(...)`: "acct:<ledger id>" here, "ext:<bank>:<hash>" elsewhere
    payee_account_id: int | None = None  # the payee's ledger account id when it banks with us
    payee_is_new: bool = False  # not in the payer's payee book / never paid before
    merchant_id: int | None = None  # gateway payments
    buyer_related: bool = False  # gateway: the buyer's account is linked to the merchant
    factor: str = ""  # what confirms it: password | pin | sms | token | certificate

    def __post_init__(self) -> None:
        """A malformed context is a caller's bug: refuse it loudly rather than score it."""
        if self.event not in EVENTS or self.channel not in CHANNELS or self.factor not in FACTORS:
            raise ValueError(f"bad event/channel/factor: {self.event}/{self.channel}/{self.factor}")
        for name in ("customer_id", "account_id", "payee_account_id", "merchant_id"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"{name} is a positive int or None")
        if type(self.amount) is not int or self.amount < 0 or self.amount > 10**15:
            raise ValueError("amount is a non-negative int of fen")
        if (self.event in MONEY_EVENTS) != (self.amount > 0):
            raise ValueError("money events, and only they, carry an amount")
        for name, limit in (("device", 64), ("ip", 45), ("payee", 90)):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > limit or not value.isprintable():
                raise ValueError(f"{name} is printable text of at most {limit} characters")


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a rule's code and its description in both languages."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Decision:
    id: int  # risk_decisions row id
    outcome: str  # one of OUTCOMES (enforced rules only)
    score: int
    reasons: tuple[Reason, ...]  # enforced rules hit
    shadow: tuple[str, ...]  # codes of shadow rules that would have hit


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule as data. Defaults live in code as version 0 by "system"; staff versions follow."""

    code: str
    description_zh: str
    description_en: str
    expression: str
    score: int  # added to the decision's score when it hits
    outcome: str  # "" or an outcome it forces at least (never "allow")
    enabled: bool
    shadow: bool  # evaluated and logged, not enforced
    version: int = 0
    author: str = "system"
    approver: str = ""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score bands: a score at or above a band's threshold earns at least that outcome."""

    step_up: int = 40
    delay: int = 60
    review: int = 80
    block: int = 100
    version: int = 0
    author: str = "system"
    approver: str = ""

    def outcome(self, score: int) -> str:
        for outcome, floor in (
            ("block", self.block), ("review", self.review), ("delay", self.delay),
            ("step_up", self.step_up),
        ):  # fmt: skip
            if score >= floor:
                return outcome
        return "allow"


def payee_key(
    vault: Vault | None = None,
    *,
    ledger_account_id: int | None = None,
    bank: str = "",
    account_number: str = "",
) -> str:
    """The stable key of a payee account for `Context.payee` and the watch lists: an account
    here by its ledger id, another bank's by bank code and a keyed hash of the number (the
    number itself never reaches the risk tables)."""
    if ledger_account_id is not None:
        return f"acct:{ledger_account_id}"
    number = "".join(account_number.split())
    if vault is None or not bank or not number or not bank.isalnum() or len(bank) > 12:
        raise ValueError("another bank's account needs the vault, its bank code and its number")
    return f"ext:{bank}:{vault.lookup_hash(number, purpose=PAYEE_PURPOSE)}"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, as the service that scores it passes it on: the keyed hash of
    the device its session was opened from, and the caller's IP address."""

    device: str = ""
    ip: str = ""


BANK_RUN = Origin()  # the bank's own runs (a standing order's, the worker's): no device, no address
