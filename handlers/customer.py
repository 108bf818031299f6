"""The customer's private chat: commands, and the polite answer to whatever else arrives.

Thin: parse the update, call a service, reply with texts from the catalogues. The conversation
about a survey (taps, comments) is handlers.conversation, included here between the commands
and the catch-alls.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import texts
from bot.arrivals import LinkArrivals, link_reply
from bot.callbacks import Confirm, ConfirmCallback, LanguageCallback
from bot.customers import CustomerService
from bot.i18n import LANGUAGE_NAMES, LocaleMiddleware
from bot.privacy import PrivacyService, StopOutcome
from bot.texts import Texts
from handlers import cases, conversation
from handlers.conversation import profile_of
from handlers.taps import answer_tap


def router() -> Router:
    customer = Router(name="customer")
    customer.message.filter(F.chat.type == "private")
    customer.callback_query.filter(F.message.chat.type == "private")
    customer.message.register(start, CommandStart())
    customer.message.register(help_, Command("help"))
    customer.message.register(stop, Command("stop"))
    customer.message.register(forget, Command("forget"))
    customer.message.register(language, Command("language"))
    customer.message.register(unknown_command, F.text.startswith("/"))
    customer.callback_query.register(confirmed, ConfirmCallback.filter())
    customer.callback_query.register(language_chosen, LanguageCallback.filter())
    # A router tries its own handlers before its sub-routers', so the catch-alls live in a
    # sub-router of their own, included after the conversation.
    fallback = Router(name="customer-fallback")
    fallback.message.register(anything_else)
    fallback.callback_query.register(unknown_button)
    customer.include_routers(conversation.router(), cases.customer_router(), fallback)
    return customer


async def start(
    message: Message,
    command: CommandObject,
    customers: CustomerService,
    arrivals: LinkArrivals,
    privacy: PrivacyService,
    words: Texts,
    locale: str,
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
        await privacy.resume(person.id)
        await message.answer(link_reply(outcome, words, locale))
        return
    arrival = await customers.arrived(
        telegram_user_id=person.id,
        first_name=person.first_name,
        username=person.username,
        language=person.language_code,
    )
    if await privacy.resume(person.id):
        template = texts.RESUMED
    else:
        template = texts.GREETING if arrival.is_new else texts.GREETING_AGAIN
    await message.answer(words.render(template, locale, name=words.name(arrival.name, locale)))


async def help_(message: Message, words: Texts, locale: str) -> None:
    await message.answer(words.render(texts.HELP, locale))


async def unknown_command(message: Message, words: Texts, locale: str) -> None:
    name = words.name(message.from_user.first_name if message.from_user else None, locale)
    await message.answer(
        f"{words.render(texts.UNKNOWN_COMMAND, locale, name=name)}\n\n"
        f"{words.render(texts.HELP, locale)}"
    )


# -- /stop and /forget: asked, then confirmed --------------------------------------------------


async def stop(message: Message, words: Texts, locale: str) -> None:
    await message.answer(
        words.render(texts.STOP_CONFIRM, locale),
        reply_markup=_yes_no(
            Confirm.STOP,
            words.render(texts.BUTTON_STOP_YES, locale),
            words.render(texts.BUTTON_STOP_NO, locale),
        ),
    )


async def forget(message: Message, words: Texts, locale: str) -> None:
    await message.answer(
        words.render(texts.FORGET_CONFIRM, locale),
        reply_markup=_yes_no(
            Confirm.FORGET,
            words.render(texts.BUTTON_FORGET_YES, locale),
            words.render(texts.BUTTON_FORGET_NO, locale),
        ),
    )


async def confirmed(
    callback: CallbackQuery,
    callback_data: ConfirmCallback,
    customers: CustomerService,
    privacy: PrivacyService,
    locales: LocaleMiddleware,
    words: Texts,
    locale: str,
) -> None:
    person = callback.from_user
    name = words.name(person.first_name, locale)
    if callback_data.what is Confirm.STOP:
        if callback_data.yes:
            # Someone the bot does not know yet (e.g. after /forget) is recorded as opted out,
            # so that a visit the business reports later does not bring a survey.
            await customers.arrived(
                telegram_user_id=person.id,
                first_name=person.first_name,
                username=person.username,
                language=person.language_code,
            )
            outcome = await privacy.stop(person.id)
            template = texts.ALREADY_STOPPED if outcome is StopOutcome.ALREADY else texts.STOPPED
        else:
            template = texts.STOP_KEPT
    elif callback_data.yes:
        erased = await privacy.forget(person.id)
        locales.remember(person.id, None)
        template = texts.FORGOTTEN if erased else texts.NOTHING_TO_FORGET
    else:
        template = texts.FORGET_KEPT
    await answer_tap(callback)
    reply = words.render(template, locale, name=name)
    if isinstance(callback.message, Message):
        # The question is answered: its buttons go, the answer takes its place.
        await callback.message.edit_text(reply)
    else:
        await callback.bot.send_message(person.id, reply)  # type: ignore[union-attr]


# -- /language ---------------------------------------------------------------------------------


async def language(message: Message, words: Texts, locale: str) -> None:
    buttons = [
        InlineKeyboardButton(
            text=f"✓ {name}" if code == locale else name,
            callback_data=LanguageCallback(locale=code).pack(),
        )
        for code, name in LANGUAGE_NAMES.items()
    ]
    await message.answer(
        words.render(texts.LANGUAGE_CHOOSE, locale),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[buttons]),
    )


async def language_chosen(
    callback: CallbackQuery,
    callback_data: LanguageCallback,
    customers: CustomerService,
    locales: LocaleMiddleware,
    words: Texts,
    locale: str,
) -> None:
    chosen = callback_data.locale
    if chosen not in LANGUAGE_NAMES:
        await answer_tap(callback, words.render(texts.TAP_NOT_USABLE, locale))
        return
    await customers.set_language(profile_of(callback.from_user), chosen)
    locales.remember(callback.from_user.id, chosen)
    await answer_tap(callback)
    reply = words.render(texts.LANGUAGE_SET, chosen, language=LANGUAGE_NAMES[chosen])
    if isinstance(callback.message, Message):
        await callback.message.edit_text(reply)


# -- everything else -----------------------------------------------------------------------------


async def anything_else(
    message: Message, words: Texts, locale: str, flooding: bool = False
) -> None:
    """A sticker, a location, a contact… where words or a tap were expected."""
    if flooding:
        return
    name = words.name(message.from_user.first_name if message.from_user else None, locale)
    await message.answer(words.render(texts.HINT_TEXT_PLEASE, locale, name=name))


async def unknown_button(callback: CallbackQuery, words: Texts, locale: str) -> None:
    """Button data that no handler recognises: malformed, from an old version, or forged."""
    await answer_tap(callback, words.render(texts.TAP_NOT_USABLE, locale))


def _yes_no(what: Confirm, yes: str, no: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=yes, callback_data=ConfirmCallback(what=what, yes=True).pack()
                ),
                InlineKeyboardButton(
                    text=no, callback_data=ConfirmCallback(what=what, yes=False).pack()
                ),
            ]
        ]
    )
