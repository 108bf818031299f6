"""Flood limits on an emulator clock the test moves by hand: no sleeping, no flakiness."""

from __future__ import annotations

from bot.emulator import BotAccount, Emulator, Limits, SimUser

from .conftest import ManualClock, Raw, expect


async def say(api: Raw, chat_id: int, text: str = "hi"):
    return await api("sendMessage", chat_id=chat_id, text=text)


async def test_a_private_chat_allows_a_burst_of_three_then_429(
    emu: Emulator, api: Raw, started: SimUser
) -> None:
    for _ in range(3):
        expect(await say(api, started.id), 200)
    reply = await say(api, started.id)
    expect(reply, 429, "Too Many Requests: retry after 1")
    assert reply.body["parameters"] == {"retry_after": 1}
    assert emu.stats.too_many_requests == 1 and emu.stats.flood_limited == 1


async def test_the_private_bucket_refills_one_per_second(
    api: Raw, started: SimUser, emu_clock: ManualClock
) -> None:
    for _ in range(3):
        await say(api, started.id)
    emu_clock.advance(0.5)
    expect(await say(api, started.id), 429, "Too Many Requests: retry after 1")
    emu_clock.advance(0.5)
    expect(await say(api, started.id), 200)
    expect(await say(api, started.id), 429)
    emu_clock.advance(3)  # refills to the burst size, not beyond
    for _ in range(3):
        expect(await say(api, started.id), 200)
    expect(await say(api, started.id), 429)


async def test_a_refused_message_uses_no_token(api: Raw, started: SimUser, emu_clock) -> None:
    for _ in range(3):
        await say(api, started.id)
    for _ in range(5):
        expect(await say(api, started.id), 429)
    emu_clock.advance(1)
    expect(await say(api, started.id), 200)


async def test_private_chats_have_separate_buckets(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    boris = emu.add_user("Boris")
    await boris.send(bot_account, "/start")
    for _ in range(3):
        expect(await say(api, started.id), 200)
    expect(await say(api, boris.id), 200)


async def test_a_group_allows_twenty_a_minute(
    emu: Emulator, api: Raw, bot_account: BotAccount, emu_clock: ManualClock
) -> None:
    group = emu.add_group("Staff")
    emu.add_bot_to_chat(bot_account, group)
    for i in range(20):
        expect(await say(api, group.id, f"case {i}"), 200)
        emu_clock.advance(0.1)
    reply = await say(api, group.id)
    # 2 s have passed, a token takes 3 s to come back: 1 s to wait.
    expect(reply, 429, "Too Many Requests: retry after 1")
    emu_clock.advance(1)
    expect(await say(api, group.id), 200)
    expect(await say(api, group.id), 429, "Too Many Requests: retry after 3")


async def test_thirty_a_second_per_bot_overall(
    emu: Emulator, api: Raw, bot_account: BotAccount
) -> None:
    people = [emu.add_user(f"User {i}") for i in range(11)]
    for person in people:
        await person.send(bot_account, "/start")
    answers = [await say(api, person.id) for person in people for _ in range(3)]
    assert [a.status for a in answers] == [200] * 30 + [429] * 3
    # The eleventh person's chat bucket is full: it is the bot's overall bucket that is empty.
    expect(answers[-1], 429, "Too Many Requests: retry after 1")


async def test_edits_do_not_count_unless_asked(emu: Emulator, api: Raw, started: SimUser) -> None:
    sent = expect(await say(api, started.id, "v0"), 200).result
    for i in range(5):
        reply = await api(
            "editMessageText", chat_id=started.id, message_id=sent["message_id"], text=f"v{i + 1}"
        )
        expect(reply, 200)
    emu.limits = Limits(count_edits=True, private_burst=1)
    edit = {"chat_id": started.id, "message_id": sent["message_id"]}
    expect(await api("editMessageText", **edit, text="a"), 200)
    expect(await api("editMessageText", **edit, text="b"), 429)


async def test_only_sending_methods_count(api: Raw, started: SimUser) -> None:
    for _ in range(10):
        expect(await api("sendChatAction", chat_id=started.id, action="typing"), 200)
        expect(await api("getMe"), 200)
    expect(await say(api, started.id), 200)


async def test_limits_can_be_turned_off(emu: Emulator, api: Raw, started: SimUser) -> None:
    emu.limits = Limits.off()
    for _ in range(50):
        expect(await say(api, started.id), 200)
    assert emu.stats.too_many_requests == 0 and emu.stats.messages_sent == 50


async def test_limits_are_configurable(emu_clock: ManualClock, bot_account: BotAccount) -> None:
    emu = Emulator(clock=emu_clock, limits=Limits().but(private_burst=1, private_per_second=0.25))
    assert emu.flood.acquire(1, 2, private=True) == 0
    assert emu.flood.acquire(1, 2, private=True) == 4


def test_the_clock_may_be_a_callable_or_a_fake_clock() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.clock import FakeClock

    ticks = iter([5.0, 5.0, 6.0])
    assert Emulator(clock=lambda: next(ticks)).now() == 5.0
    fake = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    emu = Emulator(clock=fake)
    before = emu.now()
    fake.advance(timedelta(seconds=2))
    assert emu.now() - before == 2.0
    assert emu.world.date() == int(fake.now().timestamp())  # message dates follow it too
