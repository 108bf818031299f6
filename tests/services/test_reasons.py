"""Reason chips as admins manage them, on a real database: the /reasons parser, codes made from
labels, and each change (add, rename, move, hide, show) with what customers are offered after it
and what the audit log holds."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.conversation import DEFAULT_REASONS
from bot.reasons import (
    ADD_ACTION,
    HIDE_ACTION,
    LABEL_MAX,
    MAX_OFFERED,
    MOVE_ACTION,
    RENAME_ACTION,
    SHOW_ACTION,
    Action,
    ReasonCommand,
    ReasonService,
    Refusal,
    parse,
    slug,
    was_translated,
)
from storage.models import Answer, AnswerReason, AuditEntry, Reason
from storage.reason_repository import ReasonRepository

BOSS = 5_000_001
DEFAULT_LABELS = [label for _, label in DEFAULT_REASONS]


@pytest.fixture
async def service(
    session_factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> ReasonService:
    async with session_factory.begin() as session:
        await ReasonRepository(session).ensure_defaults(DEFAULT_REASONS, now=clock.now())
    return ReasonService(session_factory, clock)


async def offered(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """The chip labels customers are offered, in order (what the conversation reads)."""
    async with sessions() as session:
        return [reason.label for reason in await ReasonRepository(session).offered()]


async def audit(sessions: async_sessionmaker[AsyncSession]) -> list[tuple]:
    async with sessions() as session:
        entries = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [
            (e.action, e.actor_id, e.actor_name, e.target, e.old_value, e.new_value)
            for e in entries
        ]


async def answered(sessions, clock: FakeClock, code: str, times: int) -> None:
    """``times`` answers that chose the reason with this code."""
    async with sessions.begin() as session:
        reason_id = await session.scalar(select(Reason.id).where(Reason.code == code))
        for _ in range(times):
            answer = Answer(unsolicited=True, created_at=clock.now())
            session.add(answer)
            await session.flush()
            session.add(AnswerReason(answer_id=answer.id, reason_id=reason_id))


# ------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (None, ReasonCommand(Action.LIST)),
        ("  ", ReasonCommand(Action.LIST)),
        ("list", ReasonCommand(Action.LIST)),
        ("add Cold food", ReasonCommand(Action.ADD, label="Cold food")),
        ("ADD  Cold  food ", ReasonCommand(Action.ADD, label="Cold  food")),
        ("rename 3 Slow service", ReasonCommand(Action.RENAME, ref="3", label="Slow service")),
        ("rename long_wait Slow", ReasonCommand(Action.RENAME, ref="long_wait", label="Slow")),
        ("move long_wait 1", ReasonCommand(Action.MOVE, ref="long_wait", place=1)),
        ("move 4 0", ReasonCommand(Action.MOVE, ref="4", place=0)),
        ("hide 3", ReasonCommand(Action.HIDE, ref="3")),
        ("show other", ReasonCommand(Action.SHOW, ref="other")),
    ],
)
def test_the_forms_of_reasons_are_understood(args, expected) -> None:
    assert parse(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        "list all",  # extra
        "add",  # missing label
        "add   ",
        "rename 3",  # missing label
        "rename",
        "move 3",  # missing place
        "move 3 first",  # not a number
        "move 3 1 2",  # extra
        "move",
        "hide",
        "hide 3 4",  # extra
        "show",
        "delete 3",  # no such action
        "3",
    ],
)
def test_anything_else_is_refused_for_the_usage_line(args) -> None:
    assert parse(args) is None


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("Cold food", "cold_food"),
        ("Cold food!!", "cold_food"),
        ("  Café crème, brûlée ", "cafe_creme_brulee"),
        ("Wi-Fi didn't work", "wi_fi_didn_t_work"),
        ("上菜太慢", ""),  # no ASCII letters
        ("404", ""),  # a code must not look like a number from the list
        ("x" * 80, "x" * 48),
    ],
)
def test_codes_are_ascii_slugs_of_the_label(label: str, code: str) -> None:
    assert slug(label) == code


def test_a_default_chip_is_translated_only_while_it_keeps_its_english_label() -> None:
    assert was_translated("long_wait", "Waited too long")
    assert not was_translated("long_wait", "Slow service")
    assert not was_translated("cold_food", "Cold food")


# ------------------------------------------------------------------------------------ listing


async def test_the_listing_numbers_offered_reasons_then_hidden_ones_with_their_answers(
    service: ReasonService, session_factory, clock: FakeClock
) -> None:
    await answered(session_factory, clock, "long_wait", 3)
    await answered(session_factory, clock, "on_hold", 2)
    assert (await service.hide("on_hold", by=BOSS)).ok

    listing = await service.listing()
    assert [(i.n, i.label, i.hidden) for i in listing[:2]] == [
        (1, "Rude or indifferent staff", False),
        (2, "Waited too long", False),
    ]
    assert listing[1].answers == 3 and listing[0].answers == 0
    last = listing[-1]
    assert (last.n, last.code, last.hidden, last.answers) == (10, "on_hold", True, 2)
    assert [i.hidden for i in listing] == [False] * 9 + [True]


# ------------------------------------------------------------------------------------ add


async def test_an_added_reason_is_offered_last_with_a_code_from_its_label_and_audited(
    service: ReasonService, session_factory
) -> None:
    change = await service.add("  Cold   food ", by=BOSS, by_name="Bea")

    assert change.ok and change.reason is not None
    assert (change.reason.n, change.reason.label, change.reason.code) == (
        11,
        "Cold food",
        "cold_food",
    )
    assert await offered(session_factory) == [*DEFAULT_LABELS, "Cold food"]
    assert await audit(session_factory) == [
        (ADD_ACTION, BOSS, "Bea", "reason:cold_food", None, {"label": "Cold food", "place": 11})
    ]


async def test_codes_stay_unique_and_never_borrow_a_default_chips_translations(
    session_factory, clock: FakeClock
) -> None:
    service = ReasonService(session_factory, clock)  # no defaults put in: an empty table
    first = await service.add("Unclean", by=BOSS)
    assert first.reason is not None and first.reason.code == "unclean_2"  # "unclean" is reserved
    second = await service.add("Long wait", by=BOSS)
    assert second.reason is not None and second.reason.code == "long_wait_2"
    chinese = await service.add("上菜太慢", by=BOSS)
    assert chinese.reason is not None and chinese.reason.code == "reason_3"
    again = await service.add("Long-wait!", by=BOSS)
    assert again.reason is not None and again.reason.code == "long_wait_3"
    assert [i.label for i in await service.listing()] == [
        "Unclean",
        "Long wait",
        "上菜太慢",
        "Long-wait!",
    ]


async def test_a_label_is_one_to_64_characters_and_not_an_offered_reasons(
    service: ReasonService, session_factory
) -> None:
    too_long = await service.add("x" * (LABEL_MAX + 1), by=BOSS)
    assert too_long.refusal is Refusal.LABEL_TOO_LONG
    assert (await service.add("y" * LABEL_MAX, by=BOSS)).ok

    taken = await service.add("WAITED TOO LONG", by=BOSS)
    assert taken.refusal is Refusal.LABEL_TAKEN
    assert taken.other is not None and (taken.other.n, taken.other.code) == (2, "long_wait")

    assert (await service.add("   ", by=BOSS)).refusal is Refusal.LABEL_EMPTY
    assert len(await offered(session_factory)) == 11
    assert len(await audit(session_factory)) == 1  # only the one that was added


async def test_a_hidden_reasons_label_is_offered_back_rather_than_added_twice(
    service: ReasonService,
) -> None:
    await service.hide("on_hold", by=BOSS)
    again = await service.add("kept on hold", by=BOSS)
    assert again.refusal is Refusal.LABEL_HIDDEN
    assert again.other is not None and again.other.code == "on_hold"


async def test_at_most_twenty_reasons_are_offered(service: ReasonService, session_factory) -> None:
    for n in range(MAX_OFFERED - len(DEFAULT_REASONS)):
        assert (await service.add(f"Extra {n}", by=BOSS)).ok
    refused = await service.add("One too many", by=BOSS)
    assert (refused.refusal, refused.offered) == (Refusal.TOO_MANY, MAX_OFFERED)

    await service.hide("other", by=BOSS)
    assert (await service.add("One too many", by=BOSS)).ok
    # Now "other" cannot come back until another is hidden.
    assert (await service.show("other", by=BOSS)).refusal is Refusal.TOO_MANY
    assert len(await offered(session_factory)) == MAX_OFFERED


# ------------------------------------------------------------------------------------ rename


async def test_rename_by_number_or_code_keeps_the_code_and_is_audited(
    service: ReasonService, session_factory
) -> None:
    change = await service.rename("2", "Slow service", by=BOSS, by_name="Bea")
    assert change.ok and change.reason is not None
    assert (change.reason.code, change.reason.label, change.old_label) == (
        "long_wait",
        "Slow service",
        "Waited too long",
    )
    assert (await service.rename("LONG_WAIT", "Slow  service ", by=BOSS)).refusal is (
        Refusal.UNCHANGED
    )
    taken = await service.rename("long_wait", "other", by=BOSS)
    assert taken.refusal is Refusal.LABEL_TAKEN and taken.other is not None
    assert taken.other.code == "other"
    # Only the case changes: that is a rename of its own.
    assert (await service.rename("long_wait", "slow service", by=BOSS)).ok

    assert (await offered(session_factory))[1] == "slow service"
    assert [entry[:6] for entry in await audit(session_factory)] == [
        (RENAME_ACTION, BOSS, "Bea", "reason:long_wait", "Waited too long", "Slow service"),
        (RENAME_ACTION, BOSS, None, "reason:long_wait", "Slow service", "slow service"),
    ]


async def test_unknown_numbers_and_codes_are_refused(service: ReasonService) -> None:
    for ref in ("0", "11", "nope"):
        assert (await service.rename(ref, "X", by=BOSS)).refusal is Refusal.NO_SUCH_REASON
        assert (await service.move(ref, 1, by=BOSS)).refusal is Refusal.NO_SUCH_REASON
        assert (await service.hide(ref, by=BOSS)).refusal is Refusal.NO_SUCH_REASON
        assert (await service.show(ref, by=BOSS)).refusal is Refusal.NO_SUCH_REASON


# ------------------------------------------------------------------------------------ move


async def test_move_puts_a_chip_at_its_new_place_for_customers(
    service: ReasonService, session_factory
) -> None:
    change = await service.move("other", 1, by=BOSS, by_name="Bea")
    assert change.ok and change.reason is not None
    assert (change.reason.n, change.old_place) == (1, 10)
    assert await offered(session_factory) == ["Other", *DEFAULT_LABELS[:-1]]

    assert (await service.move("3", 10, by=BOSS)).ok  # "Waited too long" to the end
    after = await offered(session_factory)
    assert after[-1] == "Waited too long" and after[:2] == ["Other", "Rude or indifferent staff"]
    assert [e[0] for e in await audit(session_factory)] == [MOVE_ACTION, MOVE_ACTION]
    assert (await audit(session_factory))[0][3:] == ("reason:other", 10, 1)


async def test_move_names_the_range_and_leaves_hidden_chips_alone(service: ReasonService) -> None:
    for place in (0, 11, -1):
        refused = await service.move("other", place, by=BOSS)
        assert (refused.refusal, refused.offered) == (Refusal.PLACE_OUT_OF_RANGE, 10)
    assert (await service.move("other", 10, by=BOSS)).refusal is Refusal.UNCHANGED
    await service.hide("on_hold", by=BOSS)
    assert (await service.move("on_hold", 1, by=BOSS)).refusal is Refusal.HIDDEN


# ------------------------------------------------------------------------------------ hide, show


async def test_a_hidden_reason_is_not_offered_but_keeps_its_answers_and_comes_back_last(
    service: ReasonService, session_factory, clock: FakeClock
) -> None:
    await answered(session_factory, clock, "rude_staff", 4)
    hidden = await service.hide("1", by=BOSS, by_name="Bea")
    assert hidden.ok and hidden.reason is not None
    assert (hidden.reason.hidden, hidden.reason.n, hidden.reason.answers) == (True, 10, 4)
    assert "Rude or indifferent staff" not in await offered(session_factory)
    assert (await service.hide("rude_staff", by=BOSS)).refusal is Refusal.UNCHANGED

    shown = await service.show("rude_staff", by=BOSS)
    assert shown.ok and shown.reason is not None
    assert (shown.reason.n, shown.reason.answers) == (10, 4)
    assert (await offered(session_factory))[-1] == "Rude or indifferent staff"
    assert (await service.show("rude_staff", by=BOSS)).refusal is Refusal.UNCHANGED
    assert [e[0::3] for e in await audit(session_factory)] == [
        (HIDE_ACTION, "reason:rude_staff"),
        (SHOW_ACTION, "reason:rude_staff"),
    ]


async def test_customers_always_keep_one_chip(service: ReasonService, session_factory) -> None:
    for code, _ in DEFAULT_REASONS[:-1]:
        assert (await service.hide(code, by=BOSS)).ok
    last = await service.hide("other", by=BOSS)
    assert last.refusal is Refusal.LAST_OFFERED
    assert await offered(session_factory) == ["Other"]


async def test_a_hidden_chip_cannot_come_back_beside_one_with_its_label(
    service: ReasonService,
) -> None:
    await service.hide("long_wait", by=BOSS)
    # Renaming a hidden chip is allowed (it is not offered) …
    assert (await service.rename("long_wait", "Other", by=BOSS)).ok
    # … but it is not offered again beside a chip of the same name.
    refused = await service.show("long_wait", by=BOSS)
    assert refused.refusal is Refusal.LABEL_TAKEN
    assert refused.other is not None and refused.other.code == "other"
