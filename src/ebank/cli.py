"""The `ebank` command: serve, demo, db upgrade, staff add, audit verify, bench."""

import argparse
import sys
from collections.abc import Callable

from ebank.core.money import format_minor
from ebank.core.settings import Settings, get_settings


def _prepare_database(settings: Settings) -> None:
    """Migrate to the latest schema and make sure the bank's own accounts exist."""
    from ebank.core import audit
    from ebank.core.db import make_engine
    from ebank.core.writer import Command, Tx, Writer
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
    finally:
        writer.close()
        engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = get_settings()
    _prepare_database(settings)
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
    _prepare_database(settings)
    vault = vault_for(settings)
    engine = make_engine(settings.database_url)
    writer = Writer(engine)
    try:
        tokens = demo.seed(writer, vault)
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
    print("  then POST /api/v1/auth/login/verify with a token code (or an SMS code: send_sms);")
    print("  a phone's first mobile login binds it: X-Device-ID and device_name, then the SMS code")
    staff_names = " and ".join(f"{u} ({', '.join(r)})" for u, _, r in demo.DEMO_STAFF)
    print(f"  staff log in with POST /api/v1/staff/auth/login: {staff_names}, "
          f"password {demo.DEMO_STAFF_PASSWORD!r}")  # fmt: skip
    if args.no_serve:
        return 0
    host, port = args.host or settings.host, args.port or settings.port
    print(f"\nserving on http://{host}:{port}/  (API docs: http://{host}:{port}/api/v1/docs)\n")
    args.demo = True
    return cmd_serve(args)


def cmd_staff_add(args: argparse.Namespace) -> int:
    """Give someone a console login; the password comes from EBANK_STAFF_PASSWORD or a prompt."""
    import getpass
    import os

    from ebank.core.db import make_engine
    from ebank.core.errors import EbankError
    from ebank.core.writer import Writer
    from ebank.migrations import upgrade
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
    settings = get_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    writer = Writer(engine)
    try:
        member = writer.execute(
            staff.add(
                username=args.username, name=args.name, roles=tuple(args.role),
                password=password, actor=f"operator:{operator}",
            )
        )  # fmt: skip
    except EbankError as exc:
        print(f"refused: {exc.message('en')}", file=sys.stderr)
        return 1
    finally:
        writer.close()
        engine.dispose()
    print(f"staff member {member.id} {member.username!r} ({member.name}), roles "
          f"{', '.join(member.roles)}: logs in with POST /api/v1/staff/auth/login")  # fmt: skip
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the background jobs (expired holds every minute, old idempotency keys hourly) and
    the SMS delivery loop."""
    from ebank.core.crypto import vault_for
    from ebank.core.logging import configure_logging
    from ebank.jobs import huey, process_writer
    from ebank.notify.service import start_delivery

    settings = get_settings()
    configure_logging(settings.log_level)
    stop_sms = start_delivery(process_writer(), vault_for(settings))
    try:
        huey.create_consumer(workers=args.workers, periodic=True).run()
    finally:
        stop_sms()
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

    worker = add("worker", cmd_worker, "run the background jobs and the SMS delivery")
    worker.add_argument("--workers", type=int, default=2)
    sms = add("sms-inbox", cmd_sms_inbox, "print the demo's SMS inbox, newest last")
    sms.add_argument("--limit", type=int, default=20)

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
