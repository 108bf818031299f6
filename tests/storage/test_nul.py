"""The NUL character, which anyone can type into Telegram, never makes a write fail."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import FakeClock
from storage.models import Setting


async def test_text_with_nul_is_stored_without_it_on_every_backend(
    session: AsyncSession, clock: FakeClock
) -> None:
    # PostgreSQL refuses NUL in text outright ("invalid byte sequence for encoding UTF8").
    session.add(Setting(key="internal.nul", value="before\x00after", updated_at=clock.now()))
    await session.commit()
    stored = await session.scalar(select(Setting.value).where(Setting.key == "internal.nul"))
    assert stored == "beforeafter"
