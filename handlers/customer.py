"""The customer's private chat with the bot: parse the update, call a service, reply."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message

from bot import texts
from bot.arrivals import LinkArrivals, link_reply
from bot.customers import CustomerService
from bot.settings import Settings


def router() -> Router:
    customer = Router(name="customer")
    customer.message.filter(F.chat.type == "private")
    customer.message.register(start, CommandStart())
    customer.message.register(help_, Command("help"))
    customer.message.register(anything_else)
    return customer


async def start(
    message: Message,
    command: CommandObject,
    customers: CustomerService,
    arrivals: LinkArrivals,
    settings: Settings,
) -> None:
    person = message.from_user
    if person is None:
        return
    if command.args:  # came through a deep link or QR code (or typed something after /start)
        outcome = await arrivals.arrived(
            command.args,
            telegram_user_id=person.id,
            message_id=message.message_id,
            sent_at=message.date,
            first_name=person.first_name,
            username=person.username,
            language=person.language_code,
        )
        await message.answer(link_reply(outcome, settings.business_name))
        return
    arrival = await customers.arrived(
        telegram_user_id=person.id,
        first_name=person.first_name,
        username=person.username,
        language=person.language_code,
    )
    template = texts.GREETING if arrival.is_new else texts.GREETING_AGAIN
    await message.answer(texts.render(template, name=arrival.name, business=settings.business_name))


async def help_(message: Message, settings: Settings) -> None:
    await message.answer(texts.render(texts.HELP, business=settings.business_name))


async def anything_else(message: Message, settings: Settings) -> None:
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(
        texts.render(texts.NOT_UNDERSTOOD, name=name, business=settings.business_name)
    )
