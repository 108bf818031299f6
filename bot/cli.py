"""The `hearback` command: run the bot or the sandbox, manage the database, show configuration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from bot.settings import ConfigurationError, Settings, load_settings

log = logging.getLogger("hearback")


def _configure_logging(settings: Settings) -> None:
    from bot.logs import configure_logging

    configure_logging(settings.log_level_number, settings.log_format)


def _prepare_database(settings: Settings) -> None:
    from storage.migrate import current, upgrade

    if path := settings.sqlite_path:
        path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    log.info("Database ready at revision %s", current(settings.database_url))


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if args.webhook and settings.sandbox:
        print(
            "Hearback cannot start: --webhook needs BOT_TOKEN (the offline sandbox is polled)",
            file=sys.stderr,
        )
        return 2
    if args.webhook and not settings.webhook_url:
        print(
            "Hearback cannot start, the configuration has errors:\n"
            "WEBHOOK_URL: must be set for `hearback run --webhook`: the public https:// URL "
            "Telegram posts updates to, e.g. https://bot.example.com/telegram",
            file=sys.stderr,
        )
        return 2
    if settings.sandbox:
        from bot.sandbox import run_sandbox, sandbox_settings

        settings = sandbox_settings(settings)
        _prepare_database(settings)
        asyncio.run(run_sandbox(settings))
        return 0
    _prepare_database(settings)

    from bot.app import Application, run_until_signalled
    from bot.webhook import WebhookRefused

    async def main() -> None:
        await run_until_signalled(Application(settings, webhook=args.webhook))

    try:
        asyncio.run(main())
    except WebhookRefused as error:
        log.error("%s", error)
        return 1
    return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from storage import migrate

    if args.db_command == "upgrade":
        if path := settings.sqlite_path:
            path.parent.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(settings.database_url, args.revision)
        print(f"Database is at revision {migrate.current(settings.database_url)}")
    elif args.db_command == "downgrade":
        migrate.downgrade(settings.database_url, args.revision)
        print(f"Database is at revision {migrate.current(settings.database_url) or 'base'}")
    else:
        print(migrate.current(settings.database_url) or "base (no migrations applied)")
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import visits from a CSV file (format: bot/importer.py); migrations run first."""
    from pathlib import Path

    from bot.importer import run_import

    _prepare_database(settings)
    return asyncio.run(run_import(settings, Path(args.file), batch_size=args.batch_size))


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Export surveys as CSV (columns: bot/export.py); migrations run first."""
    from pathlib import Path

    from bot.export import run_export

    _prepare_database(settings)
    out = Path(args.out) if args.out and args.out != "-" else None
    return asyncio.run(run_export(settings, args.period, out))


def cmd_sentiment(settings: Settings, args: argparse.Namespace) -> int:
    """Evaluate sentiment on a labelled file (bot/sentiment_eval.py); no database needed."""
    from bot.sentiment_eval import run

    return run(args)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Play the whole loop on the emulator and print the transcript (bot/sandbox/demo.py)."""
    from bot.sandbox.demo import run_demo

    return run_demo(settings, database_url=args.database_url)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    """Print the effective configuration with secrets hidden: the first thing to check."""
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if name == "bot_token":
            shown = "(not set: sandbox)" if value is None else "(set)"
        elif name == "api_keys":
            shown = f"({len(value)} key{'s' if len(value) != 1 else ''})"
        elif name == "webhook_secret":
            shown = "(set)" if value.get_secret_value() else "(empty: derived from BOT_TOKEN)"
        elif name == "redis_url":
            shown = _without_password(value) or "(empty: each process on its own)"
        elif isinstance(value, list):
            shown = ",".join(str(item) for item in value) or "(none)"
        else:
            shown = str(value) or "(empty)"
        print(f"{name.upper():<20} {shown:<45} {field.description or ''}")
    return 0


def cmd_link(settings: Settings, args: argparse.Namespace) -> int:
    """Print a signed start link and write it as a QR code: a location's, for the counter, or
    one customer's personal link. Migrations run first, since link targets live in the database.
    The URL alone goes to stdout, so scripts can capture it."""
    from pathlib import Path

    from bot.links import BotUsernameUnknown, make_link, write_qr_png

    _prepare_database(settings)
    try:
        link = asyncio.run(
            make_link(
                settings,
                location=args.location,
                staff=args.staff,
                service=args.service,
                customer_ref=args.customer,
                username=args.bot_username,
            )
        )
    except ValueError as error:
        print(f"hearback link: {error}", file=sys.stderr)
        return 2
    except BotUsernameUnknown as error:
        print(
            f"Could not ask Telegram for the bot's username ({error}); "
            "check BOT_TOKEN or pass --bot-username NAME",
            file=sys.stderr,
        )
        return 1
    out = Path(args.out or f"hearback-link-{link.payload}.png")
    write_qr_png(link.url, out)
    print(link.url)
    print(f"QR code written to {out}", file=sys.stderr)
    return 0


