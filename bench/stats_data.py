"""The data set of bench/stats.py: a business with a few locations and half a year of feedback.

Rows are made by one seeded generator and written in bulk (SQLite: executemany on one
connection; PostgreSQL: COPY), straight into a migrated schema, so a million answers take
seconds rather than the hours the bot itself would need to collect them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

NOW = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)  # a Monday morning
SPAN = timedelta(weeks=26)
LOCATIONS = ("Downtown", "Old Town", "Airport", "Harbour", "Station")
REASON_CODES = ("rude_staff", "long_wait", "poor_quality", "out_of_stock", "unclean")
TEST_VISITS = 50


@dataclass(frozen=True)
class Shape:
    answers: int = 1_000_000
    cases: int = 100_000

    @property
    def unsolicited(self) -> int:
        return self.answers // 20

    @property
    def surveys(self) -> int:
        # About 72 % of the surveys sent are answered; a few never went out.
        return int((self.answers - self.unsolicited) / 0.72 * 1.03)


def rows(shape: Shape, seed: int = 7) -> dict[str, Iterator[tuple]]:
    """Generators of each table's rows, in foreign-key order (tables not listed stay empty)."""
    rng = random.Random(seed)
    start = NOW - SPAN
    span_s = SPAN.total_seconds()
    scored = shape.answers - shape.unsolicited
    surveys = shape.surveys
    # Which surveys are answered: the first `scored` of a shuffled order (by id).
    answered = bytearray(surveys)
    for index in rng.sample(range(surveys), scored):
        answered[index] = 1
    sent_share = 1 / 1.03

    def at(fraction: float) -> datetime:
        return start + timedelta(seconds=fraction * span_s)

    def customers() -> Iterator[tuple]:
        for n in range(1, 50_001):
            yield (n, f"ref-{n}", start)

    def visits() -> Iterator[tuple]:
        for n in range(1, surveys + 1):
            external = f"test:{n}" if n <= TEST_VISITS else f"v-{n}"
            occurred = at((n - 0.5) / surveys)
            yield (
                n,
                external,
                1 + n % 50_000,
                LOCATIONS[n % len(LOCATIONS)],
                occurred,
                "api",
                occurred,
            )

    answer_rows: list[tuple] = []
    low_answers: list[tuple[int, datetime, bool]] = []  # answer id, when, unsolicited

    def survey_rows() -> Iterator[tuple]:
        answer_id = 0
        for n in range(1, surveys + 1):
            occurred = at((n - 0.5) / surveys)
            due = occurred + timedelta(hours=2)
            sent = rng.random() < sent_share or answered[n - 1]
            scale = "nps" if n % 10 == 0 else "csat"
            if answered[n - 1]:
                answered_at = due + timedelta(minutes=rng.randint(1, 600))
                answer_id += 1
                if scale == "csat":
                    score = rng.choices((1, 2, 3, 4, 5), (6, 6, 13, 30, 45))[0]
                    low, high = score <= 2, score >= 4
                else:
                    score = rng.choices(range(11), (2, 1, 1, 2, 2, 3, 4, 8, 14, 25, 38))[0]
                    low, high = score <= 6, score >= 9
                label = "negative" if low else "positive" if high else "neutral"
                if high and rng.random() < 0.02:
                    label = "mixed"
                corrected = (
                    rng.choice(("negative", "neutral", "positive")) if rng.random() < 0.01 else None
                )
                answer_rows.append(
                    (
                        answer_id,
                        n,
                        1 + n % 50_000,
                        False,
                        scale,
                        score,
                        label,
                        corrected,
                        answered_at,
                    )
                )
                if low or label == "mixed":
                    low_answers.append((answer_id, answered_at, False))
                yield (
                    n,
                    n,
                    1 + n % 50_000,
                    "answered",
                    scale,
                    due,
                    due,
                    due,
                    answered_at,
                    occurred,
                )
            elif sent:
                yield (n, n, 1 + n % 50_000, "expired", scale, due, due, due, None, occurred)
            else:
                yield (n, n, 1 + n % 50_000, "skipped", scale, due, None, None, None, occurred)
        for k in range(shape.unsolicited):
            answer_id += 1
            when = at(rng.random())
            label = rng.choices(("negative", "neutral", "positive", "unknown"), (5, 2, 2, 1))[0]
            answer_rows.append(
                (answer_id, None, 1 + k % 50_000, True, None, None, label, None, when)
            )
            if label == "negative":
                low_answers.append((answer_id, when, True))

    def answers() -> Iterator[tuple]:
        yield from answer_rows

    def answer_reasons() -> Iterator[tuple]:
        for answer_id, _, unsolicited in low_answers:
            if not unsolicited:
                for reason in rng.sample(range(1, len(REASON_CODES) + 1), rng.randint(1, 2)):
                    yield (answer_id, reason)

    def reasons() -> Iterator[tuple]:
        for n, code in enumerate(REASON_CODES, start=1):
            yield (n, code, code.replace("_", " ").capitalize(), n, False, start)

    def staff_chats() -> Iterator[tuple]:
        for n in range(1, 4):
            yield (n, -100_000 - n, f"Team {n}", False, True, start)

    def cases() -> Iterator[tuple]:
        chosen = (
            low_answers if len(low_answers) <= shape.cases else rng.sample(low_answers, shape.cases)
        )
        for n, (answer_id, opened, unsolicited) in enumerate(chosen, start=1):
            trigger = "unsolicited" if unsolicited else "low_score"
            roll = rng.random()
            responded = opened + timedelta(minutes=rng.randint(5, 2000)) if roll > 0.1 else None
            resolved = (
                responded + timedelta(hours=rng.randint(1, 90))
                if responded and roll > 0.3
                else None
            )
            state = "open" if responded is None else "taken" if resolved is None else "resolved"
            recovered = None
            if resolved is not None and rng.random() < 0.6:
                recovered = rng.random() < 0.8
                state = "confirmed" if recovered else "reopened"
            yield (
                n,
                answer_id,
                None,
                state,
                "medium",
                trigger,
                1 + n % 3,
                opened + timedelta(hours=24),
                opened + timedelta(days=3),
                responded,
                resolved,
                recovered,
                opened,
            )

    return {
        "customers": customers(),
        "visits": visits(),
        "surveys": survey_rows(),
        "answers": answers(),
        "reasons": reasons(),
        "answer_reasons": answer_reasons(),
        "staff_chats": staff_chats(),
        "cases": cases(),
    }


COLUMNS = {
    "customers": ("id", "external_ref", "created_at"),
    "visits": (
        "id",
        "external_id",
        "customer_id",
        "location",
        "occurred_at",
        "source",
        "created_at",
    ),
    "surveys": (
        "id",
        "visit_id",
        "customer_id",
        "state",
        "scale",
        "due_at",
        "sent_at",
        "expires_at",
        "answered_at",
        "created_at",
    ),
    "answers": (
        "id",
        "survey_id",
        "customer_id",
        "unsolicited",
        "scale",
        "score",
        "sentiment_label",
        "sentiment_corrected",
        "created_at",
    ),
    "reasons": ("id", "code", "label", "position", "hidden", "created_at"),
    "answer_reasons": ("answer_id", "reason_id"),
    "staff_chats": ("id", "chat_id", "title", "is_forum", "active", "created_at"),
    "cases": (
        "id",
        "answer_id",
        "customer_id",
        "state",
        "severity",
        "trigger",
        "staff_chat_id",
        "first_response_due_at",
        "resolution_due_at",
        "first_responded_at",
        "resolved_at",
        "recovered",
        "created_at",
    ),
}
