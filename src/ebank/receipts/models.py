"""Receipt value types: what a payment hands over, what a receipt shows, what the bank keeps."""

import re
from dataclasses import dataclass
from datetime import datetime

from ebank.core.crypto import mask_card, mask_name
from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR
from ebank.receipts.words import capital_amount

VERIFY_PATH = "/api/v1/receipts/verify"  # printed on every receipt: where anybody checks one
_ACCOUNT = re.compile(r"[0-9A-Za-z]{6,40}")
_SOURCE = re.compile(r"[a-z_]+:[0-9A-Za-z_-]+")


def mask_party(name: str, *, enterprise: bool) -> str:
    """A party's name as receipts print it: 张*三, 张* (the surname kept); enterprises in full."""
    if enterprise:
        return name
    return name[0] + "*" if len(name) == 2 else mask_name(name)


def _bad(reason: str) -> EbankError:
    return EbankError("INVALID_INPUT", reason=reason)


def _text(value: object, limit: int, what: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise _bad(f"a receipt's {what} is 1-{limit} printable characters")


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """What a completed payment puts on its receipt, as it is at that moment.

    Accounts in full (sealed when stored, masked when shown), the amount in fen, the time
    completed in UTC. `source` names what the receipt is for ("payment:123", "payroll_row:9"):
    there is one receipt per source. `customer_id` is the payer's, who alone may fetch it.
    Enterprises' names are printed in full, persons' masked: the caller knows which is which.
    """

    source: str
    customer_id: int
    payer_name: str
    payer_account: str
    payee_name: str
    payee_account: str
    payee_bank: str
    amount: int
    purpose: str
    channel: str
    reference: str
    completed_at: datetime
    currency: str = "CNY"
    payer_enterprise: bool = False
    payee_enterprise: bool = False

    def __post_init__(self) -> None:
        if (
            not isinstance(self.source, str)
            or not _SOURCE.fullmatch(self.source)
            or (len(self.source) > 40)
        ):
            raise _bad('a receipt\'s source is "kind:id", at most 40 characters')
        if type(self.customer_id) is not int or self.customer_id < 1:
            raise _bad("a receipt names its payer's customer id")
        for name, limit in (("payer_name", 200), ("payee_name", 200), ("payee_bank", 100),
                            ("purpose", 200), ("channel", 16), ("reference", 40)):  # fmt: skip
            _text(getattr(self, name), limit, name)
        for account in (self.payer_account, self.payee_account):
            if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
                raise _bad("an account number is 6-40 letters and digits")
        if type(self.amount) is not int or not 0 < self.amount <= MAX_MINOR:
            raise _bad("a receipt's amount is a positive amount in fen")
        # Receipts print the amount in 大写 with 人民币: the e-channels pay in CNY only.
        if self.currency != "CNY":
            raise _bad("receipts are issued for CNY payments")
        if not isinstance(self.completed_at, datetime) or self.completed_at.tzinfo is None:
            raise _bad("a receipt's completion time is timezone-aware")
        if type(self.payer_enterprise) is not bool or type(self.payee_enterprise) is not bool:
            raise _bad("whether a party is an enterprise is true or false")


@dataclass(frozen=True, slots=True)
class ReceiptView:
    """What a receipt shows to anybody holding it: the parties masked."""

    number: str
    amount: int
    currency: str
    completed_at: datetime
    payer_name: str
    payer_account: str
    payee_name: str
    payee_account: str
    payee_bank: str

    @property
    def amount_in_words(self) -> str:
        """人民币 right before the 大写, no gap, as the PBOC's rules ask."""
        return "人民币" + capital_amount(self.amount)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A receipt as issued, for its owner and the printed copy: never changed after issue.

    `code` is the verification code printed on it, derived from its content; the bank keeps
    only a keyed hash of it.
    """

    id: int
    source: str
    customer_id: int
    view: ReceiptView
    purpose: str
    channel: str
    reference: str
    issued_at: datetime
    code: str

    @property
    def number(self) -> str:
        return self.view.number


def masked_view(number: str, data: ReceiptData) -> ReceiptView:
    """The shown face of a receipt's data."""
    return ReceiptView(
        number=number,
        amount=data.amount,
        currency=data.currency,
        completed_at=data.completed_at,
        payer_name=mask_party(data.payer_name, enterprise=data.payer_enterprise),
        payer_account=mask_card(data.payer_account),
        payee_name=mask_party(data.payee_name, enterprise=data.payee_enterprise),
        payee_account=mask_card(data.payee_account),
        payee_bank=data.payee_bank,
    )
