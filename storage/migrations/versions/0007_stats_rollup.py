"""A daily roll-up of /stats's additive counts, and the log of the days that changed since.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

- `stats_daily_surveys`, `stats_daily_answers`, `stats_daily_reasons`, `stats_daily_cases`:
  counts per local day (of TIMEZONE) and location, filled by storage.stats_rollup (a job), for
  closed days only. Empty here: the time zone is a setting, not known to a migration; the
  first refresh after start builds them.
- `stats_rollup_state`: one row saying which days of which time zone the roll-up holds.
- `stats_stale`: an append-only log. Every write that changes what a rolled-up day counts —
  a survey sent or answered, an answer given, its score or (corrected) label, a chip tapped,
  a case opened or its follow-up answered, a location put right, a row deleted — adds the UTC
  hour of the row's day-deciding time (`sent_at` of a survey, `created_at` of the others),
  from a trigger, so no writer can forget it. Readers treat the local days that hour touches
  as stale (counted from the raw rows) until a refresh has recounted them and removed exactly
  the log rows it read. A row per write, not a flag per day: on PostgreSQL a write that
  commits while its day is being recounted keeps its own row, so it is never lost.
- PostgreSQL: inserts and deletes log once per statement (transition tables, distinct hours),
  so a bulk COPY adds a few rows, not one per row loaded; updates log per row, and only when
  a counted column really changed.
- SQLite: row triggers, which skip an hour already logged. That is safe there only because
  SQLite has one writer at a time: a refresh cannot run between the check and the commit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAY_TABLES = {
    "stats_daily_surveys": (
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
    ),
    "stats_daily_answers": (
        sa.Column("scale", sa.String(length=32), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("unsolicited", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=True),
        sa.Column("answers", sa.Integer(), nullable=False),
    ),
    "stats_daily_reasons": (
        sa.Column("reason_id", sa.Integer(), nullable=False),
        sa.Column("chips", sa.Integer(), nullable=False),
    ),
    "stats_daily_cases": (
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("followups", sa.Integer(), nullable=False),
        sa.Column("recovered", sa.Integer(), nullable=False),
    ),
}

# What each table's log row is: the time that decides the row's day, and when an update counts.
# (table, day-deciding column, columns whose change matters, condition on OLD/NEW for updates)
_ANSWER_COUNTED = (
    "created_at",
    "location",
    "scale",
    "score",
    "unsolicited",
    "sentiment_label",
    "sentiment_corrected",
)


def _changed(columns: Sequence[str], distinct: str) -> str:
    return " OR ".join(f"NEW.{c} {distinct} OLD.{c}" for c in columns)


def _sqlite_hour(value: str) -> str:
    # Times are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text (storage.models.UTCDateTime).
    return f"substr({value}, 1, 13) || ':00:00'"


def _sqlite_log(value: str, extra: str = "") -> str:
    """Log the hour of ``value`` (an expression over NEW/OLD) unless that hour is logged."""
    hour = _sqlite_hour(value)
    return (
        f"INSERT INTO stats_stale (at) SELECT {hour} WHERE {value} IS NOT NULL{extra}"
        f" AND NOT EXISTS (SELECT 1 FROM stats_stale WHERE at = {hour});"
    )


def _sqlite_log_answer(answer_id: str) -> str:
    hour = _sqlite_hour("a.created_at")
    return (
        f"INSERT INTO stats_stale (at) SELECT {hour} FROM answers a WHERE a.id = {answer_id}"
        f" AND NOT EXISTS (SELECT 1 FROM stats_stale WHERE at = {hour});"
    )


def _sqlite_row_triggers(table: str, column: str, counted: Sequence[str], when: str) -> list[str]:
    return [
        f"""CREATE TRIGGER tr_{table}_stale_insert AFTER INSERT ON {table}
        BEGIN {_sqlite_log(f"NEW.{column}")} END""",
        f"""CREATE TRIGGER tr_{table}_stale_delete AFTER DELETE ON {table}
        BEGIN {_sqlite_log(f"OLD.{column}")} END""",
        f"""CREATE TRIGGER tr_{table}_stale_update AFTER UPDATE OF {", ".join(counted)} ON {table}
        WHEN {when}
        BEGIN
            {_sqlite_log(f"OLD.{column}")}
            {_sqlite_log(f"NEW.{column}")}
        END""",
    ]


_SURVEY_CHANGED = (
    "NEW.sent_at IS NOT OLD.sent_at OR NEW.location IS NOT OLD.location"
    " OR (NEW.answered_at IS NULL) <> (OLD.answered_at IS NULL)"
)
_SURVEY_CHANGED_PG = (
    "NEW.sent_at IS DISTINCT FROM OLD.sent_at OR NEW.location IS DISTINCT FROM OLD.location"
    " OR (NEW.answered_at IS NULL) <> (OLD.answered_at IS NULL)"
)
_CASE_COUNTED = ("created_at", "location", "recovered")

_SQLITE = [
    *_sqlite_row_triggers(
        "surveys", "sent_at", ("sent_at", "answered_at", "location"), _SURVEY_CHANGED
    ),
    *_sqlite_row_triggers(
        "answers", "created_at", _ANSWER_COUNTED, _changed(_ANSWER_COUNTED, "IS NOT")
    ),
    *_sqlite_row_triggers("cases", "created_at", _CASE_COUNTED, _changed(_CASE_COUNTED, "IS NOT")),
    f"""CREATE TRIGGER tr_answer_reasons_stale_insert AFTER INSERT ON answer_reasons
    BEGIN {_sqlite_log_answer("NEW.answer_id")} END""",
    # A chip deleted with its answer finds no answer here; the answer's own trigger logs it.
    f"""CREATE TRIGGER tr_answer_reasons_stale_delete AFTER DELETE ON answer_reasons
    BEGIN {_sqlite_log_answer("OLD.answer_id")} END""",
    f"""CREATE TRIGGER tr_answer_reasons_stale_update AFTER UPDATE ON answer_reasons
    WHEN NEW.answer_id IS NOT OLD.answer_id OR NEW.reason_id IS NOT OLD.reason_id
    BEGIN
        {_sqlite_log_answer("OLD.answer_id")}
        {_sqlite_log_answer("NEW.answer_id")}
    END""",
]


def _pg_hour(value: str) -> str:
    # The UTC hour whatever the session's TimeZone (date_trunc on timestamptz would use it).
    return f"date_trunc('hour', {value}, 'UTC')"


def _pg_statement_triggers(table: str, column: str) -> list[str]:
    """Inserts and deletes: once per statement, each distinct hour of the rows it touched."""
    statements = []
    for operation, rows in (("insert", "NEW"), ("delete", "OLD")):
        if table == "answer_reasons":
            select = (
                f"SELECT DISTINCT {_pg_hour('a.created_at')}"
                f" FROM {rows.lower()}_rows r JOIN answers a ON a.id = r.answer_id"
            )
        else:
            select = (
                f"SELECT DISTINCT {_pg_hour(f'r.{column}')} FROM {rows.lower()}_rows r"
                f" WHERE r.{column} IS NOT NULL"
            )
        statements += [
            f"""CREATE FUNCTION fn_{table}_stale_{operation}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO stats_stale (at) {select};
                RETURN NULL;
            END $$""",
            f"""CREATE TRIGGER tr_{table}_stale_{operation} AFTER {operation.upper()} ON {table}
            REFERENCING {rows} TABLE AS {rows.lower()}_rows
            FOR EACH STATEMENT EXECUTE FUNCTION fn_{table}_stale_{operation}()""",
        ]
    return statements


def _pg_update_trigger(table: str, column: str, counted: Sequence[str], when: str) -> list[str]:
    """Updates: per row, only when a counted column changed (most updates — a conversation's
    steps, a case's card — change none and run no trigger at all)."""
    if table == "answer_reasons":
        old = f"SELECT {_pg_hour('created_at')} FROM answers WHERE id = OLD.answer_id"
        new = f"SELECT {_pg_hour('created_at')} FROM answers WHERE id = NEW.answer_id"
    else:
        old = f"SELECT {_pg_hour(f'OLD.{column}')} WHERE OLD.{column} IS NOT NULL"
        new = (
            f"SELECT {_pg_hour(f'NEW.{column}')} WHERE NEW.{column} IS NOT NULL"
            f" AND NEW.{column} IS DISTINCT FROM OLD.{column}"
        )
    columns = f" OF {', '.join(counted)}" if counted else ""
    return [
        f"""CREATE FUNCTION fn_{table}_stale_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO stats_stale (at) {old};
            INSERT INTO stats_stale (at) {new};
            RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER tr_{table}_stale_update AFTER UPDATE{columns} ON {table}
        FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION fn_{table}_stale_update()""",
    ]


_POSTGRESQL = [
    *_pg_statement_triggers("surveys", "sent_at"),
    *_pg_update_trigger(
        "surveys", "sent_at", ("sent_at", "answered_at", "location"), _SURVEY_CHANGED_PG
    ),
    *_pg_statement_triggers("answers", "created_at"),
    *_pg_update_trigger(
        "answers", "created_at", _ANSWER_COUNTED, _changed(_ANSWER_COUNTED, "IS DISTINCT FROM")
    ),
    *_pg_statement_triggers("cases", "created_at"),
    *_pg_update_trigger(
        "cases", "created_at", _CASE_COUNTED, _changed(_CASE_COUNTED, "IS DISTINCT FROM")
    ),
    *_pg_statement_triggers("answer_reasons", "answer_id"),
    *_pg_update_trigger(
        "answer_reasons",
        "answer_id",
        (),
        _changed(("answer_id", "reason_id"), "IS DISTINCT FROM"),
    ),
]

_TRIGGERS = (
    *(
        f"tr_{t}_stale_{op_}"
        for t in ("surveys", "answers", "cases", "answer_reasons")
        for op_ in ("insert", "delete", "update")
    ),
)


def upgrade() -> None:
    op.create_table(
        "stats_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("end_day", sa.Date(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_rollup_state")),
    )
    op.execute("INSERT INTO stats_rollup_state (id) VALUES (1)")
    op.create_table(
        "stats_stale",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_stale")),
    )
    op.create_index("ix_stats_stale_at", "stats_stale", ["at"])
    for name, columns in _DAY_TABLES.items():
        op.create_table(
            name,
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("location", sa.String(length=128), nullable=True),
            *columns,
        )
        op.create_index(f"ix_{name}_day", name, ["day"])
    for statement in _SQLITE if _sqlite() else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    for trigger in _TRIGGERS:
        table = trigger.removeprefix("tr_").rsplit("_stale_", 1)[0]
        op.execute(f"DROP TRIGGER {trigger}" + ("" if _sqlite() else f" ON {table}"))
        if not _sqlite():
            op.execute(f"DROP FUNCTION fn_{trigger.removeprefix('tr_')}()")
    for name in _DAY_TABLES:
        op.drop_index(f"ix_{name}_day", table_name=name)
        op.drop_table(name)
    op.drop_index("ix_stats_stale_at", table_name="stats_stale")
    op.drop_table("stats_stale")
    op.drop_table("stats_rollup_state")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
