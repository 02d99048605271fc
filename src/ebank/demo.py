"""The demo bank: the chart of accounts, a few customers with accounts and money, four weeks
of history lived through the services, and three members of staff (a maker, a checker and an
admin), each with a console token. Every person is enrolled at the counter for every channel
and holds every factor: login password, PIN, token and certificate.

Seeding is idempotent: customers are found by their identity number, accounts are opened only
when missing, and money moves only on the accounts a run opened (and the history only on a new
database). So `make demo` can run any number of times on the same database.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyotp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, Engine, select

from ebank.accounts import service as accounts
from ebank.accounts.models import CustomerAccount
from ebank.bills import service as bills
from ebank.cards import service as cards
from ebank.core import audit
from ebank.core.channels import E_CHANNELS
from ebank.core.clock import BUSINESS_TZ, FixedClock, SystemClock, business_date
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.money import parse_minor
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Writer
from ebank.corporate import operators
from ebank.corporate.tables import operators as operators_table
from ebank.customers import identity
from ebank.customers import service as customers
from ebank.customers.models import CustomerView, Kind
from ebank.enrolment import service as enrolment
from ebank.gateway import merchants, orders, settlement, signing
from ebank.gateway.models import OrderRequest, OrderView, Payment
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.ops import staff
from ebank.ops.tables import staff as staff_table
from ebank.payments import service as payments
from ebank.payments.models import Confirmation, TransferRequest
from ebank.security import certificates
from ebank.security import service as security
from ebank.security.tables import credentials
from ebank.shop.app import PRODUCTS, Product


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    name: str
    id_number: str  # resident ID, or the credit code of an enterprise
    mobile: str
    deposit: int  # fen, paid in at the counter

    @property
    def kind(self) -> Kind:
        return Kind.INDIVIDUAL if self.id_number[:17].isdigit() else Kind.ENTERPRISE


def _resident_id(first17: str) -> str:
    return first17 + identity.check_digit_for(first17)


CUSTOMERS = (
    DemoCustomer("张三 Zhang San", _resident_id("11010519880312001"), "13800138001", 5_000_000),
    DemoCustomer("李四 Li Si", _resident_id("31011519920705003"), "13900139002", 1_280_050),
    DemoCustomer("王五 Wang Wu", _resident_id("44030519750101005"), "13700137003", 30_000),
    DemoCustomer(
        "青禾科技有限公司 Qinghe Technology Co.", "91350100M000100Y43", "13600136004", 250_000_000
    ),
)
ENTERPRISE_LEGAL_REP = "赵六 Zhao Liu"
# Demo credentials, printed by `ebank demo`: never use such secrets outside a demo.
DEMO_PASSWORD = "demo2026pass"  # noqa: S105
DEMO_PIN = "147258"
# Console logins: a maker and a checker, so that maker-checker can be tried end to end, and
# an admin who looks after them.
DEMO_STAFF = (
    ("teller1", "柜员一 Teller One", ("teller",)),
    ("super1", "主管一 Supervisor One", ("supervisor",)),
    ("admin1", "管理员一 Admin One", ("admin",)),
)
DEMO_STAFF_PASSWORD = "demo2026staff"  # noqa: S105
# The enterprise's corporate-banking operators: a maker (经办) and a checker (复核).
DEMO_OPERATORS = (
    ("qh.maker", "出纳 Cashier", ("maker",)),
    ("qh.checker", "财务主管 Finance Manager", ("checker",)),
)
# (payer, payee, fen, memo) by customer position: a little history for the statements.
TRANSFERS = (
    (0, 1, 12_300, "午餐 AA / lunch"),
    (3, 2, 850_000, "工资 / salary"),
    (1, 0, 5_000, "还款 / repayment"),
)
ACTOR = "system:demo"


def seed(writer: Writer, vault: Vault) -> dict[int, str]:
    """Seed the bank; the token (TOTP) URI of each customer enrolled by this run."""
    chart = writer.execute(Command(ensure_chart, sql=False))
    seed_billers(writer)
    opened = [_account_of(writer, vault, c) for c in CUSTOMERS]
    held = [account for account, _new in opened]
    tokens = {}
    with writer.engine.connect() as conn:
        enrolled = security.holders_of(conn, "token")
    for account in held:
        if account.customer_id in enrolled:
            continue
        for kind, secret in (("login_password", DEMO_PASSWORD), ("transaction_pin", DEMO_PIN)):
            writer.execute(
                security.set_secret(
                    customer_id=account.customer_id, kind=kind, secret=secret, actor=ACTOR
                )
            )
        tokens[account.customer_id] = writer.execute(
            security.enroll_token(
                vault,
                customer_id=account.customer_id,
                label=f"customer-{account.customer_id}",
                actor=ACTOR,
            )
        )
        if account.tier != "corporate":  # persons use e-banking; operators, corporate banking
            for channel in E_CHANNELS:
                writer.execute(
                    enrolment.enrol_at_counter(
                        customer_id=account.customer_id, channel=channel, actor=ACTOR
                    )
                )
            _certify(writer, vault, account.customer_id)
    # Money moves on the accounts this run opened, never again: the idempotency keys that
    # also guard these moves are forgotten after a few days.
    for c, (account, new) in zip(CUSTOMERS, opened, strict=True):
        if new:
            _move(writer, f"deposit-{c.id_number}", chart["GL-CASH-CNY"],
                  account.ledger_account_id, c.deposit, "现金存入 / cash deposit")  # fmt: skip
    if all(new for _account, new in opened):
        for n, (payer, payee, amount, memo) in enumerate(TRANSFERS):
            _move(writer, f"transfer-{n}", held[payer].ledger_account_id,
                  held[payee].ledger_account_id, amount, memo)  # fmt: skip
    writer.execute(
        Command(lambda tx: audit.record(tx, actor=ACTOR, action="demo.seed", channel="cli"))
    )
    return tokens


def seed_staff(writer: Writer, vault: Vault) -> dict[str, str]:
    """The demo's staff, each with a token; the token (TOTP) URI of each given one by this run.
    A demo login made before staff had tokens gets one now."""
    tokens = {}
    for username, name, roles in DEMO_STAFF:
        with writer.engine.connect() as conn:
            known = staff.find(conn, username)
        if known is None:
            command = staff.add(
                vault, username=username, name=name, roles=roles,
                password=DEMO_STAFF_PASSWORD, actor=ACTOR,
            )  # fmt: skip
        elif not known.has_token:
            command = staff.reset_token(vault, staff_id=known.id, actor=ACTOR, channel="cli")
        else:
            continue
        tokens[username] = writer.execute(command).otpauth_uri
    return tokens


def _enterprise_id(writer: Writer, vault: Vault) -> int:
    """The demo enterprise's customer id (`seed` registers it first)."""
    enterprise = next(c for c in CUSTOMERS if c.kind == Kind.ENTERPRISE)
    with writer.engine.connect() as conn:
        today = business_date(SystemClock().now())
        found = customers.find_by_id_number(
            conn, vault, Kind.ENTERPRISE, enterprise.id_number, today=today
        )
    assert found is not None, "seed() registers the enterprise first"
    return found.id


