"""Each survey, survey answer and case carries its visit's location, so /stats at one location
is an index range and not a walk through the visits.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

- `surveys.location`, `answers.location`, `cases.location`: the visit's location, copied by the
  database itself when the row is inserted (a trigger on each backend), so every writer (the
  bot, imports, a test's fixture, a bulk load) gets it right without knowing about it, and the
  customer's tap sends no extra statement. A visit's location never changes; should it ever, a
  trigger on `visits` carries the change along, so the copies always equal the visit's.
- Rows already there are filled from their visits here.
- `ix_surveys_location`, `ix_answers_location`, `ix_cases_location`: a location's surveys sent,
  answers given and cases opened in a time range, from the index (an answer's sentiment is read
  from the row: kept out of the index, the conversation's updates of the label write no more
  index entries on SQLite than before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SURVEY_LOCATION = "(SELECT v.location FROM visits v WHERE v.id = {visit})"
_ANSWER_LOCATION = (
    "(SELECT v.location FROM surveys s JOIN visits v ON v.id = s.visit_id WHERE s.id = {survey})"
)
_CASE_LOCATION = "(SELECT a.location FROM answers a WHERE a.id = {answer})"

_SQLITE = (
    # SQLite cannot assign to NEW: the row just inserted is updated by its rowid (one indexed
    # write, only the location's own indexes change).
    f"""CREATE TRIGGER tr_surveys_location AFTER INSERT ON surveys
    BEGIN
        UPDATE surveys SET location = {_SURVEY_LOCATION.format(visit="NEW.visit_id")}
        WHERE id = NEW.id;
    END""",
    f"""CREATE TRIGGER tr_answers_location AFTER INSERT ON answers
    WHEN NEW.survey_id IS NOT NULL
    BEGIN
        UPDATE answers SET location = {_ANSWER_LOCATION.format(survey="NEW.survey_id")}
        WHERE id = NEW.id;
    END""",
    f"""CREATE TRIGGER tr_cases_location AFTER INSERT ON cases
    WHEN NEW.answer_id IS NOT NULL
    BEGIN
        UPDATE cases SET location = {_CASE_LOCATION.format(answer="NEW.answer_id")}
        WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER tr_visits_location AFTER UPDATE OF location ON visits
    WHEN NEW.location IS NOT OLD.location
    BEGIN
        UPDATE surveys SET location = NEW.location WHERE visit_id = NEW.id;
        UPDATE answers SET location = NEW.location
        WHERE survey_id IN (SELECT id FROM surveys WHERE visit_id = NEW.id);
        UPDATE cases SET location = NEW.location
        WHERE answer_id IN (
            SELECT a.id FROM answers a JOIN surveys s ON s.id = a.survey_id
            WHERE s.visit_id = NEW.id
        );
    END""",
)

_POSTGRESQL = (
    f"""CREATE FUNCTION fn_surveys_location() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.location := {_SURVEY_LOCATION.format(visit="NEW.visit_id")};
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER tr_surveys_location BEFORE INSERT ON surveys
    FOR EACH ROW EXECUTE FUNCTION fn_surveys_location()""",
    f"""CREATE FUNCTION fn_answers_location() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.location := {_ANSWER_LOCATION.format(survey="NEW.survey_id")};
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER tr_answers_location BEFORE INSERT ON answers
    FOR EACH ROW WHEN (NEW.survey_id IS NOT NULL) EXECUTE FUNCTION fn_answers_location()""",
    f"""CREATE FUNCTION fn_cases_location() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.location := {_CASE_LOCATION.format(answer="NEW.answer_id")};
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER tr_cases_location BEFORE INSERT ON cases
    FOR EACH ROW WHEN (NEW.answer_id IS NOT NULL) EXECUTE FUNCTION fn_cases_location()""",
    """CREATE FUNCTION fn_visits_location() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE surveys SET location = NEW.location WHERE visit_id = NEW.id;
        UPDATE answers SET location = NEW.location
        WHERE survey_id IN (SELECT id FROM surveys WHERE visit_id = NEW.id);
        UPDATE cases SET location = NEW.location
        WHERE answer_id IN (
            SELECT a.id FROM answers a JOIN surveys s ON s.id = a.survey_id
            WHERE s.visit_id = NEW.id
        );
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER tr_visits_location AFTER UPDATE OF location ON visits
    FOR EACH ROW WHEN (NEW.location IS DISTINCT FROM OLD.location)
    EXECUTE FUNCTION fn_visits_location()""",
)


def upgrade() -> None:
    op.add_column("surveys", sa.Column("location", sa.String(length=128), nullable=True))
    op.add_column("answers", sa.Column("location", sa.String(length=128), nullable=True))
    op.add_column("cases", sa.Column("location", sa.String(length=128), nullable=True))
    op.execute(f"UPDATE surveys SET location = {_SURVEY_LOCATION.format(visit='surveys.visit_id')}")
    op.execute(
        "UPDATE answers SET location ="
        f" {_ANSWER_LOCATION.format(survey='answers.survey_id')}"
        " WHERE survey_id IS NOT NULL"
    )
    op.execute(
        f"UPDATE cases SET location = {_CASE_LOCATION.format(answer='cases.answer_id')}"
        " WHERE answer_id IS NOT NULL"
    )
    for statement in _SQLITE if _sqlite() else _POSTGRESQL:
        op.execute(statement)
    op.create_index("ix_surveys_location", "surveys", ["location", "sent_at", "answered_at"])
    op.create_index("ix_answers_location", "answers", ["location", "created_at", "scale", "score"])
    op.create_index(
        "ix_cases_location",
        "cases",
        ["location", "created_at", "first_responded_at", "resolved_at", "recovered", "answer_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_cases_location", table_name="cases")
    op.drop_index("ix_answers_location", table_name="answers")
    op.drop_index("ix_surveys_location", table_name="surveys")
    for table in ("visits", "cases", "answers", "surveys"):
        op.execute(f"DROP TRIGGER tr_{table}_location" + ("" if _sqlite() else f" ON {table}"))
    if not _sqlite():
        for table in ("visits", "cases", "answers", "surveys"):
            op.execute(f"DROP FUNCTION fn_{table}_location()")
    # SQLite (3.35+) drops a column that is in no index, trigger or constraint in place.
    op.execute("ALTER TABLE cases DROP COLUMN location")
    op.execute("ALTER TABLE answers DROP COLUMN location")
    op.execute("ALTER TABLE surveys DROP COLUMN location")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
