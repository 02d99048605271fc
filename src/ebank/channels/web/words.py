"""The words a page shows for a stored value (a status, a product, a factor): each area's
module defines its vocabularies here with `define`, and templates say `term("status", v)`.

The message ids are marked with `N_` so that the catalogue test finds them; a value no
vocabulary knows shows as it is stored rather than failing the page.
"""

from ebank.channels.web.i18n import gettext

_vocabularies: dict[str, dict[str, str]] = {}


def N_(message: str) -> str:
    """Mark a message id for the catalogue; translated where it is shown."""
    return message


def define(kind: str, words: dict[str, str]) -> None:
    if kind in _vocabularies and _vocabularies[kind] != words:
        raise ValueError(f"the vocabulary {kind!r} is defined twice")
    _vocabularies[kind] = words


def term(kind: str, value: object) -> str:
    words = _vocabularies.get(kind, {})
    text = str(value)
    return gettext(words[text]) if text in words else text


define("account_status", {
    "active": N_("Active"), "frozen": N_("Frozen"), "suspended": N_("Suspended"),
    "closed": N_("Closed"), "dormant": N_("Dormant"),
})  # fmt: skip
define("product", {"demand": N_("Demand deposit"), "term": N_("Term deposit")})
define("tier", {
    "I": N_("Type I"), "II": N_("Type II"), "III": N_("Type III"), "corporate": N_("Corporate"),
})  # fmt: skip
define("factor", {
    "sms": N_("SMS code"), "token": N_("Token code"), "certificate": N_("Certificate (USB key)"),
    "pin": N_("Transaction PIN"),
})  # fmt: skip
define("card_kind", {"debit": N_("Debit card"), "credit": N_("Credit card")})
define("channel", {
    "online": N_("Online banking"), "mobile": N_("Mobile banking"), "phone": N_("Phone banking"),
    "sms": N_("SMS banking"), "corporate": N_("Corporate online banking"), "counter": N_("Counter"),
})  # fmt: skip
