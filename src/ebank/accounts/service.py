"""Opening accounts for customers, finding them, and the staff actions on them.

An account is a ledger account (which holds its money and status) plus a row saying whose it
is, which product and which tier. The tier rules enforced here: persons hold Type I, II or III
accounts, at most one open Type I each; enterprises hold corporate accounts; a Type III account
never holds more than ¥2,000 (the ledger's balance ceiling enforces it on every credit).
Freezing, suspending, reinstating and closing are staff actions under maker-checker.
"""

import calendar
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from ebank.accounts.models import TYPE_III_CEILING, CustomerAccount, Product, Tier
from ebank.accounts.tables import customer_accounts
from ebank.core import audit
from ebank.core.clock import business_date
from ebank.core.errors import EbankError
from ebank.core.money import digits
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Tx
from ebank.customers import service as customers
from ebank.ledger import service as ledger
from ebank.ledger.service import latest_balance
from ebank.ledger.tables import accounts as ledger_accounts
from ebank.ops import approvals

TERM_MONTHS = (3, 6, 12, 24, 36, 60)
_PERSON_TIERS = {Tier.I, Tier.II, Tier.III}


def luhn_digit(payload: str) -> str:
    """The check digit that makes `payload` + digit pass the Luhn (mod 10) test."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """ASCII digits only: `str.isdigit` would let "²" or "１" through to `int`."""
    return (
        len(number) > 1
        and number.isascii()
        and number.isdigit()
        and luhn_digit(number[:-1]) == number[-1]
    )


def account_number(sequence: int) -> str:
    """19 digits: the bank's prefix, the account's sequence, a Luhn check digit."""
    payload = f"{get_settings().account_number_prefix}{sequence:011d}"
    return payload + luhn_digit(payload)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def open_account(
    *, customer_id: int, product: str = "demand", tier: str, currency: str = "CNY",
    term_months: int | None = None, rate_bp: int | None = None, actor: str,
    channel: str = "counter",
) -> Command[CustomerAccount]:  # fmt: skip
    """Open a deposit account for a customer, backed by a new ledger account."""

    def run(tx: Tx) -> CustomerAccount:
        try:
            tier_, product_ = Tier(tier), Product(product)
        except ValueError:
            raise EbankError("INVALID_INPUT", reason="unknown product or tier") from None
        digits(currency)
        # The customer's row lock serialises openings, so two writers cannot both find
        # "no Type I account yet" (SQLite's writer holds the database lock anyway).
        holder = customers.holder(tx.conn, customer_id, lock=True)
        person = holder.kind == "individual"
        if person != (tier_ in _PERSON_TIERS):
            raise EbankError(
                "INVALID_INPUT", reason="persons hold Type I-III, enterprises corporate"
            )
        if tier_ == Tier.I and product_ == Product.DEMAND and _open_type_one(tx.conn, customer_id):
            raise EbankError("TYPE_I_EXISTS")
        maturity = None
        if product_ == Product.TERM:
            if tier_ not in (Tier.I, Tier.CORPORATE):
                raise EbankError("INVALID_INPUT", reason="term deposits sit under Type I accounts")
            if term_months not in TERM_MONTHS:
                raise EbankError("INVALID_INPUT", reason=f"a term is one of {TERM_MONTHS} months")
            if type(rate_bp) is not int or not 0 <= rate_bp <= 10_000:
                raise EbankError("INVALID_INPUT", reason="a rate is 0-10000 basis points")
            maturity = _add_months(business_date(tx.now), term_months)
        elif term_months is not None or rate_bp is not None:
            raise EbankError("INVALID_INPUT", reason="only term deposits have a term and rate")

        row_id = tx.new_id("customer_accounts")
        number = account_number(row_id)
        backing = ledger.open_account(
            tx, code=number, name=holder.name, currency=currency,
            ceiling=TYPE_III_CEILING if tier_ == Tier.III else None,
        )  # fmt: skip
        tx.conn.execute(
            customer_accounts.insert().values(
                id=row_id,
                customer_id=customer_id,
                ledger_account_id=backing.id,
                product=product_.value,
                tier=tier_.value,
                maturity_date=maturity,
                rate_bp=rate_bp if product_ == Product.TERM else None,
                opened_at=tx.now,
            )
        )
        audit.record(
            tx, actor=actor, action="account.open", subject=f"account:{number}",
            channel=channel, detail={"customer": customer_id, "product": product_.value,
                                     "tier": tier_.value},
        )  # fmt: skip
        return get_account(tx.conn, number=number)

    return Command(run)


def _open_type_one(conn: Connection, customer_id: int) -> bool:
    found = conn.execute(
        select(func.count())
        .select_from(customer_accounts)
        .join(ledger_accounts, ledger_accounts.c.id == customer_accounts.c.ledger_account_id)
        .where(
            customer_accounts.c.customer_id == customer_id,
            customer_accounts.c.tier == Tier.I.value,
            customer_accounts.c.product == Product.DEMAND.value,  # term deposits sit under it
            ledger_accounts.c.status != "closed",
        )
    ).scalar_one()
    return bool(found)


_COLUMNS = (
    customer_accounts.c.id, customer_accounts.c.customer_id, ledger_accounts.c.code,
    customer_accounts.c.ledger_account_id, customer_accounts.c.product, customer_accounts.c.tier,
    ledger_accounts.c.currency, ledger_accounts.c.status, latest_balance(ledger_accounts.c.id),
    ledger_accounts.c.held, ledger_accounts.c.credit_line, customer_accounts.c.maturity_date,
    customer_accounts.c.rate_bp,
)  # fmt: skip


def _view(row: Any) -> CustomerAccount:
    (acc_id, customer_id, number, ledger_id, product, tier, currency, status, balance, held,
     credit_line, maturity, rate_bp) = row  # fmt: skip
    return CustomerAccount(
        acc_id, customer_id, number, ledger_id, product, tier, currency, status, balance,
        balance - held + credit_line, maturity, rate_bp,
    )  # fmt: skip


def _select() -> Any:
    return select(*_COLUMNS).join(
        ledger_accounts, ledger_accounts.c.id == customer_accounts.c.ledger_account_id
    )


# The look-ups every payment makes, built once (building costs more than running them).
_BY_NUMBER = _select().where(ledger_accounts.c.code == bindparam("number"))
_BY_NUMBER_OF = _BY_NUMBER.where(customer_accounts.c.customer_id == bindparam("customer_id"))
_BY_ID = _select().where(customer_accounts.c.id == bindparam("id"))
_BY_LEDGER_ID = _select().where(customer_accounts.c.ledger_account_id == bindparam("id"))


def get_account(
    conn: Connection, *, number: str, customer_id: int | None = None
) -> CustomerAccount:
    """An account by its number; given `customer_id`, only that customer's (someone else's
    answers ACCOUNT_NOT_FOUND, as none does)."""
    if not isinstance(number, str):
        raise EbankError("INVALID_INPUT", reason="an account number is text")
    if customer_id is None:
        row = conn.execute(_BY_NUMBER, {"number": number.strip()}).first()
    else:
        row = conn.execute(
            _BY_NUMBER_OF, {"number": number.strip(), "customer_id": customer_id}
        ).first()
    if row is None:
        raise EbankError("ACCOUNT_NOT_FOUND")
    return _view(row)


def account_by_id(conn: Connection, account_id: int) -> CustomerAccount:
    row = conn.execute(_BY_ID, {"id": account_id}).first()
    if row is None:
        raise EbankError("ACCOUNT_NOT_FOUND")
    return _view(row)


def account_by_ledger_id(conn: Connection, ledger_account_id: int) -> CustomerAccount:
    """The customer account a ledger account books (a debit card's, for instance)."""
    row = conn.execute(_BY_LEDGER_ID, {"id": ledger_account_id}).first()
    if row is None:
        raise EbankError("ACCOUNT_NOT_FOUND")
    return _view(row)


def accounts_of(conn: Connection, customer_id: int) -> list[CustomerAccount]:
    """A customer's accounts, oldest first."""
    rows = conn.execute(
        _select().where(customer_accounts.c.customer_id == customer_id)
        .order_by(customer_accounts.c.id)
    )  # fmt: skip
    return [_view(row) for row in rows]


# -- staff actions under maker-checker --------------------------------------------------------
# action -> (status it sets, status it must find or None for any the ledger allows)
STATUS_ACTIONS = {
    "account.freeze": ("frozen", None),
    "account.unfreeze": ("active", "frozen"),
    "account.suspend": ("suspended", None),
    "account.reinstate": ("active", "suspended"),
    "account.close": ("closed", None),
}


def _subject(tx: Tx, params: dict[str, Any]) -> str:
    if set(params) != {"account"}:
        raise EbankError("INVALID_INPUT", reason="an account action names one account")
    return f"account:{get_account(tx.conn, number=params['account']).number}"


def _status_action(new_status: str, required: str | None) -> approvals.Handler:
    def run(tx: Tx, params: dict[str, Any], checker: str) -> str:
        account = get_account(tx.conn, number=params["account"])
        if required is not None and account.status != required:
            raise EbankError(
                "INVALID_STATUS_CHANGE", from_status=account.status, to_status=new_status
            )
        return ledger.set_status(tx, account_id=account.ledger_account_id, status=new_status).status

    return run


for _action, (_status, _required) in STATUS_ACTIONS.items():
    approvals.register(_action, _status_action(_status, _required), subject=_subject)