def seed_operators(writer: Writer, vault: Vault) -> dict[str, str]:
    """The demo enterprise's operators, each with a token; the token (TOTP) URI of each made
    by this run."""
    enterprise_id = _enterprise_id(writer, vault)
    with writer.engine.connect() as conn:
        known = {o.username for o in operators.of_enterprise(conn, enterprise_id)}
    tokens = {}
    for username, name, roles in DEMO_OPERATORS:
        if username not in known:
            added = writer.execute(
                operators.add(
                    vault, customer_id=enterprise_id, username=username, name=name, roles=roles,
                    password=DEMO_PASSWORD, actor=ACTOR,
                )
            )  # fmt: skip
            tokens[username] = added.otpauth_uri
    return tokens


def seed_cards(writer: Writer, vault: Vault) -> None:
    """A debit card on each demo person's first account, so they can pay shops online."""
    for view, held in registered(writer.engine, vault, business_date(SystemClock().now())):
        if view.kind != Kind.INDIVIDUAL.value or not held:
            continue
        with writer.engine.connect() as conn:
            has_card = bool(cards.cards_of(conn, view.id))
        if not has_card:
            writer.execute(
                cards.issue_debit_card(vault, customer_id=view.id, account_number=held[0].number,
                                       actor=ACTOR, channel="cli")
            )  # fmt: skip


