"""Learned models: each training run of the sentiment and reason models, versioned.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

A model lives in the database rather than on disk so that every worker loads the same version,
and so that a backup of the database is a backup of what the bot has learned.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trained_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("labels_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('sentiment', 'reasons')", name=op.f("ck_trained_models_model_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trained_models")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_trained_models_kind_version")),
    )
    op.create_index(
        op.f("ix_trained_models_kind_active"), "trained_models", ["kind", "active"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_trained_models_kind_active"), table_name="trained_models")
    op.drop_table("trained_models")
