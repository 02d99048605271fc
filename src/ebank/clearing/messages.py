"""The clearing messages we use, and how they are authenticated on the wire.

Four ISO 20022 messages, with their real element names, cut down to what ebank and the
clearing house use: pacs.008 (customer credit transfer), pacs.002 (payment status report),
pacs.004 (payment return) and pacs.028 (payment status request). Each is a frozen dataclass
that checks itself when made, so a message built here and one parsed from the wire pass the
same rules; `to_xml` and `parse` are each other's inverse.

- One transaction per message (NbOfTxs = 1): that is all either side sends.
- Amounts are exact decimal strings with the currency's digits ("100.00"), never floats; an
  unknown currency, a sign, an exponent or a wrong number of digits is refused.
- Input is parsed with defusedxml and no DOCTYPE is accepted at all, so entity expansion
  ("billion laughs") and external entities are refused before any element is read.

Every HTTP message, request or answer, carries `X-Clearing-Timestamp` (Unix seconds) and
`X-Clearing-Signature`: hex HMAC-SHA256 under the shared secret of the timestamp, a newline and
the body. A signature older (or newer) than five minutes is refused; within those five minutes
a replayed message is caught by the receiver's de-duplication (message and end-to-end ids).
"""

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR, digits, format_minor, parse_minor

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:"
PACS_008 = "pacs.008.001.08"
PACS_002 = "pacs.002.001.10"
PACS_004 = "pacs.004.001.09"
PACS_028 = "pacs.028.001.03"
MAX_BYTES = 64 * 1024  # one transaction's message is a few KiB

SETTLED = "ACSC"  # accepted, settlement completed: the creditor has the money
PENDING = ("ACSP", "PDNG")  # accepted, settlement in process / pending: ask again later
REJECTED = "RJCT"
STATUSES = (SETTLED, *PENDING, REJECTED)

TIMESTAMP_HEADER = "X-Clearing-Timestamp"
SIGNATURE_HEADER = "X-Clearing-Signature"
MAX_AGE = timedelta(minutes=5)

