"""The CSV export as a service, on a real database: the exact bytes a spreadsheet opens (BOM,
header, quoting, Chinese), what is left out (test surveys, other periods, unsolicited feedback,
an erased customer's words), formula injection defused, and paging that loses nothing."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.export import BOM, EXPORT_ACTION, HEADER, ExportService, defuse, file_name
from bot.periods import Period, parse_period
from storage.models import (
    Answer,
    AnswerReason,
    AnswerStage,
    AuditEntry,
    Case,
    CaseSeverity,
    CaseState,
    CaseTrigger,
    Customer,
    Reason,
    SentimentLabel,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
    VisitSource,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # the FakeClock starts here
JANUARY = Period(
    datetime(2025, 12, 31, 16, 0, tzinfo=UTC), datetime(2026, 1, 31, 16, 0, tzinfo=UTC), "Jan"
)
CHINESE = "菜是冷的，服务员也不理人。\n下次不来了"
REASONS = (("cold_food", "Cold food", 1), ("slow", "Waited too long", 2), ("rude", "Rude staff", 3))

_numbers = itertools.count(1)


# ------------------------------------------------------------------------------------ the world


@dataclass
class Seeded:
    survey_id: int
    answer_id: int | None = None
    case_id: int | None = None


async def add_reasons(session: AsyncSession) -> dict[str, int]:
    """The reason chips (code, label, position), by code → id."""
    ids = {}
    for code, label, position in REASONS:
        reason = Reason(code=code, label=label, position=position, hidden=False, created_at=NOON)
        session.add(reason)
        await session.flush()
        ids[code] = reason.id
    return ids


async def add_survey(
    session: AsyncSession,
    visit_id: str,
    occurred_at: datetime,
    *,
    location: str | None = "Downtown",
    staff: str | None = "Anna",
    service: str | None = "Lunch",
    state: SurveyState = SurveyState.ANSWERED,
    scale: SurveyScale = SurveyScale.CSAT,
    score: int | None = None,
    comment: str | None = None,
    reasons: tuple[int, ...] = (),
    sentiment: SentimentLabel | None = None,
    corrected: SentimentLabel | None = None,
    suggested: list[str] | None = None,
    contact: bool | None = None,
    case: dict[str, Any] | None = None,
    erased: bool = False,
) -> Seeded:
    """One visit with its survey, and (``score`` given) its answer, and (``case``) its case;
    surveys go out an hour after the visit and are answered ten minutes later."""
    number = next(_numbers)
    customer = Customer(
        external_ref=None if erased else f"CRM-{number}",
        first_name=None if erased else "Mei",
        erased_at=occurred_at + timedelta(days=2) if erased else None,
        created_at=occurred_at,
    )
    session.add(customer)
    await session.flush()
    visit = Visit(
        external_id=visit_id,
        customer_id=customer.id,
        location=location,
        staff=staff,
        service=service,
        occurred_at=occurred_at,
        source=VisitSource.API,
        created_at=occurred_at,
    )
    session.add(visit)
    await session.flush()
    sent = occurred_at + timedelta(hours=1)
    answered = sent + timedelta(minutes=10) if score is not None else None
    survey = Survey(
        visit_id=visit.id,
        customer_id=customer.id,
        state=state,
        scale=scale,
        due_at=sent,
        sent_at=sent if state is not SurveyState.SCHEDULED else None,
        answered_at=answered,
        created_at=occurred_at,
    )
    session.add(survey)
    await session.flush()
    seeded = Seeded(survey.id)
    if score is None:
        return seeded
    answer = Answer(
        survey_id=survey.id,
        customer_id=customer.id,
        scale=scale,
        score=score,
        comment=comment,
        sentiment_label=sentiment,
        sentiment_corrected=corrected,
        suggested_reasons=suggested,
        contact_requested=contact,
        stage=AnswerStage.DONE,
        completed_at=answered,
        created_at=answered,
    )
    session.add(answer)
    await session.flush()
    seeded.answer_id = answer.id
    for reason_id in reasons:
        session.add(AnswerReason(answer_id=answer.id, reason_id=reason_id))
    if case is not None:
        row = Case(
            answer_id=answer.id,
            customer_id=customer.id,
            state=case.get("state", CaseState.OPEN),
            severity=case.get("severity", CaseSeverity.MEDIUM),
            trigger=CaseTrigger.LOW_SCORE,
            first_responded_at=case.get("first_response"),
            resolved_at=case.get("resolved"),
            recovered=case.get("recovered"),
            created_at=answered,
        )
        session.add(row)
        await session.flush()
        seeded.case_id = row.id
    await session.flush()
    return seeded


async def add_unsolicited(session: AsyncSession, at: datetime, comment: str) -> None:
    customer = Customer(external_ref=f"CRM-{next(_numbers)}", created_at=at)
    session.add(customer)
    await session.flush()
    session.add(
        Answer(
            customer_id=customer.id,
            unsolicited=True,
            comment=comment,
            sentiment_label=SentimentLabel.NEGATIVE,
            stage=AnswerStage.DONE,
            created_at=at,
        )
    )
    await session.flush()


async def export_bytes(
    sessions: async_sessionmaker[AsyncSession],
    period: Period = JANUARY,
    *,
    page: int = 2000,
    max_bytes: int | None = None,
) -> tuple[bytes, Any]:
    out = io.BytesIO()
    exported = await ExportService(sessions, FakeClock(), page=page).write(
        out, period, SHANGHAI, max_bytes=max_bytes
    )
    return out.getvalue(), exported


def parse(data: bytes) -> list[list[str]]:
    """The rows a spreadsheet reads: BOM required, then RFC 4180 CSV (header first)."""
    assert data.startswith(BOM.encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# ---------------------------------------------------------------------------------- the content


async def test_the_csv_is_exactly_what_a_spreadsheet_should_open(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory.begin() as session:
        reason = await add_reasons(session)
        complaint = await add_survey(
            session,
            "POS-1001",
            datetime(2026, 1, 3, 4, 30, tzinfo=UTC),  # 12:30 in Shanghai
            score=2,
            comment=CHINESE,
            reasons=(reason["rude"], reason["cold_food"]),  # listed in chip order
            sentiment=SentimentLabel.NEGATIVE,
            suggested=["slow", "gone_now"],  # a code no reason has any more stays a code
            contact=True,
            case={
                "state": CaseState.CONFIRMED,
                "severity": CaseSeverity.CRITICAL,
                "first_response": datetime(2026, 1, 3, 6, 0, tzinfo=UTC),
                "resolved": datetime(2026, 1, 4, 2, 0, tzinfo=UTC),
                "recovered": True,
            },
        )
        await add_survey(
            session,
            "POS-1002",
            datetime(2026, 1, 10, 1, 0, tzinfo=UTC),
            location=None,
            staff=None,
            service=None,
            state=SurveyState.SCHEDULED,
        )
        await add_survey(
            session,
            "POS-1003",
            datetime(2026, 1, 20, 9, 0, tzinfo=UTC),
            scale=SurveyScale.NPS,
            score=9,
            comment='Great, "really" great',
            sentiment=SentimentLabel.POSITIVE,
            corrected=SentimentLabel.MIXED,  # staff know better: the effective sentiment
            contact=False,
        )
        # Left out: an admin's test survey, visits outside the period (edges in Shanghai
        # time), unsolicited feedback.
        await add_survey(
            session, "test:5100001:77:1767600000", datetime(2026, 1, 4, tzinfo=UTC), score=1
        )
        await add_survey(session, "POS-0999", datetime(2025, 12, 31, 15, 59, tzinfo=UTC), score=5)
        await add_survey(session, "POS-2000", datetime(2026, 1, 31, 16, 0, tzinfo=UTC), score=5)
        await add_unsolicited(session, datetime(2026, 1, 6, tzinfo=UTC), "Unasked and unhappy")

    data, exported = await export_bytes(session_factory)

    expected = (
        "\ufeff"
        + ",".join(HEADER)
        + "\r\n"
        + "POS-1001,2026-01-03T12:30:00+08:00,Downtown,Anna,Lunch,answered,"
        "2026-01-03T13:30:00+08:00,2026-01-03T13:40:00+08:00,csat,2,"
        'Cold food; Rude staff,"菜是冷的，服务员也不理人。\n下次不来了",negative,no,'
        f"Waited too long; gone_now,yes,{complaint.case_id},confirmed,critical,"
        "2026-01-03T13:40:00+08:00,2026-01-03T14:00:00+08:00,2026-01-04T10:00:00+08:00,yes\r\n"
        "POS-1002,2026-01-10T09:00:00+08:00,,,,scheduled,,,csat,,,,,,,,,,,,,,\r\n"
        "POS-1003,2026-01-20T17:00:00+08:00,Downtown,Anna,Lunch,answered,"
        "2026-01-20T18:00:00+08:00,2026-01-20T18:10:00+08:00,nps,9,,"
        '"Great, ""really"" great",mixed,yes,,no,,,,,,,\r\n'
    )
    assert data.decode("utf-8") == expected
    assert (exported.rows, exported.size, exported.complete) == (3, len(data), True)
    # Read back as a spreadsheet would: the Chinese comment, line break and all, in one cell.
    rows = parse(data)
    assert rows[0] == list(HEADER)
    assert rows[1][HEADER.index("comment")] == CHINESE


async def test_cells_a_spreadsheet_would_run_as_formulas_are_defused(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory.begin() as session:
        reason = await add_reasons(session)
        await session.execute(
            Reason.__table__.update().where(Reason.id == reason["rude"]).values(label="=1+1 rude")
        )
        await add_survey(
            session,
            "-42",
            datetime(2026, 1, 3, tzinfo=UTC),
            location='=HYPERLINK("http://evil.example","Click")',
            staff="+Anna",
            service="@SUM(A1:A9)",
            score=1,
            comment="\tcmd|' /C calc'!A0",
            reasons=(reason["rude"],),
        )
        await add_survey(
            session,
            "POS-7",
            datetime(2026, 1, 4, tzinfo=UTC),
            score=3,
            comment="\r=2+5",
            staff="Ann-Marie",  # a dash inside is nothing
        )

    rows = parse((await export_bytes(session_factory))[0])[1:]

    cell = {name: [row[HEADER.index(name)] for row in rows] for name in HEADER}
    assert cell["visit_id"] == ["'-42", "POS-7"]
    assert cell["location"] == ['\'=HYPERLINK("http://evil.example","Click")', "Downtown"]
    assert cell["staff"] == ["'+Anna", "Ann-Marie"]
    assert cell["service"] == ["'@SUM(A1:A9)", "Lunch"]
    assert cell["comment"] == ["'\tcmd|' /C calc'!A0", "'\r=2+5"]
    assert cell["reasons"] == ["'=1+1 rude", ""]
    # Scores stay numbers (no apostrophe): a spreadsheet can average them.
    assert cell["score"] == ["1", "3"]


async def test_an_erased_customer_shows_scores_but_no_words(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory.begin() as session:
        reason = await add_reasons(session)
        # As if a copy of the words survived /forget: the export still shows none of them.
        await add_survey(
            session,
            "POS-1",
            datetime(2026, 1, 3, tzinfo=UTC),
            score=1,
            comment="My name is Zebulon and the soup was cold",
            reasons=(reason["cold_food"],),
            sentiment=SentimentLabel.NEGATIVE,
            suggested=["cold_food"],
            contact=True,
            case={"state": CaseState.RESOLVED, "recovered": False},
            erased=True,
        )

    data, _ = await export_bytes(session_factory)

    assert b"Zebulon" not in data and b"CRM-" not in data and b"Mei" not in data
    [row] = parse(data)[1:]
    shown = dict(zip(HEADER, row, strict=True))
    assert shown["comment"] == shown["suggested_reasons"] == ""
    assert (shown["score"], shown["reasons"], shown["sentiment"]) == ("1", "Cold food", "negative")
    assert (shown["case_state"], shown["recovered"]) == ("resolved", "no")


async def test_pages_lose_nothing_and_keep_each_surveys_reasons(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory.begin() as session:
        reason = await add_reasons(session)
        chips = [(), (reason["slow"],), (reason["cold_food"], reason["slow"]), (reason["rude"],)]
        for n in range(9):
            await add_survey(
                session,
                f"POS-{n}",
                datetime(2026, 1, 3, tzinfo=UTC) + timedelta(hours=n),
                score=1 + n % 5,
                reasons=chips[n % 4],
            )
            if n == 4:  # a test survey in the middle of a page
                await add_survey(session, f"test:{n}", datetime(2026, 1, 3, tzinfo=UTC), score=1)

    whole, _ = await export_bytes(session_factory)
    paged, exported = await export_bytes(session_factory, page=2)

    assert paged == whole and exported.rows == 9
    rows = parse(paged)[1:]
    assert [row[0] for row in rows] == [f"POS-{n}" for n in range(9)]
    assert [row[HEADER.index("reasons")] for row in rows[:4]] == [
        "",
        "Waited too long",
        "Cold food; Waited too long",
        "Rude staff",
    ]


async def test_an_export_stops_once_it_passes_the_size_it_may_have(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory.begin() as session:
        for n in range(10):
            await add_survey(
                session, f"POS-{n}", datetime(2026, 1, 3, tzinfo=UTC), score=5, comment="x" * 500
            )

    data, exported = await export_bytes(session_factory, page=3, max_bytes=1000)

    assert not exported.complete
    assert exported.rows == 3 and exported.size == len(data) > 1000
    assert len(parse(data)) == 1 + 3


async def test_an_empty_period_gives_the_header_alone(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory.begin() as session:
        await add_survey(session, "POS-1", datetime(2025, 6, 1, tzinfo=UTC), score=4)

    data, exported = await export_bytes(session_factory)

    assert data == (BOM + ",".join(HEADER) + "\r\n").encode()
    assert exported.rows == 0 and exported.complete


async def test_an_export_is_audited_with_who_and_which_period(
    session_factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await ExportService(session_factory, clock).audit(
        JANUARY, 3, actor_id=5100001, actor_name="Bea"
    )

    async with session_factory() as session:
        [entry] = await session.scalars(select(AuditEntry))
    assert (entry.action, entry.actor_id, entry.actor_name, entry.target) == (
        EXPORT_ACTION,
        5100001,
        "Bea",
        "Jan",
    )
    assert entry.at == clock.now()
    assert entry.new_value == {
        "rows": 3,
        "from": "2025-12-31T16:00:00+00:00",
        "until": "2026-01-31T16:00:00+00:00",
    }


# ------------------------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        (None, ""),
        ("", ""),
        ("Downtown", "Downtown"),
        ("=1+1", "'=1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("-1", "'-1"),
        ("@user", "'@user"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("'quoted'", "'quoted'"),
    ],
)
def test_defuse(text: str | None, cell: str) -> None:
    assert defuse(text) == cell


@pytest.mark.parametrize(
    ("period", "name"),
    [
        ("2026-11", "hearback-2026-11.csv"),
        ("2026-12", "hearback-2026-12.csv"),
        ("2026", "hearback-2026.csv"),
        ("2026-11-05", "hearback-2026-11-05.csv"),
        ("2026-11-01..2026-11-20", "hearback-2026-11-01-to-2026-11-20.csv"),
        ("2026-11-01..2026-12-31", "hearback-2026-11-01-to-2026-12-31.csv"),
        ("lastmonth", "hearback-2026-10.csv"),
        ("30d", "hearback-2026-10-21-to-2026-11-20.csv"),
    ],
)
def test_file_names_say_the_period(period: str, name: str) -> None:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert file_name(parse_period(period, now, SHANGHAI), SHANGHAI) == name
