"""Live settings on a real database: chat values win, bad stored values are skipped, and a
change made by another process is picked up by the next `load`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.live_settings import LiveSettings, SettingError, Source
from bot.settings import Settings
from storage.repositories import SettingRepository


def base(database_url: str, **values: object) -> Settings:
    return Settings(_env_file=None, database_url=database_url, **values)


async def test_a_value_set_in_the_chat_wins_and_reset_brings_the_environment_back(
    session_factory: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    live = LiveSettings(session_factory, FakeClock(), base(database_url, survey_reminder="12h"))
    seen: list[Settings] = []
    live.subscribe(seen.append)
    assert await live.load() is True
    assert live.view("survey_reminder").source is Source.ENVIRONMENT

    change = await live.set("survey_reminder", " 6h ", by=1, by_name="Bea")
    assert (change.old, change.setting.value, change.changed) == ("12h", "6h", True)
    assert live.current.survey_reminder == timedelta(hours=6)
    assert seen[-1].survey_reminder == timedelta(hours=6)
    async with session_factory() as session:
        assert await SettingRepository(session).get("survey_reminder") == "6h"

    change = await live.reset("survey_reminder", by=1, by_name="Bea")
    assert (change.setting.value, change.setting.source) == ("12h", Source.ENVIRONMENT)
    async with session_factory() as session:
        assert await SettingRepository(session).get("survey_reminder") is None


async def test_rules_across_settings_hold_in_the_chat_too(
    session_factory: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    live = LiveSettings(session_factory, FakeClock(), base(database_url))
    await live.load()
    await live.set("survey_scale", "nps", by=1, by_name=None)
    await live.set("low_score", "6", by=1, by_name=None)
    # Back to 1–5 with 6 as the low score would make every score low: refused.
    with pytest.raises(SettingError, match="low_score must be 1-4 with survey_scale=csat"):
        await live.set("survey_scale", "csat", by=1, by_name=None)
    assert live.current.survey_scale == "nps"


async def test_load_skips_a_stored_value_that_no_longer_validates_and_sees_other_processes(
    session_factory: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    clock = FakeClock()
    async with session_factory.begin() as session:
        settings = SettingRepository(session)
        await settings.put("survey_delay", "45m", updated_by=1, now=clock.now())
        await settings.put("quiet_hours", "25:00-07:00", updated_by=1, now=clock.now())
        await settings.put("internal.link_secret", "x" * 32, updated_by=None, now=clock.now())
    here = LiveSettings(session_factory, clock, base(database_url))
    assert await here.load() is True
    assert here.current.survey_delay == timedelta(minutes=45)
    assert here.view("quiet_hours").source is Source.DEFAULT  # the broken value is ignored
    assert await here.load() is False  # nothing new

    elsewhere = LiveSettings(session_factory, clock, base(database_url))
    await elsewhere.load()
    await elsewhere.set("survey_delay", "10m", by=2, by_name=None)
    assert await here.load() is True
    assert here.current.survey_delay == timedelta(minutes=10)