_ID = re.compile(r"[!-~]{1,35}")  # Max35Text, printable ASCII without spaces
_ACCOUNT = re.compile(r"[!-~]{1,34}")
_BANK = re.compile(r"[0-9]{12}")
_REASON = re.compile(r"[A-Z0-9]{4}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Within ISO's Max140Text: a name as long as a customer's, and room for both in a ledger memo.
NAME_CHARS = 100
REMITTANCE_CHARS = 90


def invalid(reason: str) -> EbankError:
    return EbankError("CLEARING_MESSAGE_INVALID", reason=reason)


def _check_id(value: object, what: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise invalid(f"{what} is 1-35 printable ASCII characters without spaces")


def _check_bank(value: object, what: str) -> None:
    if not isinstance(value, str) or not _BANK.fullmatch(value):
        raise invalid(f"{what} is a 12-digit clearing member code")


def _check_account(value: object, what: str) -> None:
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        raise invalid(f"{what} is 1-34 printable ASCII characters without spaces")


def _check_text(value: object, what: str, limit: int, *, required: bool = True) -> None:
    if (
        not isinstance(value, str)
        or len(value) > limit
        or not value.isprintable()
        or value != value.strip()
        or (required and not value)
    ):
        raise invalid(f"{what} is {'1' if required else '0'}-{limit} printable characters")


def _check_amount(amount: object, currency: object) -> None:
    if not isinstance(currency, str):
        raise invalid("a currency is an ISO 4217 code")
    try:
        digits(currency)
    except EbankError:
        raise invalid(f"unknown currency {currency[:8]!r}") from None
    if type(amount) is not int or not 0 < amount <= MAX_MINOR:
        raise invalid("an amount is a positive number of minor units, at most 10^14")


def _check_reason(reason: object, status: str | None) -> None:
    if reason is not None and (not isinstance(reason, str) or not _REASON.fullmatch(reason)):
        raise invalid("a reason is a 4-character ISO code")
    if status == REJECTED and reason is None:
        raise invalid("a rejection carries its reason")


# -- the messages -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Header:
    """GrpHdr: the message's id and time, who sends it (InstgAgt) and to whom (InstdAgt)."""

    msg_id: str
    created_at: datetime
    sender: str
    receiver: str

    def __post_init__(self) -> None:
        _check_id(self.msg_id, "MsgId")
        if not isinstance(self.created_at, datetime) or self.created_at.tzinfo is None:
            raise invalid("CreDtTm is a date and time with its UTC offset")
        _check_bank(self.sender, "InstgAgt")
        _check_bank(self.receiver, "InstdAgt")


@dataclass(frozen=True, slots=True)
class CreditTransfer:
    """pacs.008: move `amount` from the debtor at the debtor's bank to the creditor."""

    kind: ClassVar[str] = PACS_008
    header: Header
    instr_id: str
    end_to_end_id: str
    tx_id: str
    amount: int  # minor units
    currency: str
    debtor_name: str
    debtor_account: str
    debtor_agent: str
    creditor_agent: str
    creditor_name: str
    creditor_account: str
    remittance: str = ""

    def __post_init__(self) -> None:
        for value, what in (
            (self.instr_id, "InstrId"), (self.end_to_end_id, "EndToEndId"), (self.tx_id, "TxId")
        ):  # fmt: skip
            _check_id(value, what)
        _check_amount(self.amount, self.currency)
        _check_text(self.debtor_name, "Dbtr/Nm", NAME_CHARS)
        _check_text(self.creditor_name, "Cdtr/Nm", NAME_CHARS)
        _check_account(self.debtor_account, "DbtrAcct")
        _check_account(self.creditor_account, "CdtrAcct")
        _check_bank(self.debtor_agent, "DbtrAgt")
        _check_bank(self.creditor_agent, "CdtrAgt")
        _check_text(self.remittance, "RmtInf/Ustrd", REMITTANCE_CHARS, required=False)

    def to_xml(self) -> bytes:
        doc = _Writer(self.kind, "FIToFICstmrCdtTrf")
        doc.header(self.header, transactions=True)
        tx = doc.add(doc.body, "CdtTrfTxInf")
        pmt = doc.add(tx, "PmtId")
        doc.add(pmt, "InstrId", self.instr_id)
        doc.add(pmt, "EndToEndId", self.end_to_end_id)
        doc.add(pmt, "TxId", self.tx_id)
        doc.amount(tx, "IntrBkSttlmAmt", self.amount, self.currency)
        doc.add(tx, "ChrgBr", "SLEV")
        doc.add(tx, "Dbtr/Nm", self.debtor_name)
        doc.add(tx, "DbtrAcct/Id/Othr/Id", self.debtor_account)
        doc.agent(tx, "DbtrAgt", self.debtor_agent)
        doc.agent(tx, "CdtrAgt", self.creditor_agent)
        doc.add(tx, "Cdtr/Nm", self.creditor_name)
        doc.add(tx, "CdtrAcct/Id/Othr/Id", self.creditor_account)
        if self.remittance:
            doc.add(tx, "RmtInf/Ustrd", self.remittance)
        return doc.bytes()


@dataclass(frozen=True, slots=True)
class StatusReport:
    """pacs.002: the status of one transaction of an earlier message.

    `status` None is the answer to a status request about a transaction the sender does not
    know ("not known here"); it never means a rejection, which is RJCT with a reason.
    """

    kind: ClassVar[str] = PACS_002
    header: Header
    original_msg_id: str
    original_kind: str
    end_to_end_id: str
    status: str | None
    reason: str | None = None

    def __post_init__(self) -> None:
        _check_id(self.original_msg_id, "OrgnlMsgId")
        if self.original_kind not in (PACS_008, PACS_004):
            raise invalid("OrgnlMsgNmId names a pacs.008 or pacs.004")
        _check_id(self.end_to_end_id, "OrgnlEndToEndId")
        if self.status is not None and self.status not in STATUSES:
            raise invalid(f"TxSts is one of {', '.join(STATUSES)}")
        _check_reason(self.reason, self.status)
        if self.status in (SETTLED, None) and self.reason is not None:
            raise invalid("only a rejected or pending transaction carries a reason")

    @property
    def known(self) -> bool:
        return self.status is not None

    def to_xml(self) -> bytes:
        doc = _Writer(self.kind, "FIToFIPmtStsRpt")
        doc.header(self.header, transactions=False)
        group = doc.add(doc.body, "OrgnlGrpInfAndSts")
        doc.add(group, "OrgnlMsgId", self.original_msg_id)
        doc.add(group, "OrgnlMsgNmId", self.original_kind)
        if self.status is not None:
            doc.add(group, "GrpSts", self.status)
        tx = doc.add(doc.body, "TxInfAndSts")
        doc.add(tx, "OrgnlEndToEndId", self.end_to_end_id)
        if self.status is not None:
            doc.add(tx, "TxSts", self.status)
        if self.reason is not None:
            doc.add(tx, "StsRsnInf/Rsn/Cd", self.reason)
        return doc.bytes()


@dataclass(frozen=True, slots=True)
class PaymentReturn:
    """pacs.004: the creditor's bank sends back the money of a settled credit transfer."""

    kind: ClassVar[str] = PACS_004
    header: Header
    return_id: str
    original_msg_id: str
    end_to_end_id: str
    amount: int
    currency: str
    reason: str

    def __post_init__(self) -> None:
        _check_id(self.return_id, "RtrId")
        _check_id(self.original_msg_id, "OrgnlMsgId")
        _check_id(self.end_to_end_id, "OrgnlEndToEndId")
        _check_amount(self.amount, self.currency)
        _check_reason(self.reason, REJECTED)

    def to_xml(self) -> bytes:
        doc = _Writer(self.kind, "PmtRtr")
        doc.header(self.header, transactions=True)
        tx = doc.add(doc.body, "TxInf")
        doc.add(tx, "RtrId", self.return_id)
        group = doc.add(tx, "OrgnlGrpInf")
        doc.add(group, "OrgnlMsgId", self.original_msg_id)
        doc.add(group, "OrgnlMsgNmId", PACS_008)
        doc.add(tx, "OrgnlEndToEndId", self.end_to_end_id)
        doc.amount(tx, "RtrdIntrBkSttlmAmt", self.amount, self.currency)
        doc.add(tx, "RtrRsnInf/Rsn/Cd", self.reason)
        return doc.bytes()


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """pacs.028: what became of the transaction of an earlier pacs.008?"""

    kind: ClassVar[str] = PACS_028
    header: Header
    original_msg_id: str
    end_to_end_id: str

    def __post_init__(self) -> None:
        _check_id(self.original_msg_id, "OrgnlMsgId")
        _check_id(self.end_to_end_id, "OrgnlEndToEndId")

    def to_xml(self) -> bytes:
        doc = _Writer(self.kind, "FIToFIPmtStsReq")
        doc.header(self.header, transactions=False)
        tx = doc.add(doc.body, "TxInf")
        group = doc.add(tx, "OrgnlGrpInf")
        doc.add(group, "OrgnlMsgId", self.original_msg_id)
        doc.add(group, "OrgnlMsgNmId", PACS_008)
        doc.add(tx, "OrgnlEndToEndId", self.end_to_end_id)
        return doc.bytes()


Message = CreditTransfer | StatusReport | PaymentReturn | StatusRequest


# -- writing ------------------------------------------------------------------------------------
class _Writer:
    """An ISO 20022 document under construction (building is safe with the standard library:
    it is parsing untrusted input that needs defusedxml)."""

    def __init__(self, kind: str, body: str) -> None:
        # The namespace is declared as the default one and the tags are written bare: the
        # standard library refuses a default namespace beside unqualified attributes (Ccy).
        self.root = Element("Document", xmlns=NAMESPACE + kind)
        self.body = SubElement(self.root, body)

    def add(self, parent: Element, path: str, text: str | None = None) -> Element:
        """Append the elements of `path` ("A/B/C") under `parent`; the last gets `text`."""
        node = parent
        for tag in path.split("/"):
            node = SubElement(node, tag)
        node.text = text
        return node

    def agent(self, parent: Element, tag: str, bank: str) -> None:
        self.add(parent, f"{tag}/FinInstnId/ClrSysMmbId/MmbId", bank)

    def amount(self, parent: Element, tag: str, amount: int, currency: str) -> None:
        self.add(parent, tag, format_minor(amount, currency)).set("Ccy", currency)

    def header(self, header: Header, *, transactions: bool) -> None:
        group = self.add(self.body, "GrpHdr")
        self.add(group, "MsgId", header.msg_id)
        self.add(group, "CreDtTm", header.created_at.astimezone(UTC).isoformat())
        if transactions:
            self.add(group, "NbOfTxs", "1")
            self.add(group, "SttlmInf/SttlmMtd", "CLRG")
        self.agent(group, "InstgAgt", header.sender)
        self.agent(group, "InstdAgt", header.receiver)

    def bytes(self) -> bytes:
        return tostring(self.root, encoding="UTF-8", xml_declaration=True)


# -- reading ------------------------------------------------------------------------------------
class _Reader:
    """Look-ups in one parsed document; a missing element is the message's error."""

    def __init__(self, root: Element, ns: str, body: str) -> None:
        self.ns = ns
        found = root.find(self._path(body))
        if found is None or len(root) != 1:
            raise invalid(f"the document holds one {body}")
        self.body = found

    def _path(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{tag}" for tag in path.split("/"))

    def node(self, path: str, parent: Element | None = None) -> Element:
        found = (self.body if parent is None else parent).find(self._path(path))
        if found is None:
            raise invalid(f"{path} is missing")
        return found

    def count(self, path: str) -> int:
        return len(self.body.findall(self._path(path)))

    def text(self, path: str, parent: Element | None = None) -> str:
        return (self.node(path, parent).text or "").strip()

    def optional(self, path: str, parent: Element | None = None) -> str | None:
        found = (self.body if parent is None else parent).find(self._path(path))
        return None if found is None else (found.text or "").strip()

    def agent(self, tag: str, parent: Element | None = None) -> str:
        return self.text(f"{tag}/FinInstnId/ClrSysMmbId/MmbId", parent)

    def amount(self, path: str, parent: Element) -> tuple[int, str]:
        node = self.node(path, parent)
        currency = node.get("Ccy", "")
        try:
            return parse_minor((node.text or "").strip(), currency), currency
        except EbankError as exc:
            raise invalid(f"{path}: {exc.message('en')}") from None

    def header(self, *, transactions: bool) -> Header:
        if transactions and self.text("GrpHdr/NbOfTxs") != "1":
            raise invalid("NbOfTxs is 1: one transaction per message")
        try:
            created = datetime.fromisoformat(self.text("GrpHdr/CreDtTm"))
        except ValueError:
            raise invalid("CreDtTm is an ISO 8601 date and time") from None
        return Header(
            self.text("GrpHdr/MsgId"), created, self.agent("GrpHdr/InstgAgt"),
            self.agent("GrpHdr/InstdAgt"),
        )  # fmt: skip

    def one(self, path: str) -> Element:
        if self.count(path) != 1:
            raise invalid(f"the message holds exactly one {path}")
        return self.node(path)


def _credit_transfer(doc: _Reader) -> CreditTransfer:
    header = doc.header(transactions=True)
    tx = doc.one("CdtTrfTxInf")
    amount, currency = doc.amount("IntrBkSttlmAmt", tx)
    return CreditTransfer(
        header=header,
        instr_id=doc.text("PmtId/InstrId", tx),
        end_to_end_id=doc.text("PmtId/EndToEndId", tx),
        tx_id=doc.text("PmtId/TxId", tx),
        amount=amount,
        currency=currency,
        debtor_name=doc.text("Dbtr/Nm", tx),
        debtor_account=doc.text("DbtrAcct/Id/Othr/Id", tx),
        debtor_agent=doc.agent("DbtrAgt", tx),
        creditor_agent=doc.agent("CdtrAgt", tx),
        creditor_name=doc.text("Cdtr/Nm", tx),
        creditor_account=doc.text("CdtrAcct/Id/Othr/Id", tx),
        remittance=doc.optional("RmtInf/Ustrd", tx) or "",
    )


def _status_report(doc: _Reader) -> StatusReport:
    header = doc.header(transactions=False)
    group = doc.node("OrgnlGrpInfAndSts")
    tx = doc.one("TxInfAndSts")
    status = doc.optional("TxSts", tx)
    if doc.optional("GrpSts", group) not in (None, status):
        raise invalid("GrpSts differs from the transaction's TxSts")
    return StatusReport(
        header=header,
        original_msg_id=doc.text("OrgnlMsgId", group),
        original_kind=doc.text("OrgnlMsgNmId", group),
        end_to_end_id=doc.text("OrgnlEndToEndId", tx),
        status=status,
        reason=doc.optional("StsRsnInf/Rsn/Cd", tx),
    )


def _payment_return(doc: _Reader) -> PaymentReturn:
    header = doc.header(transactions=True)
    tx = doc.one("TxInf")
    amount, currency = doc.amount("RtrdIntrBkSttlmAmt", tx)
    return PaymentReturn(
        header=header,
        return_id=doc.text("RtrId", tx),
        original_msg_id=doc.text("OrgnlGrpInf/OrgnlMsgId", tx),
        end_to_end_id=doc.text("OrgnlEndToEndId", tx),
        amount=amount,
        currency=currency,
        reason=doc.text("RtrRsnInf/Rsn/Cd", tx),
    )


def _status_request(doc: _Reader) -> StatusRequest:
    header = doc.header(transactions=False)
    tx = doc.one("TxInf")
    return StatusRequest(
        header=header,
        original_msg_id=doc.text("OrgnlGrpInf/OrgnlMsgId", tx),
        end_to_end_id=doc.text("OrgnlEndToEndId", tx),
    )


_PARSERS: dict[str, tuple[str, Callable[[_Reader], Message]]] = {
    PACS_008: ("FIToFICstmrCdtTrf", _credit_transfer),
    PACS_002: ("FIToFIPmtStsRpt", _status_report),
    PACS_004: ("PmtRtr", _payment_return),
    PACS_028: ("FIToFIPmtStsReq", _status_request),
}


def parse(data: bytes) -> Message:
    """The message in `data`; CLEARING_MESSAGE_INVALID says what is wrong with it."""
    if not isinstance(data, bytes) or len(data) > MAX_BYTES:
        raise invalid(f"a message is at most {MAX_BYTES} bytes")
    try:
        data.decode("utf-8")  # what is logged is the text as it came
    except UnicodeDecodeError:
        raise invalid("a message is UTF-8") from None
    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise invalid("DOCTYPE, entities and external references are not accepted") from None
    except ParseError as exc:
        raise invalid(f"not well-formed XML ({exc})") from None
    ns, _, local = root.tag.partition("}")
    kind = ns[1 + len(NAMESPACE) :] if ns.startswith("{" + NAMESPACE) else ""
    if local != "Document" or kind not in _PARSERS:
        raise invalid(f"not one of the messages used here ({', '.join(_PARSERS)})")
    body, parser = _PARSERS[kind]
    return parser(_Reader(root, NAMESPACE + kind, body))


# -- authentication -------------------------------------------------------------------------------
def _signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, body: bytes, *, now: datetime) -> dict[str, str]:
    """The headers that authenticate `body` at `now`."""
    timestamp = str(int(now.timestamp()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: _signature(secret, timestamp, body)}


def verify(secret: str, body: bytes, headers: Mapping[str, str], *, now: datetime) -> None:
    """Refuse (CLEARING_UNAUTHENTICATED) a body whose signature is wrong, missing or stale;
    called before the body is parsed."""
    timestamp = headers.get(TIMESTAMP_HEADER) or ""
    given = (headers.get(SIGNATURE_HEADER) or "").encode()
    fresh = _TIMESTAMP.fullmatch(timestamp) is not None and (
        abs(now.timestamp() - int(timestamp)) <= MAX_AGE.total_seconds()
    )
    expected = _signature(secret, timestamp, body).encode()
    if not (hmac.compare_digest(given, expected) and fresh):
        raise EbankError("CLEARING_UNAUTHENTICATED")
