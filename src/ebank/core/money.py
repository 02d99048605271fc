"""Money as integer minor units (fen) plus an ISO 4217 code. No float ever touches an amount."""

import re
from dataclasses import dataclass

from ebank.core.errors import EbankError

# ISO 4217 minor-unit exponents of the currencies the bank deals in.
CURRENCY_DIGITS: dict[str, int] = {
    "CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "GBP": 2, "JPY": 0, "KRW": 0, "SGD": 2, "AUD": 2,
    "CAD": 2, "CHF": 2, "MOP": 2, "TWD": 2,
}  # fmt: skip

# Amounts beyond this are refused at the edge: a trillion yuan in fen still sums safely in int64.
MAX_MINOR = 10**14

_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")


def digits(currency: str) -> int:
    try:
        return CURRENCY_DIGITS[currency]
    except KeyError:
        raise EbankError("UNKNOWN_CURRENCY", currency=currency) from None


@dataclass(frozen=True, slots=True, order=True)
class Money:
    minor: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise TypeError("Money.minor must be an int of minor units")
        digits(self.currency)

    @classmethod
    def parse(cls, text: str, currency: str = "CNY", *, allow_negative: bool = False) -> "Money":
        """Parse a decimal string with exactly the currency's number of digits ("1234.50")."""
        return cls(parse_minor(text, currency, allow_negative=allow_negative), currency)

    def __str__(self) -> str:
        return format_minor(self.minor, self.currency)


def parse_minor(text: str, currency: str = "CNY", *, allow_negative: bool = False) -> int:
    if not isinstance(text, str):
        raise EbankError("INVALID_AMOUNT", reason='an amount is a decimal string such as "12.50"')
    exp = digits(currency)
    match = _DECIMAL.fullmatch(text)
    if not match:
        raise EbankError("INVALID_AMOUNT", reason=f"{text[:32]!r} is not a plain decimal number")
    sign, whole, frac = match.groups()
    if len(frac or "") != exp:
        shown = "no decimals" if exp == 0 else f"exactly {exp} decimals"
        raise EbankError("INVALID_AMOUNT", reason=f"{currency} amounts take {shown}")
    if len(whole) > 16:
        raise EbankError("INVALID_AMOUNT", reason="the amount is too large")
    minor = int(whole) * 10**exp + int(frac or "0")
    if sign:
        if not allow_negative:
            raise EbankError("INVALID_AMOUNT", reason="the amount cannot be negative")
        minor = -minor
    if abs(minor) > MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="the amount is too large")
    return minor


def format_minor(minor: int, currency: str = "CNY") -> str:
    """The exact decimal string of an amount, as the API returns it ("-1234.50")."""
    exp = digits(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"


SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "JP¥", "GBP": "£"}


def format_grouped(minor: int, currency: str = "CNY") -> str:
    """The exact amount with thousands separators, as notices and pages print it
    ("-12,345.60")."""
    exp = digits(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole:,}.{frac:0{exp}d}" if exp else f"{sign}{whole:,}"


def display_amount(minor: int, currency: str = "CNY") -> str:
    """An amount as people read it, with its symbol ("¥1,234.50", "-¥5.00")."""
    symbol = SYMBOLS.get(currency, currency + " ")
    return ("-" if minor < 0 else "") + symbol + format_grouped(abs(minor), currency)
