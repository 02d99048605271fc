"""`ebank bench <scenario>`: each scenario ends with one `RESULT <scenario> key=value ...` line."""

from types import ModuleType

from ebank.bench import gateway, gateway_floor, ledger, payments, risk, storage

SCENARIOS: dict[str, ModuleType] = {
    "ledger": ledger,
    "payments": payments,
    "risk": risk,
    "gateway": gateway,
    "gateway-floor": gateway_floor,
    "storage": storage,
}
