"""The identity numbers a bank checks before anything else: resident ID (GB 11643), unified
social credit code (GB 32100) and mainland mobile numbers.

Each check returns the number in its canonical form or raises INVALID_INPUT saying what is
wrong, without echoing the number back. Input is NFKC-normalised first: Chinese input methods
type full-width digits (１２３), which must find the same customer as ASCII ones.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from ebank.core.errors import EbankError

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"[1-9][0-9]{16}[0-9X]")

# GB 32100: 31 characters (no I, O, Z, S, V); weights 3^i mod 31.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
EARLIEST_BIRTH = date(1900, 1, 1)


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str
    birth_date: date
    region: str  # the six-digit administrative division code of registration
    male: bool  # the 17th digit is odd for men


def resident_id(text: str, *, today: date) -> ResidentId:
    """A valid 18-character resident ID (GB 11643-1999), check digit and birth date included."""
    if not isinstance(text, str):
        raise EbankError("INVALID_INPUT", reason="a resident ID number is text")
    number = _plain(text).upper()
    if not _ID_SHAPE.fullmatch(number):
        raise EbankError("INVALID_INPUT", reason="a resident ID is 17 digits and a digit or X")
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != number[17]:
        raise EbankError("INVALID_INPUT", reason="the resident ID's check digit is wrong")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise EbankError(
            "INVALID_INPUT", reason="the resident ID's birth date is not a date"
        ) from None
    if not EARLIEST_BIRTH <= born <= today:
        raise EbankError("INVALID_INPUT", reason="the resident ID's birth date is not a past date")
    return ResidentId(number, born, number[:6], int(number[16]) % 2 == 1)


def credit_code(text: str) -> str:
    """A valid 18-character unified social credit code (GB 32100-2015)."""
    if not isinstance(text, str):
        raise EbankError("INVALID_INPUT", reason="a credit code is text")
    code = _plain(text).upper()
    if not _USCC_SHAPE.fullmatch(code):
        raise EbankError("INVALID_INPUT", reason="a credit code is 18 characters of GB 32100")
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    if _USCC_CHARS[(31 - total % 31) % 31] != code[17]:
        raise EbankError("INVALID_INPUT", reason="the credit code's check character is wrong")
    return code


def mobile(text: str) -> str:
    """A mainland mobile number: 11 digits from 13x to 19x (an optional +86 is dropped)."""
    if not isinstance(text, str):
        raise EbankError("INVALID_INPUT", reason="a mobile number is text")
    number = re.sub(r"[\s-]", "", _plain(text))
    number = number.removeprefix("+86")
    if not _MOBILE.fullmatch(number):
        raise EbankError("INVALID_INPUT", reason="a mobile number is 11 digits starting 13-19")
    return number


def check_digit_for(first17: str) -> str:
    """The resident ID check character for 17 digits (to make valid test and demo numbers)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def credit_check_for(first17: str) -> str:
    """The credit code check character for 17 characters."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def same_name(a: str, b: str) -> bool:
    """A name given for an account against its holder's, as banks compare them: spaces (full
    width ones too) do not count, everything else does."""
    return "".join(a.split()) == "".join(b.split())
