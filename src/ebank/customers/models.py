"""Customer value types: what callers see, with numbers masked."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Kind(StrEnum):
    INDIVIDUAL = "individual"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: int
    kind: str
    name: str
    id_number_masked: str
    mobile_masked: str
    legal_representative: str | None
    created_at: datetime
