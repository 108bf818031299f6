"""Indexes for /stats: its figures over a million answers in well under a second.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

- `ix_answers_stats`: answers counted by (scale, score, unsolicited, label, corrected label) in a
  time range; SQLite walks it in group order with no sort (storage/stats_repository.py).
- `ix_answers_trend`: each week's scores of one scale, a small range.
- `ix_surveys_stats`: surveys sent in a range and whether answered, without touching the table.
- `ix_answer_reasons_stats`: chips counted by reason, the answer's id at hand (no table reads).
- `ix_cases_stats`: the period's cases with their response and resolution times and follow-ups.
- `ix_visits_test`: the few test-survey visits (partial), so they can be subtracted cheaply.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# storage.test_visits.TEST_VISITS_WHERE, spelled out: a migration must not change with the code.
TEST_VISITS = "substr(external_id, 1, 5) = 'test:'"


def upgrade() -> None:
    op.create_index(
        "ix_answers_stats",
        "answers",
        [
            "scale",
            "score",
            "unsolicited",
            "sentiment_label",
            "sentiment_corrected",
            "created_at",
            "survey_id",
        ],
    )
    op.create_index("ix_answers_trend", "answers", ["scale", "created_at", "score"])
    op.create_index("ix_surveys_stats", "surveys", ["sent_at", "answered_at", "visit_id"])
    op.create_index("ix_answer_reasons_stats", "answer_reasons", ["reason_id", "answer_id"])
    op.create_index(
        "ix_cases_stats",
        "cases",
        ["created_at", "first_responded_at", "resolved_at", "recovered", "answer_id"],
    )
    op.create_index(
        "ix_visits_test",
        "visits",
        ["id"],
        sqlite_where=sa.text(TEST_VISITS),
        postgresql_where=sa.text(TEST_VISITS),
    )


def downgrade() -> None:
    op.drop_index("ix_visits_test", table_name="visits")
    op.drop_index("ix_cases_stats", table_name="cases")
    op.drop_index("ix_answer_reasons_stats", table_name="answer_reasons")
    op.drop_index("ix_surveys_stats", table_name="surveys")
    op.drop_index("ix_answers_trend", table_name="answers")
    op.drop_index("ix_answers_stats", table_name="answers")
