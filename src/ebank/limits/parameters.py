"""The bank's limits, as parameters (defaults from DOMAIN.md §2-§3; staff change them under
maker-checker). Amounts in fen, counted per business day (Asia/Shanghai) or calendar year.
"""

from dataclasses import dataclass

from sqlalchemy import Connection

from ebank.ops import parameters

YUAN = 100
# The factors that can confirm a payment, weakest first.
METHODS = ("pin", "sms", "token", "certificate")

_define = parameters.define
_define("limits.method.sms.daily", 20_000 * YUAN, "SMS one-time code: daily cumulative maximum")
_define("limits.method.token.daily", 1_000_000 * YUAN, "token code: daily cumulative maximum")
_define("limits.method.certificate.daily", 500_000 * YUAN, "USB-key certificate: daily maximum")
_CHANNEL_MAXIMA = {"online": 1_000_000, "mobile": 1_000_000, "phone": 5_000, "sms": 1_000}
for _channel, _yuan in _CHANNEL_MAXIMA.items():
    _define(
        f"limits.channel.{_channel}.daily",
        _yuan * YUAN,
        f"{_channel} banking: the highest daily limit a customer may agree",
    )
    _define(
        f"limits.channel.{_channel}.per_payment",
        _yuan * YUAN,
        f"{_channel} banking: the highest per-payment limit a customer may agree",
    )
_define("limits.self_enrolled.daily", 5_000 * YUAN, "self-enrolled online: daily maximum")
_define("limits.self_enrolled.per_payment", 1_000 * YUAN, "self-enrolled online: per payment")
_define(
    "limits.uncertified.per_payment",
    1_000 * YUAN,
    "internet payment without certificate: per payment (PBOC e-payment guideline No. 1)",
)
_define(
    "limits.uncertified.daily",
    5_000 * YUAN,
    "internet payment without certificate: daily cumulative",
)
_define(
    "limits.certificate_above.daily",
    50_000 * YUAN,
    "an individual's transfers to others above this in a day need a certificate",
)
_define(
    "limits.large_warning.individual.daily",
    300_000 * YUAN,
    "an individual confirms a warning before paying others more than this in a day",
)
_define(
    "limits.large_warning.enterprise.daily",
    1_000_000 * YUAN,
    "an enterprise confirms a warning before paying others more than this in a day",
)
_TIERS = {"II": (10_000, 200_000), "III": (2_000, 50_000)}
for _tier, (_day, _year) in _TIERS.items():
    _define(f"limits.tier.{_tier}.daily", _day * YUAN, f"Type {_tier} account: daily outflow")
    _define(f"limits.tier.{_tier}.yearly", _year * YUAN, f"Type {_tier} account: yearly outflow")


@dataclass(frozen=True, slots=True)
class Limits:
    """The bank's limits as they stand, read once per decision."""

    values: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.values[f"limits.{name}"]

    def channel_maximum(self, channel: str, assurance: str) -> tuple[int, int]:
        """(daily, per payment) a customer may agree on a channel, by how they enrolled."""
        if assurance == "self":
            return self["self_enrolled.daily"], self["self_enrolled.per_payment"]
        return self[f"channel.{channel}.daily"], self[f"channel.{channel}.per_payment"]


def load(conn: Connection) -> Limits:
    return Limits(parameters.values(conn, "limits."))
