"""Routing rules as admins manage them, on a real database: the /route add line, adding and
removing rules (with what `Routing` then chooses), and the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.conversation import DEFAULT_REASONS
from bot.routes import (
    ADD_ACTION,
    LOCATION_MAX,
    REMOVE_ACTION,
    ParseError,
    Problem,
    Refusal,
    RouteService,
    RouteSpec,
    parse_route,
)
from bot.staffchats import Routing
from handlers.admin_routes import describe, listing
from storage.models import AuditEntry, CaseSeverity, StaffChat
from storage.reason_repository import ReasonRepository
from storage.staff_repository import StaffRepository

BOSS = 5_000_001
DOWNTOWN = -1_001_000_000_001
OLD_TOWN = -1_001_000_000_002
GONE = -1_001_000_000_003


@pytest.fixture
async def chats(session_factory, clock: FakeClock) -> dict[str, StaffChat]:
    """Three staff chats: two active, one removed; and the default reasons."""
    async with session_factory.begin() as session:
        staff = StaffRepository(session)
        made = {}
        for chat_id, title in (
            (DOWNTOWN, "Downtown team"),
            (OLD_TOWN, "Old Town team"),
            (GONE, "Night shift"),
        ):
            made[title] = (
                await staff.upsert(chat_id, title=title, is_forum=False, by=BOSS, now=clock.now())
            ).chat
            clock.advance(seconds=1)
        await staff.deactivate(GONE)
        await ReasonRepository(session).ensure_defaults(DEFAULT_REASONS, now=clock.now())
    return made


@pytest.fixture
def service(session_factory, clock: FakeClock) -> RouteService:
    return RouteService(session_factory, clock)


async def audit(sessions: async_sessionmaker[AsyncSession]) -> list[tuple]:
    async with sessions() as session:
        entries = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(e.action, e.actor_id, e.actor_name, e.old_value, e.new_value) for e in entries]


async def routed(
    sessions, *, location: str | None, reasons: list[str], severity=CaseSeverity.MEDIUM
) -> int | None:
    """The Telegram chat id a case goes to."""
    async with sessions() as session:
        chat = await Routing().choose(
            session, location=location, reason_codes=reasons, severity=severity
        )
    return chat.chat_id if chat else None


# ------------------------------------------------------------------------------------ the line


@pytest.mark.parametrize(
    ("line", "spec"),
    [
        (
            'location="Old Town" reason=long_wait severity=HIGH -> Old Town team',
            RouteSpec(
                chat="Old Town team",
                location="Old Town",
                reason="long_wait",
                severity=CaseSeverity.HIGH,
            ),
        ),
        (
            "location=“Old  Town” → “Old Town team”",  # a phone's quotes and arrow
            RouteSpec(chat="Old Town team", location="Old Town"),
        ),
        (
            "severity=critical->-1001000000001",
            RouteSpec(chat="-1001000000001", severity="critical"),
        ),
        ("reason = 'Waited too long' -> x", RouteSpec(chat="x", reason="Waited too long")),
        ("location=O'Brien's -> Pub", RouteSpec(chat="Pub", location="O'Brien's")),
        ('location="A->B" -> C', RouteSpec(chat="C", location="A->B")),
    ],
)
def test_the_route_line_is_understood(line: str, spec: RouteSpec) -> None:
    assert parse_route(line) == spec


def test_a_chat_typed_as_a_number_is_a_chat_id() -> None:
    assert RouteSpec(chat="-1001000000001").chat_id == -1_001_000_000_001
    assert RouteSpec(chat="Team 7").chat_id is None


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("location=Downtown Downtown team", ParseError(Problem.STRAY_TEXT, "Downtown")),
        ("location=Downtown", ParseError(Problem.NO_ARROW)),
        ("", ParseError(Problem.NO_ARROW)),
        ("location=Downtown ->  ", ParseError(Problem.NO_CHAT)),
        ("-> Downtown team", ParseError(Problem.NO_MATCHERS)),
        ("place=Downtown -> Team", ParseError(Problem.UNKNOWN_MATCHER, "place")),
        ("location=A location=B -> Team", ParseError(Problem.REPEATED_MATCHER, "location")),
        ("location= -> Team", ParseError(Problem.EMPTY_VALUE, "location")),
        ('location="" -> Team', ParseError(Problem.EMPTY_VALUE, "location")),
        ('location="Old Town -> Team', ParseError(Problem.UNCLOSED_QUOTE, "location")),
        ('location="Old Town" Team', ParseError(Problem.STRAY_TEXT, "Team")),
        ("location=Old Town -> Team", ParseError(Problem.STRAY_TEXT, "Town")),
        ("severity=urgent -> Team", ParseError(Problem.BAD_SEVERITY, "urgent")),
        (f"location={'x' * (LOCATION_MAX + 1)} -> Team", ParseError(Problem.LOCATION_TOO_LONG)),
    ],
)
def test_a_wrong_route_line_says_what_is_wrong(line: str, error: ParseError) -> None:
    assert parse_route(line) == error


# ------------------------------------------------------------------------------------ add


async def test_an_added_rule_routes_matching_cases_and_is_audited(
    service: RouteService, chats, session_factory
) -> None:
    assert await routed(session_factory, location="Old Town", reasons=[]) == DOWNTOWN  # default

    spec = parse_route('location="old town" reason="waited TOO long" -> old town TEAM')
    assert isinstance(spec, RouteSpec)
    added = await service.add(spec, by=BOSS, by_name="Bea")

    assert added.ok and added.rule is not None and added.shadowed_by is None
    rule = added.rule
    assert (rule.n, rule.location, rule.reason_code, rule.severity) == (
        1,
        "old town",
        "long_wait",  # the label was turned into the code
        None,
    )
    assert (rule.chat_id, rule.chat_title, rule.active) == (OLD_TOWN, "Old Town team", True)
    assert describe(rule) == 'location="old town" reason=long_wait → Old Town team (-1001000000002)'
    assert await routed(session_factory, location="Old Town", reasons=["long_wait"]) == OLD_TOWN
    assert await routed(session_factory, location="Old Town", reasons=["rude_staff"]) == DOWNTOWN
    assert await audit(session_factory) == [
        (
            ADD_ACTION,
            BOSS,
            "Bea",
            None,
            {
                "location": "old town",
                "reason": "long_wait",
                "chat": "Old Town team",
                "chat_id": OLD_TOWN,
                "place": 1,
            },
        )
    ]


async def test_a_chat_may_be_named_by_its_id_and_severity_alone_is_a_rule(
    service: RouteService, chats, session_factory
) -> None:
    added = await service.add(
        RouteSpec(chat=str(OLD_TOWN), severity=CaseSeverity.CRITICAL), by=BOSS
    )
    assert added.ok
    critical = await routed(
        session_factory, location=None, reasons=[], severity=CaseSeverity.CRITICAL
    )
    assert critical == OLD_TOWN
    assert await routed(session_factory, location=None, reasons=[]) == DOWNTOWN


async def test_unknown_reasons_and_chats_are_refused_and_nothing_is_written(
    service: RouteService, chats, session_factory
) -> None:
    no_reason = await service.add(RouteSpec(chat="Old Town team", reason="cold_soup"), by=BOSS)
    assert no_reason.refusal is Refusal.UNKNOWN_REASON
    assert no_reason.known_reasons[:2] == ("rude_staff", "long_wait")

    no_chat = await service.add(RouteSpec(chat="Kitchen", location="Downtown"), by=BOSS)
    assert no_chat.refusal is Refusal.UNKNOWN_CHAT
    assert (await service.add(RouteSpec(chat="-100", location="x"), by=BOSS)).refusal is (
        Refusal.UNKNOWN_CHAT
    )

    inactive = await service.add(RouteSpec(chat="night SHIFT", location="Downtown"), by=BOSS)
    assert inactive.refusal is Refusal.INACTIVE_CHAT
    assert [chat.chat_id for chat in inactive.chats] == [GONE]

    assert (await service.listing()).rules == []
    assert await audit(session_factory) == []


async def test_a_title_two_active_chats_share_asks_for_the_chat_id(
    service: RouteService, chats, session_factory, clock: FakeClock
) -> None:
    async with session_factory.begin() as session:
        await StaffRepository(session).upsert(
            -1_001_000_000_009, title="downtown TEAM", is_forum=False, by=BOSS, now=clock.now()
        )
    refused = await service.add(RouteSpec(chat="Downtown team", location="x"), by=BOSS)
    assert refused.refusal is Refusal.AMBIGUOUS_CHAT
    assert sorted(chat.chat_id for chat in refused.chats) == [-1_001_000_000_009, DOWNTOWN]


async def test_the_same_rule_twice_is_refused_and_a_rule_caught_earlier_is_flagged(
    service: RouteService, chats
) -> None:
    first = await service.add(RouteSpec(chat="Old Town team", location="Old Town"), by=BOSS)
    again = await service.add(RouteSpec(chat=str(OLD_TOWN), location="OLD TOWN"), by=BOSS)
    assert again.refusal is Refusal.DUPLICATE
    assert again.rule is not None and again.rule.n == 1

    narrower = await service.add(
        RouteSpec(chat="Downtown team", location="old town", severity=CaseSeverity.HIGH), by=BOSS
    )
    assert narrower.ok and narrower.shadowed_by is not None
    assert first.rule is not None and narrower.shadowed_by.id == first.rule.id

    other = await service.add(RouteSpec(chat="Downtown team", severity=CaseSeverity.LOW), by=BOSS)
    assert other.ok and other.shadowed_by is None


# ------------------------------------------------------------------------------------ list, remove


async def test_the_listing_marks_rules_of_removed_chats_and_names_the_default_chat(
    service: RouteService, chats, session_factory
) -> None:
    await service.add(RouteSpec(chat="Old Town team", location="Old Town"), by=BOSS)
    await service.add(RouteSpec(chat="Downtown team", reason="other"), by=BOSS)
    async with session_factory.begin() as session:
        await StaffRepository(session).deactivate(OLD_TOWN)

    found = await service.listing()
    assert [(r.n, r.chat_id, r.active) for r in found.rules] == [
        (1, OLD_TOWN, False),
        (2, DOWNTOWN, True),
    ]
    assert found.default is not None and found.default.chat_id == DOWNTOWN
    text = listing(found)
    assert (
        '1. location="Old Town" → Old Town team (-1001000000002) (inactive: not used until '
        "/staff_here is sent there again)"
    ) in text
    assert "2. reason=other → Downtown team (-1001000000001)\n" in text
    assert "a case goes to the default chat: Downtown team (-1001000000001)." in text


async def test_remove_takes_the_numbered_rule_and_keeps_the_others_in_order(
    service: RouteService, chats, session_factory
) -> None:
    for location in ("A", "B", "C"):
        await service.add(RouteSpec(chat="Old Town team", location=location), by=BOSS)

    assert (await service.remove(4, by=BOSS)).rule is None
    assert (await service.remove(0, by=BOSS)).count == 3
    removed = await service.remove(2, by=BOSS, by_name="Bea")
    assert removed.rule is not None and removed.rule.location == "B"
    assert [(r.n, r.location) for r in (await service.listing()).rules] == [(1, "A"), (2, "C")]
    assert await routed(session_factory, location="B", reasons=[]) == DOWNTOWN
    assert (await audit(session_factory))[-1] == (
        REMOVE_ACTION,
        BOSS,
        "Bea",
        {"location": "B", "chat": "Old Town team", "chat_id": OLD_TOWN, "place": 2},
        None,
    )


async def test_with_no_staff_chat_the_listing_says_how_to_register_one(
    service: RouteService,
) -> None:
    found = await service.listing()
    assert found.rules == [] and found.default is None
    assert "send /staff_here there" in listing(found)
