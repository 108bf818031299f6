"""Injected faults: 5xx answers, held requests, 429 storms; and the call log that shows them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.emulator import BotAccount, Emulator, Limits, SimUser

from .conftest import ManualClock, Raw, expect


async def test_the_next_calls_fail_with_a_server_error(
    emu: Emulator, api: Raw, started: SimUser
) -> None:
    emu.faults.fail_next(2, status=502)
    expect(await api("sendMessage", chat_id=started.id, text="1"), 502, "Bad Gateway")
    expect(await api("getMe"), 502, "Bad Gateway")
    expect(await api("sendMessage", chat_id=started.id, text="2"), 200)
    assert emu.stats.server_errors == 2
    assert [c.fault for c in emu.calls[-3:]] == ["error", "error", None]
    assert emu.faults.active == []


async def test_a_fault_can_aim_at_some_methods(emu: Emulator, api: Raw, started: SimUser) -> None:
    emu.faults.fail_next(1, status=500, methods=["sendMessage"])
    expect(await api("getMe"), 200)
    expect(await api("sendmessage", chat_id=started.id, text="x"), 500, "Internal Server Error")


async def test_polling_is_spared_unless_named(emu: Emulator, api: Raw) -> None:
    emu.faults.fail_next(1)
    expect(await api("getUpdates"), 200)
    emu.faults.clear()
    emu.faults.fail_next(1, status=503, methods={"getUpdates"})
    expect(await api("getUpdates"), 503, "Service Unavailable")


async def test_a_seeded_fraction_of_calls_fails_the_same_way_every_time(
    emu: Emulator, api: Raw
) -> None:
    async def pattern() -> list[int]:
        emu.faults.clear()
        emu.faults.fail_fraction(0.3, seed=7)
        return [(await api("getMe")).status for _ in range(40)]

    first = await pattern()
    assert first == await pattern()
    assert 4 <= first.count(502) <= 20 and first.count(200) + first.count(502) == 40


async def test_a_held_request_is_not_performed(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    emu.faults.timeout_next(1)
    timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(TimeoutError):
        async with api.session.post(
            api.url("sendMessage"), json={"chat_id": started.id, "text": "lost"}, timeout=timeout
        ):
            pass
    await emu.wait_for(lambda: emu.stats.timeouts == 1)
    assert emu.calls[-1].fault == "timeout"
    assert started.inbox(bot_account) == []
    expect(await api("sendMessage", chat_id=started.id, text="next"), 200)


async def test_a_held_request_may_be_performed_with_the_answer_lost(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    emu.faults.timeout_next(1, perform=True, hold=0.3)
    reply = await api("sendMessage", chat_id=started.id, text="sent twice?")
    expect(reply, 504, "Gateway Timeout")
    assert [m.text for m in started.inbox(bot_account)] == ["sent twice?"]


async def test_stopping_releases_held_requests(emu: Emulator, api: Raw) -> None:
    emu.faults.timeout_next(1)
    held = asyncio.create_task(api("getMe"))
    await emu.wait_for(lambda: emu.calls)
    await emu.stop()
    expect(await asyncio.wait_for(held, 5), 504)


async def test_a_429_storm(
    emu: Emulator, api: Raw, started: SimUser, emu_clock: ManualClock
) -> None:
    emu.limits = Limits.off()
    emu.faults.flood(5)
    reply = await api("sendMessage", chat_id=started.id, text="x")
    expect(reply, 429, "Too Many Requests: retry after 5")
    assert reply.body["parameters"] == {"retry_after": 5}
    expect(await api("getMe"), 200)  # only sending methods are refused
    emu_clock.advance(3.5)
    expect(await api("copyMessage", chat_id=started.id, from_chat_id=started.id, message_id=1), 429)
    assert emu.calls[-1].description == "Too Many Requests: retry after 2"
    emu_clock.advance(1.5)
    expect(await api("sendMessage", chat_id=started.id, text="x"), 200)
    assert emu.stats.too_many_requests == 2 and emu.stats.flood_limited == 0


async def test_a_storm_with_a_fixed_retry_after(emu: Emulator, api: Raw, started: SimUser) -> None:
    emu.faults.flood(60, retry_after=7)
    expect(
        await api("sendMessage", chat_id=started.id, text="x"),
        429,
        "Too Many Requests: retry after 7",
    )
    assert emu.faults.active[0]["kind"] == "flood"
    emu.faults.clear()
    expect(await api("sendMessage", chat_id=started.id, text="x"), 200)


def test_fault_arguments_are_checked(emu: Emulator) -> None:
    with pytest.raises(ValueError):
        emu.faults.fail_next(1, status=418)
    with pytest.raises(ValueError):
        emu.faults.fail_next(0)
    with pytest.raises(ValueError):
        emu.faults.fail_fraction(1.5)