# -- the merchant and its example shop ----------------------------------------------------------
DEMO_MERCHANT = ("青禾商城 Qinghe Shop", "retail")
SHOP_KEY = "shop-key.pem"  # beside the gateway's key: the example shop's RSA2 private key
GATEWAY_PUBLIC = "gateway-public.pem"  # the gateway's public key, as the shop keeps it


def seed_merchant(writer: Writer, vault: Vault, key_dir: Path) -> str:
    """The demo enterprise signed up as a merchant, the example shop's key pair in `key_dir`
    registered for it, and the gateway's public key beside it; the merchant number."""
    enterprise_id = _enterprise_id(writer, vault)
    with writer.engine.connect() as conn:
        try:
            merchant: merchants.Merchant | None = merchants.of_enterprise(conn, enterprise_id)
        except EbankError:  # the first run: sign it up
            merchant = None
        settlement_account = accounts.accounts_of(conn, enterprise_id)[0].number
    if merchant is None:
        name, industry = DEMO_MERCHANT
        merchant = writer.execute(
            merchants.onboard(
                customer_id=enterprise_id, name=name, industry=industry,
                settlement_account=settlement_account, fee_plan="B2C-0.25", cycle="t0_eod",
                actor=ACTOR, channel="cli",
            )
        )  # fmt: skip
    shop_key = signing.load_or_create_gateway_key(key_dir / SHOP_KEY)  # an RSA-2048 pair
    with writer.engine.connect() as conn:
        current = merchants.current_key(conn, merchant.id)
    if current is None or current.fingerprint != shop_key.serial:
        writer.execute(
            merchants.add_key(merchant_id=merchant.id, algorithm="RSA2",
                              public_key=shop_key.public_pem, actor=ACTOR, channel="cli")
        )  # fmt: skip
    (key_dir / GATEWAY_PUBLIC).write_text(signing.gateway_key().public_pem)
    return merchant.merchant_no


# -- billers -------------------------------------------------------------------------------------
# (code, 中文名, English name, category): Fuzhou's utilities and a mobile operator, all served
# by the simulated biller (bills.adapters.SimulatedBiller).
DEMO_BILLERS = (
    ("FZPOWER", "国网福州供电公司 (模拟)", "State Grid Fuzhou Power (simulated)", "electricity"),
    ("FZWATER", "福州市自来水有限公司 (模拟)", "Fuzhou Water Supply (simulated)", "water"),
    ("FZGAS", "福州华润燃气有限公司 (模拟)", "China Resources Gas Fuzhou (simulated)", "gas"),
    ("FZCATV", "福建广电网络福州分公司 (模拟)", "Fujian Cable TV Fuzhou (simulated)", "cable_tv"),
    ("CMFJ", "中国移动福建公司 (模拟)", "China Mobile Fujian (simulated)", "phone"),
)


def seed_billers(writer: Writer) -> None:
    """Register the demo's billers that are missing."""
    with writer.engine.connect() as conn:
        known = {biller.code for biller in bills.billers(conn)}
    for code, name_zh, name_en, category in DEMO_BILLERS:
        if code not in known:
            writer.execute(
                bills.register_biller(
                    code=code, name_zh=name_zh, name_en=name_en, category=category, actor=ACTOR,
                    channel="cli",
                )
            )  # fmt: skip


def certificate_key_path(customer_id: int) -> Path:
    """Where the demo keeps a customer's certificate key: in a real bank it never leaves the
    customer's USB key."""
    return get_settings().data_key_path.parent / "demo-keys" / f"customer-{customer_id}.key.pem"


