"""The pages' languages: zh-CN by default, English on request (Babel message catalogues).

Templates and page code write English message ids (`_("Balance")`); the zh_CN catalogue under
`locale/zh_CN/LC_MESSAGES/` translates them, one `.po` file per area of the site so that each
can grow on its own. The catalogues are read from their `.po` text when first used: there is no
compiled `.mo` to forget to rebuild. tests/channels/web/test_i18n.py extracts every message id
from the code and fails on any the zh_CN catalogue lacks.

The language of a request comes from its `ebank_lang` cookie, set by the switch on every page.
Amounts are formatted per locale with the currency's exact digits; times are shown in the
business zone (Asia/Shanghai), whatever the browser's.
"""

import gettext as gettext_module
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from starlette.requests import HTTPConnection

from ebank.core.clock import BUSINESS_TZ, as_utc
from ebank.core.money import digits

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
SOURCE_LOCALE = "en"  # the language of the message ids: it needs no catalogue
COOKIE = "ebank_lang"
CATALOGUES = Path(__file__).parent / "locale"
SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$"}

_locale: ContextVar[str] = ContextVar("ebank_web_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    """Every catalogue of `locale`, merged; the source language translates to itself."""
    if locale == SOURCE_LOCALE:
        return gettext_module.NullTranslations()
    merged = Catalog(locale=locale)
    for po in sorted((CATALOGUES / locale / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as text:
            for message in read_po(text, locale=locale):
                if message.id:
                    merged[message.id] = message
    compiled = BytesIO()
    write_mo(compiled, merged)
    compiled.seek(0)
    return Translations(compiled)


def locale_of(connection: HTTPConnection) -> str:
    chosen = connection.cookies.get(COOKIE, "")
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


def use(locale: str) -> None:
    """Render what follows in `locale` (the current request's task only)."""
    _locale.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def current() -> str:
    return _locale.get()


def language() -> str:
    """The language as domain errors name it (`EbankError.message`): zh or en."""
    return "zh" if current().startswith("zh") else "en"


def html_lang() -> str:
    return current().replace("_", "-")


def gettext(message: str) -> str:
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


_ = gettext


def money(minor: int, currency: str = "CNY") -> str:
    """¥1,234.50: the currency's symbol and exact digits, grouped as the locale groups."""
    places = digits(currency)
    value = Decimal(minor).scaleb(-places)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    text = format_decimal(abs(value), format=pattern, locale=current())
    symbol = SYMBOLS.get(currency, currency + " ")
    return f"{'-' if minor < 0 else ''}{symbol}{text}"


def when(instant: datetime | None, with_seconds: bool = False) -> str:
    """A stored (UTC) time as the bank's customers read it: Beijing time."""
    if instant is None:
        return ""
    shown = as_utc(instant).astimezone(BUSINESS_TZ)
    return shown.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
