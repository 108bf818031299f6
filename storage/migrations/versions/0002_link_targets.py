"""Link targets: what a signed deep link or QR code leads to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-06

A start payload is at most 64 characters, too few for long location names, so a payload carries
the id of a row here (signed) rather than the target itself: see bot.links. Written by hand in
the style of 0001: the enum column is a VARCHAR(32) with an explicit, named CHECK.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=True),
        sa.Column("staff", sa.String(length=128), nullable=True),
        sa.Column("service", sa.String(length=128), nullable=True),
        sa.Column("customer_ref", sa.String(length=128), nullable=True),
        # storage.models.UTCDateTime: timestamptz on PostgreSQL, naive UTC text on SQLite.
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_targets")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_link_targets_fingerprint")),
        sa.CheckConstraint(
            "kind IN ('location', 'customer')", name=op.f("ck_link_targets_link_kind")
        ),
        sa.CheckConstraint(
            "(kind = 'location' AND location IS NOT NULL AND customer_ref IS NULL)"
            " OR (kind = 'customer' AND customer_ref IS NOT NULL AND location IS NULL"
            " AND staff IS NULL AND service IS NULL)",
            name=op.f("ck_link_targets_target_matches_kind"),
        ),
    )


def downgrade() -> None:
    op.drop_table("link_targets")
