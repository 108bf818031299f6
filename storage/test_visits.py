"""Admins' test surveys (/test_survey) in SQL: visits whose business id starts with "test:".

Statistics, the export and the learned models all leave them out, and must agree on which they
are, so the prefix and its SQL live here once. The literal form
(`TEST_VISITS_WHERE`) is what the partial index `ix_visits_test` repeats, since a database uses a
partial index only for a query that spells out its predicate; `is_test_visit_id` is the same test
for a query builder. Both compare with substr, not LIKE: SQLite's LIKE ignores case and
PostgreSQL's does not, and a business's visit id "TEST:1" must mean the same on both (and the
same as `str.startswith` in bot.test_surveys.is_test_visit).
Kept apart from bot.test_surveys so that command-line tools need not import the bot.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func

__all__ = ["TEST_VISITS_WHERE", "TEST_VISIT_PREFIX", "is_test_visit_id"]

#: The start of every test survey's `Visit.external_id`.
TEST_VISIT_PREFIX = "test:"
#: The predicate on `visits` as literal SQL (see the module docstring).
TEST_VISITS_WHERE = f"substr(external_id, 1, {len(TEST_VISIT_PREFIX)}) = '{TEST_VISIT_PREFIX}'"


def is_test_visit_id(external_id: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether the visit id ``external_id`` is a test survey's."""
    return func.substr(external_id, 1, len(TEST_VISIT_PREFIX)) == TEST_VISIT_PREFIX
