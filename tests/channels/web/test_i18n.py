"""The pages' catalogues: every message id the web channel's code and templates use has a
zh_CN translation, so that the default language never shows English by accident; and the
formatting of amounts and times."""

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from ebank.channels.web import i18n

WEB = Path(i18n.__file__).parent
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def used_message_ids() -> dict[str, str]:
    """Each message id the web channel uses, with one place it is used."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, OPTIONS
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, f"{filename}:{lineno}")
    return found


def test_every_message_the_pages_use_has_a_chinese_translation() -> None:
    zh = i18n.translations("zh_CN")
    untranslated = {
        text: where for text, where in used_message_ids().items() if zh.gettext(text) == text
    }
    assert not untranslated, "add to a .po under locale/zh_CN/LC_MESSAGES:\n" + "\n".join(
        f"{where}: {text!r}" for text, where in sorted(untranslated.items(), key=lambda i: i[1])
    )


def test_the_extraction_finds_the_messages_of_templates_and_code() -> None:
    used = used_message_ids()
    assert "Log in to online banking" in used  # a template's
    assert "Demand deposit" in used  # code's, marked with N_


def test_amounts_show_the_currency_sign_grouping_and_exact_digits() -> None:
    for locale in i18n.LOCALES:
        i18n.use(locale)
        assert i18n.money(123_450) == "¥1,234.50"
        assert i18n.money(-5) == "-¥0.05"
        assert i18n.money(100_000_000_000) == "¥1,000,000,000.00"
    i18n.use(i18n.DEFAULT_LOCALE)


def test_times_are_shown_in_beijing_time() -> None:
    assert i18n.when(datetime(2026, 11, 23, 16, 30, tzinfo=UTC)) == "2026-11-24 00:30"
    assert i18n.when(datetime(2026, 11, 23, 16, 30)) == "2026-11-24 00:30"  # SQLite's naive UTC
    assert i18n.when(None) == ""


def test_the_default_language_is_chinese_and_english_is_the_source() -> None:
    i18n.use("xx")
    assert i18n.current() == "zh_CN"
    assert i18n.gettext("Log in to online banking") != "Log in to online banking"
    i18n.use("en")
    assert i18n.gettext("Log in to online banking") == "Log in to online banking"
    i18n.use(i18n.DEFAULT_LOCALE)


def test_no_message_id_is_translated_two_ways_in_two_catalogues() -> None:
    """The catalogues are merged: a short id ("To") translated differently in two areas would
    show one area's wording on the other's pages."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((i18n.CATALOGUES / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as text:
            for message in read_po(text, locale="zh_CN"):
                if not message.id:
                    continue
                earlier = seen.setdefault(message.id, (po.name, message.string))
                if earlier[1] != message.string:
                    clashes.append(f"{message.id!r}: {earlier} vs {(po.name, message.string)}")
    assert not clashes, "\n".join(clashes)
