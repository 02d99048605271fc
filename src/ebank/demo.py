"""The demo bank: the chart of accounts, a few customers with accounts and money, a little
history, and three members of staff (a maker, a checker and an admin), each with a console
token. Every person is enrolled at the counter for every channel and holds every factor:
login password, PIN, token and certificate.

Seeding is idempotent: customers are found by their identity number, accounts are opened only
when missing, and money moves under fixed idempotency keys. So `make demo` can run any number
of times on the same database.
"""

from dataclasses import dataclass
from datetime import date, datetime
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
from ebank.core.clock import SystemClock, business_date
from ebank.core.crypto import Vault
from ebank.core.errors import EbankError
from ebank.core.settings import get_settings
from ebank.core.writer import Command, Writer
from ebank.corporate import operators
from ebank.corporate.tables import operators as operators_table
from ebank.customers import identity
from ebank.customers import service as customers
from ebank.customers.models import CustomerView, Kind
from ebank.enrolment import service as enrolment
from ebank.gateway import merchants, signing
from ebank.ledger import service as ledger
from ebank.ledger.chart import ensure_chart
from ebank.ops import staff
from ebank.ops.tables import staff as staff_table
from ebank.security import certificates
from ebank.security import service as security
from ebank.security.tables import credentials


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
    held = [_account_of(writer, vault, c) for c in CUSTOMERS]
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
    for c, account in zip(CUSTOMERS, held, strict=True):
        _move(
            writer,
            f"deposit-{c.id_number}",
            chart["GL-CASH-CNY"],
            account.ledger_account_id,
            c.deposit,
            "现金存入 / cash deposit",
        )
    for n, (payer, payee, amount, memo) in enumerate(TRANSFERS):
        _move(
            writer,
            f"transfer-{n}",
            held[payer].ledger_account_id,
            held[payee].ledger_account_id,
            amount,
            memo,
        )
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


def _account_of(writer: Writer, vault: Vault, c: DemoCustomer) -> CustomerAccount:
    """The customer's first account, registering the customer and opening it if need be."""
    with writer.engine.connect() as conn:
        today = business_date(SystemClock().now())
        found = customers.find_by_id_number(conn, vault, c.kind, c.id_number, today=today)
        held = accounts.accounts_of(conn, found.id) if found else []
    if held:
        return held[0]
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
    return writer.execute(accounts.open_account(customer_id=found.id, tier=tier, actor=ACTOR))


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
    the example shop (whose keys go to `key_dir`, beside the gateway's)."""
    customer_tokens = seed(writer, vault)
    staff_tokens = seed_staff(writer, vault)
    operator_tokens = seed_operators(writer, vault)
    seed_cards(writer, vault)
    merchant_no = seed_merchant(writer, vault, key_dir)
    return Seeded(customer_tokens, staff_tokens, operator_tokens, merchant_no)


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
    step, left = divmod(int(now.timestamp()), TOKEN_STEP)
    shown: list[DemoToken] = []

    def show(holder: str, login: str, name: str, sealed: str | None, purpose: str) -> None:
        if sealed:
            code = pyotp.TOTP(vault.decrypt(sealed, purpose=purpose)).generate_otp(step)
            shown.append(DemoToken(holder, login, name, code, TOKEN_STEP - left))

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
        seed = conn.execute(
            select(credentials.c.secret).where(
                credentials.c.customer_id == found.id, credentials.c.kind == "token"
            )
        ).scalar()
        show("customer", person.mobile, person.name, seed, security.SEED_PURPOSE)
    return shown
