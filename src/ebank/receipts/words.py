"""Amounts in Chinese capital numerals (大写金额), as banks write them on receipts and cheques.

The rules are the PBOC's 《正确填写票据和结算凭证的基本规定》:
- digits 壹贰叁肆伍陆柒捌玖, units 拾佰仟万亿, then 元角分; "壹拾" is written in full (壹拾元整,
  never 拾元整), so that nothing can be put in front of it;
- "整" after 元 and after 角 when there are no 分; never after 分;
- a zero, or a run of zeros, inside the number is one "零" (1,409.50 壹仟肆佰零玖元伍角整;
  6,007.14 陆仟零柒元壹角肆分); zeros at the end of a four-digit group are not written
  (10,000,000.00 壹仟万元整; 100,010,000.00 壹亿零壹万元整);
- 角 zero with 分 not zero writes "零" after 元 (325.04 叁佰贰拾伍元零肆分).

Where the rules let a writer choose (rule 3: 万位 or 元位 zero with 仟位 or 角位 not zero, "可以只写
一个零字，也可以不写零字"), we write the number as it is read aloud: zeros closing a four-digit
group are silent (1,680.32 壹仟陆佰捌拾元叁角贰分; 107,000.53 壹拾万柒仟元伍角叁分), and a whole
group of zeros between two digits is one 零 (1,000,001,000.00 壹拾亿零壹仟元整). One written
form per amount keeps receipts comparable.

`capital_amount` gives the numerals only. The "人民币" the rules put in front belongs to the
caller, who knows the currency; it must be written right before the numerals with no gap, as
`amount_in_words` in `receipts.models` does.
"""

from ebank.core.errors import EbankError
from ebank.core.money import MAX_MINOR

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("仟", "佰", "拾", "")


def _group(n: int) -> str:
    """0 < n < 10,000: 壹仟零伍, 壹拾, 叁佰: inner zeros as one 零, trailing zeros dropped."""
    out, zero = [], False
    for place, digit in zip(_PLACES, f"{n:04d}", strict=True):
        if digit == "0":
            zero = bool(out)  # a zero after a written digit; leading zeros are nothing
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[int(digit)] + place)
    return "".join(out)


def _integer(n: int) -> str:
    """0 < n: the whole number of yuan, in groups of 万 and 亿 (壹万亿 is 10**12)."""
    for size, unit in ((10**8, "亿"), (10**4, "万")):
        if n >= size:
            high, rest = divmod(n, size)
            # The lower part starts with a zero (1,0001 壹万零壹), unless it is all zeros.
            joint = "零" if 0 < rest < size // 10 else ""
            return _integer(high) + unit + joint + (_integer(rest) if rest else "")
    return _group(n)


def capital_amount(fen: int) -> str:
    """An amount in fen as 大写, without "人民币": 123450 -> 壹仟贰佰叁拾肆元伍角整."""
    if type(fen) is not int or not 0 < fen <= MAX_MINOR:
        raise EbankError("INVALID_AMOUNT", reason="a capital amount is a positive amount in fen")
    yuan, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    words = _integer(yuan) + "元" if yuan else ""
    if jiao:
        words += DIGITS[jiao] + "角"
    elif fen_digit and yuan:
        words += "零"  # 角 zero between 元 and 分
    return words + (DIGITS[fen_digit] + "分" if fen_digit else "整")
