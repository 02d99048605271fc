"""Clearing messages: each one survives the trip through XML exactly, bad input is refused with
a reason, no DOCTYPE gets past the parser, and a signature proves who sent what, and when."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from xml.dom import minidom

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebank.clearing.messages import (
    MAX_AGE,
    PACS_004,
    PACS_008,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CreditTransfer,
    Header,
    PaymentReturn,
    StatusReport,
    StatusRequest,
    parse,
    sign,
    verify,
)
from ebank.core.errors import EbankError

NOW = datetime(2026, 11, 23, 2, 0, 0, 123456, tzinfo=UTC)
OURS, THEIRS = "999100000017", "999200000025"
SECRET = "a-test-secret-of-some-length"
HEADER = Header("999100000017P202611230000000042", NOW, OURS, THEIRS)
TRANSFER = CreditTransfer(
    header=HEADER, instr_id="P202611230000000042", end_to_end_id="P202611230000000042",
    tx_id="P202611230000000042", amount=123_456_78, currency="CNY", debtor_name="张三",
    debtor_account="6217001000000000428", debtor_agent=OURS, creditor_agent=THEIRS,
    creditor_name="李 雷", creditor_account="6222020000000001", remittance="房租 <11月> & 水电",
)  # fmt: skip


def invalid(data: bytes) -> str:
    with pytest.raises(EbankError) as caught:
        parse(data)
    assert caught.value.code == "CLEARING_MESSAGE_INVALID"
    assert caught.value.status == 400
    return str(caught.value.details["reason"])


@pytest.mark.parametrize(
    "message",
    [
        TRANSFER,
        replace(TRANSFER, remittance="", amount=1),
        replace(TRANSFER, currency="JPY", amount=5),
        StatusReport(HEADER, "M1", PACS_008, "E1", "ACSC"),
        StatusReport(HEADER, "M1", PACS_008, "E1", "ACSP"),
        StatusReport(HEADER, "M1", PACS_008, "E1", "PDNG", "MS03"),
        StatusReport(HEADER, "M1", PACS_008, "E1", "RJCT", "AC04"),
        StatusReport(HEADER, "M1", PACS_004, "E1", "RJCT", "NOOR"),
        StatusReport(HEADER, "M1", PACS_008, "E1", None),
        PaymentReturn(HEADER, "R1", "M1", "E1", 500_00, "CNY", "AC04"),
        StatusRequest(HEADER, "M1", "E1"),
    ],
    ids=lambda m: f"{type(m).__name__}",
)
def test_every_message_comes_back_from_its_xml_unchanged(message: object) -> None:
    xml = message.to_xml()  # type: ignore[attr-defined]
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert parse(xml) == message


def test_a_credit_transfer_uses_the_iso_element_names_and_an_exact_decimal_amount() -> None:
    xml = TRANSFER.to_xml().decode()
    assert 'xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"' in xml
    for element in (
        "<FIToFICstmrCdtTrf><GrpHdr><MsgId>999100000017P202611230000000042</MsgId>",
        "<NbOfTxs>1</NbOfTxs><SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf>",
        "<PmtId><InstrId>P202611230000000042</InstrId><EndToEndId>P202611230000000042"
        "</EndToEndId><TxId>P202611230000000042</TxId></PmtId>",
        '<IntrBkSttlmAmt Ccy="CNY">123456.78</IntrBkSttlmAmt>',
        "<Dbtr><Nm>张三</Nm></Dbtr><DbtrAcct><Id><Othr><Id>6217001000000000428</Id>",
        "<CdtrAgt><FinInstnId><ClrSysMmbId><MmbId>999200000025</MmbId>",
        "<RmtInf><Ustrd>房租 &lt;11月&gt; &amp; 水电</Ustrd></RmtInf>",
    ):
        assert element in xml


def test_a_not_known_answer_has_no_status_at_all_unlike_a_rejection() -> None:
    not_known = StatusReport(HEADER, "M1", PACS_008, "E1", None).to_xml().decode()
    rejected = StatusReport(HEADER, "M1", PACS_008, "E1", "RJCT", "AC01").to_xml().decode()
    assert "GrpSts" not in not_known and "TxSts" not in not_known
    assert "<GrpSts>RJCT</GrpSts>" in rejected and "<Cd>AC01</Cd>" in rejected
    assert not parse(not_known.encode()).known  # type: ignore[union-attr]


names = st.text(
    st.characters(codec="utf-8", exclude_categories=("C", "Z")), min_size=1, max_size=100
)


@given(
    amount=st.integers(1, 10**14),
    currency=st.sampled_from(["CNY", "USD", "JPY"]),
    debtor=names,
    creditor=names,
    memo=st.text(st.characters(codec="utf-8", exclude_categories=("C", "Z"),
                               include_characters=" "), max_size=90).map(str.strip),
)  # fmt: skip
def test_any_valid_transfer_survives_the_round_trip(
    amount: int, currency: str, debtor: str, creditor: str, memo: str
) -> None:
    message = replace(TRANSFER, amount=amount, currency=currency, debtor_name=debtor,
                      creditor_name=creditor, remittance=memo)  # fmt: skip
    assert parse(message.to_xml()) == message


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ('Ccy="CNY">123456.78<', 'Ccy="XYZ">123456.78<', "currency"),
        ('Ccy="CNY">123456.78<', 'Ccy="CNY">-123456.78<', "negative"),
        ('Ccy="CNY">123456.78<', 'Ccy="CNY">123456.789<', "decimals"),
        ('Ccy="CNY">123456.78<', 'Ccy="CNY">1.2345678E5<', "decimal"),
        ('Ccy="CNY">123456.78<', 'Ccy="CNY">0.00<', "positive"),
        ('Ccy="CNY">123456.78<', 'Ccy="CNY">99999999999999999.00<', "too large"),
        ('Ccy="CNY">123456.78<', ">123456.78<", "currency"),
        ("<Cdtr><Nm>李 雷</Nm></Cdtr>", "", "Cdtr/Nm is missing"),
        ("<EndToEndId>P202611230000000042</EndToEndId>", "", "EndToEndId is missing"),
        ("<NbOfTxs>1</NbOfTxs>", "<NbOfTxs>2</NbOfTxs>", "NbOfTxs"),
        ("<MmbId>999200000025</MmbId>", "<MmbId>99920</MmbId>", "12-digit"),
        ("<CreDtTm>2026-11-23T02:00:00.123456+00:00", "<CreDtTm>2026-11-23T02:00:00",
         "UTC offset"),
        ("<CreDtTm>2026-11-23T02:00:00.123456+00:00", "<CreDtTm>yesterday", "ISO 8601"),
        ("<EndToEndId>P202611230000000042<", "<EndToEndId>P2026 11230000000042<", "35"),
        ("<Id>6222020000000001</Id>", f"<Id>{'9' * 35}</Id>", "34"),
        ("<Nm>张三</Nm>", f"<Nm>{'张' * 101}</Nm>", "Dbtr/Nm"),
    ],
)  # fmt: skip
def test_a_transfer_with_a_bad_field_is_refused_with_its_reason(
    old: str, new: str, says: str
) -> None:
    xml = TRANSFER.to_xml().decode()
    assert old in xml
    assert says in invalid(xml.replace(old, new, 1).encode())


def test_two_transactions_in_one_message_are_refused() -> None:
    xml = TRANSFER.to_xml().decode()
    start, end = xml.index("<CdtTrfTxInf>"), xml.index("</CdtTrfTxInf>") + len("</CdtTrfTxInf>")
    doubled = xml[:end] + xml[start:end] + xml[end:]
    assert "exactly one CdtTrfTxInf" in invalid(doubled.encode())


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "well-formed"),
        (b"<Document", "well-formed"),
        (b"not xml at all", "well-formed"),
        (b"<Document/>", "not one of the messages"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>',
         "not one of the messages"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"/>',
         "FIToFICstmrCdtTrf"),
        (b"\xff\xfe<\x00D\x00", "UTF-8"),
        (b"<a>" + b"x" * 70_000 + b"</a>", "at most"),
    ],
)  # fmt: skip
def test_what_is_not_a_message_we_use_is_refused(data: bytes, says: str) -> None:
    assert says in invalid(data)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><FIToFICstmrCdtTrf>
<GrpHdr><MsgId>&lol4;</MsgId></GrpHdr></FIToFICstmrCdtTrf></Document>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">&x;</Document>"""
ONLY_A_DOCTYPE = TRANSFER.to_xml().replace(b"?>", b"?><!DOCTYPE Document>", 1)


