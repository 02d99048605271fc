"""docs/risk.md documents every field a rule may read and every default rule as it is."""

from pathlib import Path

from ebank.risk.aggregates import FIELDS
from ebank.risk.rules import DEFAULT_RULES

DOC = (Path(__file__).parents[2] / "docs" / "risk.md").read_text()


def test_every_field_is_documented() -> None:
    assert [name for name in FIELDS if f"`{name}`" not in DOC] == []


def test_every_default_rule_is_documented_with_its_condition_and_score() -> None:
    for rule in DEFAULT_RULES:
        forced = f", {rule.outcome}" if rule.outcome else ""
        assert f"| `{rule.code}` | `{rule.expression}` | {rule.score}{forced} |" in DOC
