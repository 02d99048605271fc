"""Files the bank hands out that people open in a spreadsheet (CSV)."""


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (CSV injection): what a
    customer or merchant typed is prefixed with an apostrophe when it starts like one."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