def _certify(writer: Writer, vault: Vault, customer_id: int) -> None:
    """Make the customer's key pair (their "USB key") and have the bank certify it."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(customer_id))]))
        .sign(key, hashes.SHA256())
    )
    writer.execute(
        certificates.issue_certificate(
            vault, customer_id=customer_id, actor=ACTOR,
            csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
        )
    )  # fmt: skip
    path = certificate_key_path(customer_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)


def _account_of(writer: Writer, vault: Vault, c: DemoCustomer) -> tuple[CustomerAccount, bool]:
    """The customer's first account, registering the customer and opening it if need be; and
    whether it was opened now."""
    with writer.engine.connect() as conn:
        today = business_date(SystemClock().now())
        found = customers.find_by_id_number(conn, vault, c.kind, c.id_number, today=today)
        held = accounts.accounts_of(conn, found.id) if found else []
    if held:
        return held[0], False
    if found is None:
        if c.kind == Kind.INDIVIDUAL:
            command = customers.register_individual(
                vault, name=c.name, id_number=c.id_number, mobile=c.mobile, actor=ACTOR
            )
        else:
            command = customers.register_enterprise(
                vault,
                name=c.name,
                credit_code=c.id_number,
                mobile=c.mobile,
                legal_representative=ENTERPRISE_LEGAL_REP,
                actor=ACTOR,
            )
        found = writer.execute(command)
    tier = "I" if c.kind == Kind.INDIVIDUAL else "corporate"
    return writer.execute(accounts.open_account(customer_id=found.id, tier=tier, actor=ACTOR)), True


def _move(writer: Writer, key: str, debit: int, credit: int, amount: int, memo: str) -> None:
    writer.execute(
        ledger.transfer_command(
            debit=debit, credit=credit, amount=amount, memo=memo, scope="demo", key=key
        )
    )


def registered(
    engine: Engine, vault: Vault, today: date
) -> list[tuple[CustomerView, list[CustomerAccount]]]:
    """The demo customers and their accounts as the bank's records show them."""
    found = []
    with engine.connect() as conn:
        for c in CUSTOMERS:
            view = customers.find_by_id_number(conn, vault, c.kind, c.id_number, today=today)
            if view is not None:
                found.append((view, accounts.accounts_of(conn, view.id)))
    return found


@dataclass(frozen=True, slots=True)
class Seeded:
    """What seeding made that is shown once: token (TOTP) URIs of the customers, staff and
    operators given a token by this run, and the example shop's merchant number."""

    customer_tokens: dict[int, str]
    staff_tokens: dict[str, str]
    operator_tokens: dict[str, str]
    merchant_no: str


def seed_all(writer: Writer, vault: Vault, key_dir: Path) -> Seeded:
    """Everything `ebank demo` seeds: customers, staff, the enterprise's operators, cards and
    the example shop (whose keys go to `key_dir`, beside the gateway's). On a new database the
    bank opens `HISTORY_DAYS` ago, on a clock set back, and lives those days through the
    services (`seed_history`): statements, reports and the dashboard have weeks to show. On
    one seeded before, only what is missing is added."""
    if registered(writer.engine, vault, business_date(SystemClock().now())):
        return _seed_all(writer, vault, key_dir)
    clock = FixedClock(opening(SystemClock().now()))
    past = Writer(writer.engine, clock=clock)
    try:
        seeded = _seed_all(past, vault, key_dir)
        seed_history(past, vault, clock)
    finally:
        past.close()
    return seeded


def _seed_all(writer: Writer, vault: Vault, key_dir: Path) -> Seeded:
    customer_tokens = seed(writer, vault)
    staff_tokens = seed_staff(writer, vault)
    operator_tokens = seed_operators(writer, vault)
    seed_cards(writer, vault)
    merchant_no = seed_merchant(writer, vault, key_dir)
    return Seeded(customer_tokens, staff_tokens, operator_tokens, merchant_no)