@pytest.mark.parametrize("data", [BOMB, EXTERNAL, ONLY_A_DOCTYPE],
                         ids=["entity bomb", "external entity", "plain doctype"])  # fmt: skip
def test_no_doctype_is_accepted_so_no_entity_is_ever_expanded(data: bytes) -> None:
    assert "DOCTYPE" in invalid(data)


@pytest.mark.parametrize(
    "make",
    [
        lambda: replace(TRANSFER, amount=0),
        lambda: replace(TRANSFER, amount=12.5),
        lambda: replace(TRANSFER, currency="XXX"),
        lambda: replace(TRANSFER, creditor_name=""),
        lambda: replace(TRANSFER, creditor_name=" 李雷"),
        lambda: replace(TRANSFER, remittance="line\nbreak"),
        lambda: replace(TRANSFER, creditor_agent="ABC"),
        lambda: Header("M1", datetime(2026, 11, 23, 2, 0), OURS, THEIRS),
        lambda: StatusReport(HEADER, "M1", PACS_008, "E1", "RJCT"),
        lambda: StatusReport(HEADER, "M1", PACS_008, "E1", "ACSC", "AC01"),
        lambda: StatusReport(HEADER, "M1", PACS_008, "E1", "DONE"),
        lambda: StatusReport(HEADER, "M1", "pacs.009.001.08", "E1", "ACSC"),
        lambda: PaymentReturn(HEADER, "R1", "M1", "E1", 100, "CNY", "ac04"),
    ],
)
def test_a_message_that_breaks_the_rules_cannot_even_be_built(make: object) -> None:
    with pytest.raises(EbankError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.code == "CLEARING_MESSAGE_INVALID"


# -- signatures ---------------------------------------------------------------------------------
BODY = TRANSFER.to_xml()


def refused(headers: dict[str, str], body: bytes = BODY, now: datetime = NOW) -> None:
    with pytest.raises(EbankError) as caught:
        verify(SECRET, body, headers, now=now)
    assert caught.value.code == "CLEARING_UNAUTHENTICATED"
    assert caught.value.status == 401


def test_a_signed_message_verifies_within_five_minutes_either_way() -> None:
    headers = sign(SECRET, BODY, now=NOW)
    assert set(headers) == {TIMESTAMP_HEADER, SIGNATURE_HEADER}
    second = timedelta(seconds=1)  # the timestamp is in whole seconds
    for skew in (timedelta(0), MAX_AGE - second, -MAX_AGE + second):
        verify(SECRET, BODY, headers, now=NOW + skew)


def test_a_stale_or_future_signature_is_refused() -> None:
    headers = sign(SECRET, BODY, now=NOW)
    refused(headers, now=NOW + MAX_AGE + timedelta(seconds=2))
    refused(headers, now=NOW - MAX_AGE - timedelta(seconds=2))


def test_a_wrong_secret_a_changed_body_or_a_changed_time_is_refused() -> None:
    refused(sign("another-secret-of-some-length", BODY, now=NOW))
    refused(sign(SECRET, BODY, now=NOW), body=BODY.replace(b"123456.78", b"923456.78"))
    headers = sign(SECRET, BODY, now=NOW)
    refused(headers | {TIMESTAMP_HEADER: str(int(headers[TIMESTAMP_HEADER]) + 1)})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TIMESTAMP_HEADER: str(int(NOW.timestamp()))},
        {SIGNATURE_HEADER: "00" * 32},
        {TIMESTAMP_HEADER: "1e9", SIGNATURE_HEADER: "00" * 32},
        {TIMESTAMP_HEADER: str(int(NOW.timestamp())), SIGNATURE_HEADER: "签名"},
    ],
)
def test_missing_or_malformed_signature_headers_are_refused(headers: dict[str, str]) -> None:
    refused(headers)


def test_a_pretty_printed_message_reads_the_same() -> None:
    pretty = minidom.parseString(TRANSFER.to_xml()).toprettyxml(indent="  ", encoding="UTF-8")
    assert b"\n    <GrpHdr>" in pretty
    assert parse(pretty) == TRANSFER
