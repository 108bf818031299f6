"""Updates of one chat are handled in arrival order; different chats do not wait for each other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher
from aiogram.types import Chat, Message, Update, User

from bot.app import InFlightUpdates, OnePerChat


def update(update_id: int, chat_id: int, text: str) -> Update:
    person = User(id=chat_id, is_bot=False, first_name="P")
    return Update(
        update_id=update_id,
        message=Message(
            message_id=update_id,
            date=datetime(2026, 1, 1, tzinfo=UTC),
            chat=Chat(id=chat_id, type="private"),
            from_user=person,
            text=text,
        ),
    )


def dispatcher_with(order: OnePerChat, finished: list[str]) -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(order)

    @dispatcher.message()
    async def handle(message: Message) -> None:
        # The first message of a chat is slow: without ordering, the next one would overtake it.
        await asyncio.sleep(0.2 if message.text.endswith("slow") else 0)
        finished.append(message.text)

    return dispatcher


async def test_one_chat_is_served_in_the_order_its_updates_arrived() -> None:
    finished: list[str] = []
    order = OnePerChat()
    dispatcher = dispatcher_with(order, finished)
    bot = Bot("42:TEST")
    tasks = [
        asyncio.create_task(dispatcher.feed_update(bot, update(1, 7, "score slow"))),
        asyncio.create_task(dispatcher.feed_update(bot, update(2, 7, "comment"))),
    ]
    await asyncio.gather(*tasks)
    assert finished == ["score slow", "comment"]
    assert order._locks == {}, "an idle chat keeps no lock"
    await bot.session.close()


async def test_other_chats_are_not_held_up_by_a_slow_one() -> None:
    finished: list[str] = []
    dispatcher = dispatcher_with(OnePerChat(), finished)
    bot = Bot("42:TEST")
    await asyncio.gather(
        dispatcher.feed_update(bot, update(1, 7, "anna slow")),
        dispatcher.feed_update(bot, update(2, 8, "li")),
    )
    assert finished == ["li", "anna slow"]
    await bot.session.close()


async def test_in_flight_updates_are_counted_until_they_finish() -> None:
    finished: list[str] = []
    in_flight = InFlightUpdates()
    dispatcher = dispatcher_with(OnePerChat(), finished)
    dispatcher.update.outer_middleware(in_flight)
    bot = Bot("42:TEST")
    task = asyncio.create_task(dispatcher.feed_update(bot, update(1, 7, "slow")))
    await asyncio.sleep(0.05)
    assert in_flight.count == 1
    assert not await in_flight.drain(grace=0.01)
    assert await in_flight.drain(grace=5)
    assert finished == ["slow"]
    await task
    await bot.session.close()