# -- a few weeks of history ------------------------------------------------------------------
HISTORY_DAYS = 28  # the demo bank opened four weeks ago
SHOP_PORT = 8001  # where `ebank demo` serves the example shop
OPENS_AT = time(9)  # Beijing time, on its first day
SHOP = 3  # the enterprise's position in CUSTOMERS: as a payee, an order at its shop
# A day's business: (minute of the day, payer, payee, yuan, channel), people by their position
# in CUSTOMERS. Transfers vary from day to day (`_yuan`), orders are for one of the shop's teas.
# People shop on Saturdays and Sundays; 王五 phones the bank on Wednesdays. Transfers are
# confirmed with the payer's token (by phone: the PIN), orders paid with the card and PIN. A
# PIN costs an argon2 check (~0.25 s), so there are few, and seeding takes about 20 s.
WEEKDAY = (
    (9 * 60 + 40, 0, 1, 120, "online"),
    (12 * 60 + 20, 1, SHOP, 0, "mobile"),
    (15 * 60 + 5, 2, 0, 30, "mobile"),
    (18 * 60 + 15, 1, 2, 80, "online"),
    (20 * 60 + 30, 0, 2, 60, "mobile"),
)
WEEKEND = ((11 * 60, 0, SHOP, 0, "mobile"), (16 * 60 + 30, 2, SHOP, 0, "online"))
PHONE_DAY = (14 * 60, 2, 1, 40, "phone")  # on Wednesdays
TEAS = tuple(PRODUCTS.values())  # what the example shop sells
MEMOS = ("午餐 AA / lunch", "水果 / fruit", "还款 / repayment", "电影票 / cinema", "房租 / rent")


def opening(now: datetime) -> datetime:
    """When the demo bank opened: nine in the morning, `HISTORY_DAYS` before today."""
    day = business_date(now) - timedelta(days=HISTORY_DAYS)
    return datetime.combine(day, OPENS_AT, BUSINESS_TZ).astimezone(UTC)


def _yuan(base: int, day: date) -> int:
    """`base` yuan varied by the day (never twice the same in a row), in fen."""
    return (base + day.toordinal() * 37 % 90) * 100 + day.day


