"""The customer's conversation: each answer's stage and prompt, and the default reason chips.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

`answers.stage` says what the bot waits for next (reasons, comment, contact, done), so the
conversation survives restarts and runs the same on several workers; `prompt_message_id` is the
bot message holding that step's buttons. (The default reason chips are put in by the application
when it finds none, not here: see bot.conversation.DEFAULT_REASONS.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("stage", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("prompt_message_id", sa.BigInteger(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_answers_answer_stage"), "stage IN ('reasons', 'comment', 'contact', 'done')"
        )
        batch.create_index(batch.f("ix_answers_customer_id_stage"), ["customer_id", "stage"])


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_index(batch.f("ix_answers_customer_id_stage"))
        batch.drop_constraint(op.f("ck_answers_answer_stage"), type_="check")
        batch.drop_column("prompt_message_id")
        batch.drop_column("stage")
