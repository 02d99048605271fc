"""The `ebank` command: serve, demo, db upgrade, staff add, worker, eod, audit verify, bench."""

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

from ebank.core.money import format_minor
from ebank.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from ebank.core.writer import Writer
    from ebank.ops.staff import Enrolled

# `ebank staff <act> --username u`: (what it does, what it says once done)
STAFF_ACTS = {
    "disable": ("disable a staff login and end its sessions", "disabled; its sessions ended"),
    "enable": ("enable a disabled staff login", "enabled"),
    "unlock": ("clear a staff login's failures and locks", "unlocked"),
    "reset-token": (
        "give a staff login a new token (TOTP), printed once",
        "has a new token; the old one stopped working",
    ),
}


def prepare_database(settings: Settings) -> None:
    """Migrate to the latest schema and make sure the bank's own accounts exist."""
    from ebank.core import audit
    from ebank.core.db import make_engine
    from ebank.core.writer import Command, Tx, Writer
    from ebank.gateway import fees
    from ebank.ledger.chart import ensure_chart
    from ebank.migrations import upgrade

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    writer = Writer(engine)

    def chart_of_accounts(tx: Tx) -> None:
        chart = ensure_chart(tx)
        audit.record(tx, actor="system", action="db.upgrade", channel="cli",
                     detail={"internal_accounts": sorted(chart)})  # fmt: skip

    try:
        writer.execute(Command(chart_of_accounts, sql=False))
        writer.execute(Command(fees.ensure_plans))  # the gateway's default fee plans
    finally:
        writer.close()
        engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = get_settings()
    prepare_database(settings)
    print(f"database is at the latest schema: {_safe_url(settings.database_url)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ebank.app import create_app
    from ebank.core.logging import configure_logging

    settings = get_settings()
    if args.demo:
        settings = settings.model_copy(update={"demo": True})
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's own lines go through our JSON handler too
        access_log=False,  # the app logs every request itself, as JSON with its request id
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ebank import demo
    from ebank.core.clock import SystemClock, business_date
    from ebank.core.crypto import vault_for
    from ebank.core.db import make_engine
    from ebank.core.writer import Writer

    settings = get_settings()
    prepare_database(settings)
    vault = vault_for(settings)
    engine = make_engine(settings.database_url)
    writer = Writer(engine)
    try:
        seeded = demo.seed_all(writer, vault, settings.gateway_key_path.parent)
    finally:
        writer.close()
    print(f"\nebank demo bank on {_safe_url(settings.database_url)}\n")
    print(f"  {'name':<40} {'identity number':<19} {'mobile':<12} {'account':<20} {'tier':<9}"
          f" {'balance (CNY)':>14}")  # fmt: skip
    today = business_date(SystemClock().now())
    for customer, held in demo.registered(engine, vault, today):
        for acc in held:
            print(f"  {customer.name:<40} {customer.id_number_masked:<19} "
                  f"{customer.mobile_masked:<12} {acc.number:<20} {acc.tier:<9} "
                  f"{format_minor(acc.balance, acc.currency):>14}")  # fmt: skip
    engine.dispose()
    print(f"\n  every demo customer: login password {demo.DEMO_PASSWORD!r}, "
          f"transaction PIN {demo.DEMO_PIN!r}")  # fmt: skip
    tokens, merchant_no = seeded.customer_tokens, seeded.merchant_no
    staff_tokens, operator_tokens = seeded.staff_tokens, seeded.operator_tokens
    if tokens:
        print("  token (TOTP) enrolment, for an authenticator app (shown once, at seeding):")
        for customer_id, uri in tokens.items():
            print(f"    customer {customer_id}: {uri}")
            key = demo.certificate_key_path(customer_id)
            if key.exists():
                print(f"      certificate key (the USB key): {key}")
    else:
        print("  tokens were enrolled on the first run (their URIs were printed then)")
    print("  persons are enrolled for online, mobile, phone and SMS banking at the counter")
    print("  SMS codes and alerts: GET /api/v1/demo/sms (or `ebank sms-inbox`)")
    mobiles = ", ".join(c.mobile for c in demo.CUSTOMERS if c.kind == "individual")
    print(f"  persons log in with POST /api/v1/auth/login, login = mobile ({mobiles}) or "
          "resident ID,")  # fmt: skip
    print("  then POST /api/v1/auth/login/verify with a token code (no token at hand: POST")
    print("  /api/v1/auth/login/sms first, then the SMS code);")
    print("  a phone's first mobile login binds it: X-Device-ID and device_name, then the SMS code")
    print(f"  staff log in with POST /api/v1/staff/auth/login, password "
          f"{demo.DEMO_STAFF_PASSWORD!r},")  # fmt: skip
    print("  then POST /api/v1/staff/auth/login/verify with a code of their token (TOTP):")
    for username, _, roles in demo.DEMO_STAFF:
        uri = staff_tokens.get(username, "token enrolled on the first run (URI printed then)")
        print(f"    {username} ({', '.join(roles)}): {uri}")
    enterprise = next(c for c in demo.CUSTOMERS if c.kind == "enterprise")
    print(f"  the enterprise's operators log in with POST /api/v1/corporate/auth/login, "
          f"credit_code {enterprise.id_number},")  # fmt: skip
    print(f"  password {demo.DEMO_PASSWORD!r}, then .../login/verify with their token's code:")
    for username, _, roles in demo.DEMO_OPERATORS:
        uri = operator_tokens.get(username, "token enrolled on the first run (URI printed then)")
        print(f"    {username} ({', '.join(roles)}): {uri}")
    if args.no_serve:
        return 0
    host, port = args.host or settings.host, args.port or settings.port
    house = None
    if not settings.clearing_url:
        # The process's settings, which the services read, learn where the house is.
        house, settings.clearing_url = _start_clearing_house(f"http://{host}:{port}")
    if settings.clearing_url:
        print(f"  inter-bank transfers clear through a clearing house: {settings.clearing_url}")
        print("    pay 6222020000000002 韩梅梅 at the simulated bank, payee_bank 999200000025")
    settings.gateway_private_notify = True  # the example shop listens on this machine
    shop = _start_shop(merchant_no, f"http://{host}:{port}", host)
    if shop is not None:
        print(f"  the example shop (merchant {merchant_no}): http://{host}:{demo.SHOP_PORT}/ ; "
              "buy, then pay as 张三 (login 13800138001)")  # fmt: skip
    print(f"\nserving on http://{host}:{port}/  (API docs: http://{host}:{port}/api/v1/docs)\n")
    args.demo = True
    try:
        return cmd_serve(args)
    finally:
        for process in (house, shop):
            if process is not None:
                process.terminate()
                process.wait(10)


def _start_shop(merchant_no: str, bank_url: str, host: str) -> subprocess.Popen[str] | None:
    """The example shop (`ebank shop`) in a process of its own, paying through the demo
    bank's gateway as merchant `merchant_no`; None if it could not start."""
    from ebank import demo

    env = {**os.environ, "EBANK_SHOP_MERCHANT_NO": merchant_no,
           "EBANK_SHOP_GATEWAY_URL": bank_url}  # fmt: skip
    shop = subprocess.Popen(  # noqa: S603 (our own command, no shell)
        [sys.executable, "-m", "ebank.cli", "shop", "--host", host, "--port", str(demo.SHOP_PORT)],
        env=env, text=True,
    )  # fmt: skip
    time.sleep(0.5)
    if shop.poll() is not None:
        print("  (the example shop did not start: is port 8001 taken?)")
        return None
    return shop


def _start_clearing_house(bank_url: str) -> tuple[subprocess.Popen[str] | None, str | None]:
    """The demo's clearing house with its simulated bank, in a process of its own on a free
    loopback port (the process and its URL), so that inter-bank transfers run for real."""
    house = subprocess.Popen(  # noqa: S603 (our own command, no shell)
        [sys.executable, "-m", "ebank.cli", "clearing-house", "--port", "0",
         "--bank-url", bank_url],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert house.stdout is not None
    line = house.stdout.readline().strip()
    if not line.startswith("clearing house listening on "):
        house.terminate()
        print("  (the clearing house did not start: inter-bank transfers are unavailable)")
        return None, None
    return house, line.removeprefix("clearing house listening on ")


@contextmanager
def _writer_on_latest_schema() -> Iterator["Writer"]:
    """A writer on the configured database, migrated first; closed afterwards."""
    from ebank.core.db import make_engine
    from ebank.core.writer import Writer
    from ebank.migrations import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    writer = Writer(engine)
    try:
        yield writer
    finally:
        writer.close()
        engine.dispose()


def _print_token(enrolled: "Enrolled") -> None:
    """A new staff token, for the authenticator app: shown this once."""
    from urllib.parse import parse_qs, urlparse

    secret = parse_qs(urlparse(enrolled.otpauth_uri).query)["secret"][0]
    print(f"  token (TOTP) for the authenticator app, shown once: {enrolled.otpauth_uri}")
    print(f"  (or type in its secret: {secret})")


def cmd_staff_add(args: argparse.Namespace) -> int:
    """Give someone a console login; the password comes from EBANK_STAFF_PASSWORD or a prompt.
    Prints the login's token (TOTP) once."""
    import getpass
    import os

    from ebank.core.crypto import vault_for
    from ebank.core.errors import EbankError
    from ebank.ops import staff

    password = os.environ.get("EBANK_STAFF_PASSWORD")
    if password is None:
        password = getpass.getpass("password for the new staff login: ")
        if getpass.getpass("the same again: ") != password:
            print("the two passwords differ; nothing was done", file=sys.stderr)
            return 1
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        operator = str(os.getuid())
    command = staff.add(
        vault_for(get_settings()), username=args.username, name=args.name,
        roles=tuple(args.role), password=password, actor=f"operator:{operator}",
    )  # fmt: skip
    try:
        with _writer_on_latest_schema() as writer:
            added = writer.execute(command)
    except EbankError as exc:
        print(f"refused: {exc.message('en')}", file=sys.stderr)
        return 1
    member = added.member
    print(f"staff member {member.id} {member.username!r} ({member.name}), roles "
          f"{', '.join(member.roles)}: logs in with POST /api/v1/staff/auth/login, then "
          "/api/v1/staff/auth/login/verify with a code of this token")  # fmt: skip
    _print_token(added)
    return 0


def cmd_staff_admin(args: argparse.Namespace) -> int:
    """Disable, enable, unlock a staff login or give it a new token, as the actor "cli"."""
    from ebank.core.crypto import vault_for
    from ebank.core.errors import EbankError
    from ebank.ops import staff

    act = args.staff_command
    try:
        with _writer_on_latest_schema() as writer:
            with writer.engine.connect() as conn:
                found = staff.find(conn, args.username)
            if found is None:
                raise EbankError("STAFF_NOT_FOUND")
            who = {"staff_id": found.id, "actor": "cli", "channel": "cli"}
            if act == "reset-token":
                enrolled = writer.execute(staff.reset_token(vault_for(get_settings()), **who))
            else:
                change = {"disable": staff.disable, "enable": staff.enable, "unlock": staff.unlock}
                writer.execute(change[act](**who))
    except EbankError as exc:
        print(f"refused: {exc.message('en')}", file=sys.stderr)
        return 1
    print(f"staff login {found.username!r}: {STAFF_ACTS[act][1]}")
    if act == "reset-token":
        _print_token(enrolled)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the background jobs (expired holds every minute; spent keys and security rows hourly) and
    the SMS delivery loop, and e-mail delivery when an SMTP server is set (EBANK_SMTP_HOST),
    and inter-bank transfers and their status queries when a clearing house is set, and
    bill payments to their billers, and the gateway's notices to merchants."""
    from ebank.bills.service import start_bill_delivery
    from ebank.clearing.service import start as start_clearing
    from ebank.core.crypto import vault_for
    from ebank.core.logging import configure_logging
    from ebank.gateway.notices import start_notice_delivery
    from ebank.jobs import huey, process_writer
    from ebank.notify.email import start_email_delivery
    from ebank.notify.service import start_delivery

    settings = get_settings()
    configure_logging(settings.log_level)
    vault = vault_for(settings)
    stop_email = start_email_delivery(process_writer(), vault, settings)  # checks EBANK_SMTP_*
    stop_sms = start_delivery(process_writer(), vault)
    stop_bills = start_bill_delivery(process_writer(), vault)
    stop_notices = start_notice_delivery(process_writer())
    stop_clearing = start_clearing(process_writer(), vault, settings)
    try:
        huey.create_consumer(workers=args.workers, periodic=True).run()
    finally:
        if stop_clearing is not None:
            stop_clearing()
        if stop_email is not None:
            stop_email()
        stop_notices()
        stop_bills()
        stop_sms()
    return 0


def cmd_eod(args: argparse.Namespace) -> int:
    """The end-of-day run (the worker also runs it hourly): settle merchants' takings for a
    business day, by default the one that ended last. Exit 1 when a settlement was carried
    over (the merchant's account could not take it)."""
    from ebank.core.clock import SystemClock
    from ebank.gateway.settlement import day_ended, end_of_day

    day = args.day or day_ended(SystemClock().now())
    with _writer_on_latest_schema() as writer:
        done = end_of_day(writer, business_day=day)
    print(f"end of business day {day}: {len(done.settled)} merchant settlements")
    for c in done.carried:
        print(f"  carried over: merchant {c.merchant_no}, {c.items} movements, "
              f"net {format_minor(c.net)}: {c.code}")  # fmt: skip
    return 1 if done.carried else 0


def cmd_clearing_house(args: argparse.Namespace) -> int:
    """Run the clearing house with its simulated bank on loopback (see ebank.clearing.house)."""
    from ebank.clearing.house import Faults, House, serve

    settings = get_settings()
    try:
        faults = Faults(
            latency_ms=args.latency_ms, reject_rate=args.reject_rate,
            timeout_rate=args.timeout_rate, pending_rate=args.pending_rate,
        )  # fmt: skip
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    house = House(
        bank_code=settings.bank_code, bank_url=args.bank_url,
        secret=settings.clearing_secret.get_secret_value(), faults=faults, seed=args.seed,
    )  # fmt: skip
    serve(house, args.port)
    return 0


def cmd_shop(args: argparse.Namespace) -> int:
    """Run the example shop, a merchant's site paying through the gateway (ebank.shop)."""
    import uvicorn
    from pydantic import ValidationError

    from ebank.core.logging import configure_logging
    from ebank.shop.app import ShopSettings, create_shop

    try:
        app = create_shop(ShopSettings())
    except (ValidationError, OSError, ValueError) as exc:
        print(f"the shop cannot start (EBANK_SHOP_MERCHANT_NO, EBANK_SHOP_KEY_PATH and "
              f"EBANK_SHOP_GATEWAY_KEY_PATH): {exc}", file=sys.stderr)  # fmt: skip
        return 2
    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(app, host=args.host or settings.host, port=args.port,
                log_level=settings.log_level, log_config=None)  # fmt: skip
    return 0


def cmd_sms_inbox(args: argparse.Namespace) -> int:
    """Print the latest messages of the demo's SMS inbox (the default sender's)."""
    from ebank.core.crypto import vault_for
    from ebank.core.db import make_engine
    from ebank.notify.service import inbox

    settings = get_settings()
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        messages = inbox(conn, vault_for(settings), limit=args.limit)
    engine.dispose()
    for m in reversed(messages):
        print(f"{m.sent_at:%Y-%m-%d %H:%M:%S}Z  customer {m.customer_id}  {m.mobile}  {m.body}")
    if not messages:
        print("the SMS inbox is empty")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from ebank.core.audit import verify
    from ebank.core.db import make_engine

    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        result = verify(conn)
    engine.dispose()
    if result.ok:
        print(f"audit log intact: {result.records} records verified")
        return 0
    print(f"audit log BROKEN at record {result.first_bad_id}: {result.reason}")
    return 1


def cmd_bench(args: argparse.Namespace) -> int:
    from ebank.bench import SCENARIOS

    print(SCENARIOS[args.scenario].run(args), flush=True)
    return 0


def _safe_url(url: str) -> str:
    """A database URL fit for printing: no password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    from ebank.bench import SCENARIOS

    parser = argparse.ArgumentParser(prog="ebank", description="ebank electronic banking")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str
            ) -> argparse.ArgumentParser:  # fmt: skip
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    for name, handler, text in (
        ("serve", cmd_serve, "serve the web app and API"),
        ("demo", cmd_demo, "create and seed a demo bank, then serve it"),
    ):
        p = add(name, handler, text)
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)
        if name == "demo":
            p.add_argument("--no-serve", action="store_true", help="seed and print, then exit")

    from ebank.ops.staff import ROLES

    staff = sub.add_parser("staff", help="staff logins").add_subparsers(
        dest="staff_command", required=True
    )
    staff_add = staff.add_parser(
        "add", help="add a staff login (password from EBANK_STAFF_PASSWORD or a prompt)"
    )
    staff_add.add_argument("--username", required=True)
    staff_add.add_argument("--name", required=True, help="the name shown in the console")
    staff_add.add_argument(
        "--role", required=True, action="append", choices=ROLES, help="repeat for several"
    )
    staff_add.set_defaults(handler=cmd_staff_add)
    for name, (text, _) in STAFF_ACTS.items():
        p = staff.add_parser(name, help=text, description=text)
        p.add_argument("--username", required=True)
        p.set_defaults(handler=cmd_staff_admin)

    worker = add("worker", cmd_worker, "run the background jobs and SMS and e-mail delivery")
    worker.add_argument("--workers", type=int, default=2)
    eod = add("eod", cmd_eod, "the end-of-day run: settle merchants' takings for a business day")
    eod.add_argument(
        "--day", type=date.fromisoformat, help="YYYY-MM-DD; default: the day that ended last"
    )
    sms = add("sms-inbox", cmd_sms_inbox, "print the demo's SMS inbox, newest last")
    sms.add_argument("--limit", type=int, default=20)
    house = add("clearing-house", cmd_clearing_house,
                "run a clearing house with a simulated second bank on 127.0.0.1")  # fmt: skip
    house.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    house.add_argument("--bank-url", required=True, help="our bank's base URL")
    house.add_argument("--latency-ms", type=int, default=0)
    house.add_argument("--reject-rate", type=float, default=0.0)
    house.add_argument("--timeout-rate", type=float, default=0.0)
    house.add_argument("--pending-rate", type=float, default=0.0)
    house.add_argument("--seed", type=int, help="of the fault draws, for a repeatable run")
    shop = add("shop", cmd_shop, "run the example shop that pays through the merchant gateway")
    shop.add_argument("--host")
    shop.add_argument("--port", type=int, default=8001)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command",
                                                                      required=True)  # fmt: skip
    db.add_parser("upgrade", help="migrate to the latest schema").set_defaults(
        handler=cmd_db_upgrade
    )
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    audit.add_parser("verify", help="prove no audit record was altered").set_defaults(
        handler=cmd_audit_verify
    )
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="scenario", required=True
    )
    for name, scenario in SCENARIOS.items():
        p = bench.add_parser(
            name, help=scenario.__doc__.splitlines()[0] if scenario.__doc__ else ""
        )
        scenario.add_arguments(p)
        p.set_defaults(handler=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