def seed_history(writer: Writer, vault: Vault, clock: FixedClock) -> None:
    """Every day from the opening to yesterday: transfers between the demo persons, confirmed
    with their tokens, and orders at the demo shop paid with their cards and PIN, each at its
    hour on `clock`; after each day, the end-of-day settlement pays the shop less its fees.
    Nothing is written here but through the services, as customers and the bank would."""
    now, settings = SystemClock().now(), get_settings()
    shop_url = f"http://{settings.host}:{SHOP_PORT}/"  # where `ebank demo` serves the shop
    people = registered(writer.engine, vault, business_date(now))
    merchant = _merchant_of(writer, people[SHOP][0].id)
    with writer.engine.connect() as conn:
        carded = {view.id: cards.cards_of(conn, view.id)[0].id for view, _held in people[:SHOP]}
    day = business_date(clock.now())
    while (day := day + timedelta(days=1)) < business_date(now):
        plan = WEEKEND if day.weekday() >= 5 else WEEKDAY
        for minute, payer, payee, base, channel in plan + ((PHONE_DAY,) * (day.weekday() == 2)):
            clock.set(datetime.combine(day, time(minute // 60, minute % 60), BUSINESS_TZ))
            view, held = people[payer]
            if payee == SHOP:
                tea = TEAS[(day.toordinal() + minute) % len(TEAS)]
                order = _order(writer, vault, merchant, tea, shop_url)
                _pay(writer, vault, order, view.id, carded[view.id], channel)
            else:
                _transfer(writer, vault, view.id, held[0].number, people[payee],
                          _yuan(base, day), channel, day)  # fmt: skip
        after = datetime.combine(day + timedelta(days=1), time(0, 5), BUSINESS_TZ)
        if after < now:
            clock.set(after)
            settlement.end_of_day(writer, business_day=day)


def _merchant_of(writer: Writer, enterprise_id: int) -> merchants.Merchant:
    with writer.engine.connect() as conn:
        return merchants.of_enterprise(conn, enterprise_id)


def _transfer(
    writer: Writer, vault: Vault, customer_id: int, account: str,
    payee: tuple[CustomerView, list[CustomerAccount]], amount: int, channel: str, day: date,
) -> None:  # fmt: skip
    """A transfer confirmed as the channel asks: the token online and on a phone's app, the
    PIN on the phone banking keypad."""
    request = TransferRequest(
        customer_id=customer_id, channel=channel, from_account=account,
        payee_account=payee[1][0].number, payee_name=payee[0].name, amount=amount,
        memo=MEMOS[day.toordinal() % len(MEMOS)],
    )  # fmt: skip
    if channel == "phone":
        confirmed = Confirmation("pin", DEMO_PIN)
    else:
        with writer.engine.connect() as conn:
            code = _token_code(conn, vault, customer_id, writer.clock.now())
        confirmed = Confirmation("token", code)
    key = f"demo-{day}-{writer.clock.now():%H%M}"
    writer.execute(payments.transfer(vault, request, confirmed, idempotency_key=key)).value()


def _order(
    writer: Writer, vault: Vault, merchant: merchants.Merchant, tea: Product, shop_url: str
) -> OrderView:
    """An order the example shop made for one of its teas, as its own orders are made: paid
    at once, notifying the shop on this machine."""
    settings = get_settings()
    private, settings.gateway_private_notify = settings.gateway_private_notify, True
    try:
        return writer.execute(
            orders.create(
                vault,
                OrderRequest(
                    merchant_id=merchant.id, amount=parse_minor(tea.price), mode="instant",
                    out_trade_no=f"TEA{writer.clock.now():%Y%m%d%H%M%S}", subject=tea.name,
                    return_url=f"{shop_url}return", notify_url=f"{shop_url}notify",
                ),
            )
        )  # fmt: skip
    finally:
        settings.gateway_private_notify = private


def _pay(
    writer: Writer, vault: Vault, order: OrderView, buyer: int, card: int, channel: str
) -> None:
    """The buyer pays the order with their debit card and PIN."""
    payment = Payment(
        token=orders.pay_token(vault, order.trade_no), customer_id=buyer, channel=channel,
        card_id=card, pin=DEMO_PIN,
    )  # fmt: skip
    writer.execute(orders.pay(vault, payment)).value()


# -- the demo's tokens, shown on its inbox page ------------------------------------------------
TOKEN_STEP = 30  # seconds a TOTP code lasts


@dataclass(frozen=True, slots=True)
class DemoToken:
    holder: str  # "staff", "operator" or "customer"
    login: str  # what they log in with: username, or the customer's mobile number
    name: str
    code: str  # the code their token shows now
    seconds_left: int


def token_codes(conn: Connection, vault: Vault, now: datetime) -> list[DemoToken]:
    """What the demo people's tokens show at `now`, so that a newcomer can log in to the
    console, the merchant portal and online banking without an authenticator app. Demo only:
    the app offers it only when it serves the demo bank, and only for the demo's own people."""
    left = TOKEN_STEP - int(now.timestamp()) % TOKEN_STEP
    shown: list[DemoToken] = []

    def show(holder: str, login: str, name: str, sealed: str | None, purpose: str) -> None:
        if sealed:
            code = _code(vault, sealed, purpose, now)
            shown.append(DemoToken(holder, login, name, code, left))

    for username, name, _roles in DEMO_STAFF:
        seed = conn.execute(
            select(staff_table.c.token_seed).where(staff_table.c.username == username)
        ).scalar()
        show("staff", username, name, seed, staff.SEED_PURPOSE)
    for username, name, _roles in DEMO_OPERATORS:
        seed = conn.execute(
            select(operators_table.c.token_seed).where(operators_table.c.username == username)
        ).scalar()
        show("operator", username, name, seed, operators.SEED_PURPOSE)
    today = business_date(now)
    for person in CUSTOMERS:
        if person.kind != Kind.INDIVIDUAL:
            continue
        found = customers.find_by_id_number(conn, vault, Kind.INDIVIDUAL, person.id_number,
                                            today=today)  # fmt: skip
        if found is None:
            continue
        show("customer", person.mobile, person.name, _token_seed(conn, found.id),
             security.SEED_PURPOSE)  # fmt: skip
    return shown


def _token_seed(conn: Connection, customer_id: int) -> str | None:
    query = select(credentials.c.secret).where(
        credentials.c.customer_id == customer_id, credentials.c.kind == "token"
    )
    return conn.execute(query).scalar()


def _code(vault: Vault, sealed: str, purpose: str, now: datetime) -> str:
    """What a token shows at `now`."""
    seed = vault.decrypt(sealed, purpose=purpose)
    return pyotp.TOTP(seed).generate_otp(int(now.timestamp()) // TOKEN_STEP)


def _token_code(conn: Connection, vault: Vault, customer_id: int, now: datetime) -> str:
    sealed = _token_seed(conn, customer_id)
    assert sealed is not None, "every demo person holds a token"
    return _code(vault, sealed, security.SEED_PURPOSE, now)
