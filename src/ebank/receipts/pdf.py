"""The printed receipt (电子回单): one A5-landscape page, as Chinese banks issue them.

Chinese text is set in reportlab's built-in CID font STSong-Light, which PDF readers supply
themselves, so no font file ships with ebank; figures, references and the code are set in
Helvetica. The seal is drawn as vectors. The document is rendered `invariant` (no creation
time, a fixed id): the same receipt always gives the same bytes, as a receipt never changes.
"""

import io
import math

from reportlab.lib import colors
from reportlab.lib.pagesizes import A5, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from ebank.core.channels import NAMES_ZH
from ebank.core.clock import BUSINESS_TZ
from ebank.core.money import display_amount
from ebank.receipts.models import VERIFY_PATH, Receipt

BANK_NAME = "ebank 电子银行"
SONG = "STSong-Light"
LATIN = "Helvetica"
SEAL_RED = colors.Color(0.85, 0.1, 0.1)
PAGE_W, PAGE_H = landscape(A5)
MARGIN = 14 * mm
ROW = 8.5 * mm
LABEL_W = 30 * mm

pdfmetrics.registerFont(UnicodeCIDFont(SONG))


def _fit(
    canvas: Canvas, x: float, y: float, text: str, font: str, size: float, width: float
) -> None:
    """Draw text within `width`: smaller type first, then cut with an ellipsis."""
    while size > 6 and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 0.5
    while len(text) > 1 and pdfmetrics.stringWidth(text, font, size) > width:
        text = text[:-2] + "…"
    canvas.setFont(font, size)
    canvas.drawString(x, y, text)


def _cell(
    canvas: Canvas, x: float, y: float, width: float, label: str, value: str, font: str = SONG
) -> None:
    """A ruled row: the bilingual label in its column, then the value."""
    canvas.rect(x, y, width, ROW)
    canvas.line(x + LABEL_W, y, x + LABEL_W, y + ROW)
    _fit(canvas, x + 2 * mm, y + 3 * mm, label, SONG, 8, LABEL_W - 4 * mm)
    _fit(canvas, x + LABEL_W + 2 * mm, y + 3 * mm, value, font, 9.5, width - LABEL_W - 4 * mm)


def _seal(canvas: Canvas, cx: float, cy: float) -> None:
    """电子回单专用章: a red ring, the bank's name round the top, a star, the seal's name."""
    radius = 17 * mm
    canvas.saveState()
    canvas.setStrokeColor(SEAL_RED)
    canvas.setFillColor(SEAL_RED)
    canvas.setLineWidth(1.6)
    canvas.circle(cx, cy, radius)
    name = BANK_NAME.replace(" ", "").upper()
    spread = math.radians(220)  # the arc the name takes, centred on the top
    canvas.setFont(SONG, 9)
    ring = radius - 4.5 * mm
    for i, char in enumerate(name):
        angle = math.pi / 2 + spread / 2 - spread * (i + 0.5) / len(name)
        canvas.saveState()
        canvas.translate(cx + ring * math.cos(angle), cy + ring * math.sin(angle))
        canvas.rotate(math.degrees(angle) - 90)
        canvas.drawCentredString(0, -1.4 * mm, char)
        canvas.restoreState()
    star = canvas.beginPath()
    for k in range(10):  # a five-pointed star: outer and inner corners in turn
        r = 4 * mm if k % 2 == 0 else 1.6 * mm
        a = math.pi / 2 + k * math.pi / 5
        (star.lineTo if k else star.moveTo)(cx + r * math.cos(a), cy + r * math.sin(a))
    star.close()
    canvas.drawPath(star, stroke=0, fill=1)
    canvas.setFont(SONG, 7.5)
    canvas.drawCentredString(cx, cy - 9 * mm, "电子回单专用章")
    canvas.restoreState()


def render_pdf(receipt: Receipt) -> bytes:
    """The receipt as its owner downloads and prints it; the same bytes every time."""
    view = receipt.view
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(PAGE_W, PAGE_H), invariant=1, pageCompression=1)
    canvas.setTitle(f"电子回单 {view.number}")
    canvas.setAuthor(BANK_NAME)
    canvas.setFillColor(colors.black)
    canvas.setStrokeColor(colors.black)
    canvas.setLineWidth(0.6)
    width = PAGE_W - 2 * MARGIN
    top = PAGE_H - MARGIN

    canvas.setFont(SONG, 11)
    canvas.drawString(MARGIN, top - 4 * mm, BANK_NAME)
    canvas.setFont(SONG, 18)
    canvas.drawCentredString(PAGE_W / 2, top - 6 * mm, "电子回单")
    canvas.setFont(LATIN, 9)
    canvas.drawCentredString(PAGE_W / 2, top - 11 * mm, "Electronic receipt")
    canvas.setFont(SONG, 8)
    canvas.drawRightString(PAGE_W - MARGIN - 40 * mm, top - 15 * mm, "回单编号 No.")
    canvas.setFont(LATIN, 9)
    canvas.drawRightString(PAGE_W - MARGIN, top - 15 * mm, view.number)

    half = width / 2
    y = top - 18 * mm - ROW
    parties = (
        (("付款人户名 Payer", view.payer_name), ("收款人户名 Payee", view.payee_name)),
        (("付款账号 Account", view.payer_account), ("收款账号 Account", view.payee_account)),
        (("付款行 Bank", BANK_NAME), ("收款行 Bank", view.payee_bank)),
    )
    for left, right in parties:
        _cell(canvas, MARGIN, y, half, *left)
        _cell(canvas, MARGIN + half, y, half, *right)
        y -= ROW
    completed = view.completed_at.astimezone(BUSINESS_TZ)
    channel = (
        f"{NAMES_ZH[receipt.channel]} {receipt.channel}"
        if receipt.channel in NAMES_ZH
        else receipt.channel
    )
    rows = (
        ("金额 Amount", display_amount(view.amount, view.currency), LATIN),
        ("大写 In words", view.amount_in_words, SONG),
        ("用途 Purpose", receipt.purpose, SONG),
        ("交易流水号 Reference", receipt.reference, LATIN),
        ("交易时间 Time", f"{completed:%Y-%m-%d %H:%M:%S} (Asia/Shanghai)", LATIN),
        ("交易渠道 Channel", channel, SONG),
        ("验证码 Code", receipt.code, LATIN),
    )
    for label, value, font in rows:
        _cell(canvas, MARGIN, y, width, label, value, font)
        y -= ROW

    canvas.setFont(SONG, 7.5)
    canvas.drawString(
        MARGIN, y + 3 * mm, f"凭验证码在 {VERIFY_PATH} 查验本回单真伪。可重复打印，请勿重复记账。"
    )
    canvas.setFont(LATIN, 7)
    canvas.drawString(
        MARGIN, y - 1 * mm,
        f"Check this receipt with its code at {VERIFY_PATH}?code=...  "
        "It may be printed again: do not book it twice.",
    )  # fmt: skip
    _seal(canvas, PAGE_W - MARGIN - 24 * mm, y + 7 * mm)
    canvas.showPage()
    canvas.save()
    return out.getvalue()