def _without_password(url: str) -> str:
    """The URL with any password replaced by ***, for printing."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearback",
        description="Hearback asks every served customer how it went and recovers what went wrong.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run the bot (with no BOT_TOKEN: the offline sandbox on the emulator)"
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="take updates on WEBHOOK_URL (set at Telegram on start) instead of polling",
    )
    run.set_defaults(handler=cmd_run)

    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (default: to the newest)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = db_commands.add_parser("downgrade", help="undo migrations down to REVISION")
    downgrade.add_argument("revision", help="a revision id, or 'base' to undo all")
    db_commands.add_parser("current", help="show the applied revision")
    db.set_defaults(handler=cmd_db)

    import_ = commands.add_parser(
        "import",
        help="import visits from a CSV file",
        description="Import visits from a UTF-8 CSV file with a header line. Columns: visit_id, "
        "customer_ref, occurred_at (required); telegram_user_id, name, language, timezone, "
        "location, staff, service (optional); others are ignored. Rejected rows go to "
        "<name>.rejected.csv with a reason column. Exit status: 0 all recorded or duplicates, "
        "1 some rows rejected, 2 the file could not be imported.",
    )
    import_.add_argument("file", help="the CSV file, e.g. visits.csv")
    import_.add_argument(
        "--batch-size", type=int, default=500, help="rows per transaction (default 500)"
    )
    import_.set_defaults(handler=cmd_import)

    link = commands.add_parser(
        "link",
        help="print a signed deep link and write its QR code PNG",
        description="Print https://t.me/<bot>?start=<payload> and write it as a QR code. "
        "A location link (for the counter) records a visit for whoever scans it and presses "
        "Start; a personal link (--customer) binds the person who presses Start to the customer "
        "with that ref. The same target always gives the same link.",
    )
    target = link.add_mutually_exclusive_group(required=True)
    target.add_argument("--location", help="where customers are served, e.g. 'Downtown'")
    target.add_argument("--customer", metavar="REF", help="a customer's ref: their personal link")
    link.add_argument("--staff", help="who serves there (location links only)")
    link.add_argument("--service", help="what is served there (location links only)")
    link.add_argument(
        "--out", metavar="FILE.png", help="the QR code file (default: hearback-link-<payload>.png)"
    )
    link.add_argument(
        "--bot-username",
        metavar="NAME",
        help="the bot's username (default: asked from Telegram with BOT_TOKEN; without a token, "
        "the sandbox bot's)",
    )
    link.set_defaults(handler=cmd_link)

    export = commands.add_parser(
        "export",
        help="export surveys as CSV (the file /export sends)",
        description="Write one CSV row per survey whose visit occurred in the period: visit, "
        "location, staff, score, reasons, comment, sentiment, case state and times (local "
        "TIMEZONE). UTF-8 with a byte-order mark, so spreadsheets show every language right. "
        "Test surveys and unsolicited feedback are left out. Exit status: 0 written, "
        "2 a period it does not understand.",
    )
    export.add_argument(
        "--period",
        metavar="P",
        help="e.g. 7d, 3m, lastmonth, 2026-11, 2026-11-01..2026-11-20, all (default: 30d)",
    )
    export.add_argument(
        "--out", metavar="FILE.csv", help="write to FILE.csv instead of standard output"
    )
    export.set_defaults(handler=cmd_export)

    from bot.sentiment_eval import DESCRIPTION, add_arguments

    sentiment = commands.add_parser("sentiment", help="sentiment models")
    sentiment_commands = sentiment.add_subparsers(
        dest="sentiment_command", required=True, metavar="ACTION"
    )
    sentiment_eval = sentiment_commands.add_parser(
        "eval",
        help="compare the learned model with the baseline on a labelled file",
        description=DESCRIPTION,
    )
    add_arguments(sentiment_eval)
    sentiment.set_defaults(handler=cmd_sentiment)

    demo = commands.add_parser(
        "demo",
        help="play the whole loop on the emulator and print what each party saw",
        description="Starts the emulator and the real bot on it (as the sandbox does), then "
        "plays one unhappy visit from start to end: survey, low score, apology, reasons, "
        "comment, case in the staff forum, staff reply, resolve, follow-up, and the admin's "
        "/stats. Prints each chat's transcript. Needs no token and no network; uses a "
        "temporary database unless given one. Exit status 0 when the loop played through.",
    )
    demo.add_argument(
        "--database-url",
        metavar="URL",
        help="the database to use (default: a temporary SQLite file, removed afterwards)",
    )
    demo.set_defaults(handler=cmd_demo)

    config = commands.add_parser("config", help="show the effective configuration")
    config.set_defaults(handler=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return 2
    _configure_logging(settings)
    try:
        return args.handler(settings, args)
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        # Ports in use, unreadable database paths: say what, without a stack trace.
        log.error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
