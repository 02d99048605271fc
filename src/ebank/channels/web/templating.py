"""The one Jinja2 environment every page renders with.

Autoescape is on for everything: names come from customers and merchants, and a customer
called `<script>` must show as text. Message ids go through the current request's language
(`i18n`); amounts and times have filters of their own so that no page formats them by hand.
"""

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from ebank.channels.web import i18n, words

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
)
_env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
_env.filters["money"] = i18n.money
_env.filters["when"] = i18n.when
_env.globals["html_lang"] = i18n.html_lang
_env.globals["current_locale"] = i18n.current
_env.globals["term"] = words.term

templates = Jinja2Templates(env=_env)
