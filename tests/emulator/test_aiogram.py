"""aiogram drives the emulator as it would drive Telegram, and parses every answer."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    ChatMemberAdministrator,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    Message,
)

from bot.emulator import BotAccount, Emulator, SimUser, make_png

SCORES = InlineKeyboardMarkup(
    inline_keyboard=[
        [InlineKeyboardButton(text=str(n), callback_data=f"score:{n}") for n in (1, 5)]
    ]
)


async def test_messages_updates_and_callbacks(
    aiobot: Bot, anna: SimUser, bot_account: BotAccount
) -> None:
    me = await aiobot.get_me()
    assert me.username == "hearback_bot" and me.is_bot
    await anna.send(bot_account, "/start v123")
    (update,) = await aiobot.get_updates(timeout=1)
    assert update.message is not None and update.message.text == "/start v123"
    sent = await aiobot.send_message(
        anna.id, "How was it, <b>Anna</b>?", parse_mode="HTML", reply_markup=SCORES
    )
    assert isinstance(sent, Message) and sent.text == "How was it, Anna?"
    query = await anna.tap(bot_account, sent.message_id, "score:5")
    (tap,) = await aiogram_updates_after(aiobot, update.update_id)
    assert tap.callback_query is not None and tap.callback_query.data == "score:5"
    assert await aiobot.answer_callback_query(query.id, text="Thank you!")
    edited = await aiobot.edit_message_text("Thanks!", chat_id=anna.id, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await aiobot.edit_message_text("Thanks!", chat_id=anna.id, message_id=sent.message_id)
    copied = await aiobot.copy_message(anna.id, anna.id, sent.message_id)
    assert copied.message_id > sent.message_id
    assert await aiobot.delete_message(anna.id, copied.message_id)
    assert await aiobot.send_chat_action(anna.id, "typing")


async def aiogram_updates_after(bot: Bot, update_id: int):
    return await bot.get_updates(offset=update_id + 1, timeout=1)


async def test_errors_become_aiogram_exceptions(
    emu: Emulator, aiobot: Bot, anna: SimUser, bot_account: BotAccount
) -> None:
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await aiobot.send_message(anna.id, "Hello?")
    await anna.send(bot_account, "/start")
    anna.block(bot_account)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await aiobot.send_message(anna.id, "Hello?")
    anna.unblock(bot_account)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await aiobot.send_message(123, "Hello?")
    for _ in range(3):
        await aiobot.send_message(anna.id, "Hello")
    with pytest.raises(TelegramRetryAfter) as flood:
        await aiobot.send_message(anna.id, "Hello")
    assert flood.value.retry_after == 1
    emu.faults.fail_next(1, status=502)
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await aiobot.get_me()
    await aiobot.set_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await aiobot.get_updates()
    assert (await aiobot.get_webhook_info()).url == "http://127.0.0.1:9/hook"
    assert await aiobot.delete_webhook(drop_pending_updates=True)


async def test_an_unknown_token_is_unauthorized(emu: Emulator) -> None:
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
    stranger = Bot("42:AAnot-a-real-token-but-well-formed-x", session=session)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await session.close()


async def test_files_groups_and_settings(
    emu: Emulator, aiobot: Bot, anna: SimUser, bot_account: BotAccount
) -> None:
    await anna.send(bot_account, "/start")
    png = make_png(20, 10)
    photo = await aiobot.send_photo(anna.id, BufferedInputFile(png, "chart.png"), caption="Week")
    assert photo.photo is not None and photo.photo[-1].width == 20 and photo.caption == "Week"
    file = await aiobot.get_file(photo.photo[-1].file_id)
    downloaded = await aiobot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == png
    document = await aiobot.send_document(anna.id, BufferedInputFile(b"a;b\n", "cases.csv"))
    assert document.document is not None and document.document.file_name == "cases.csv"

    staff = emu.add_user("Olga")
    forum = emu.add_group("Cases", forum=True, members=[staff])
    emu.add_bot_to_chat(bot_account, forum, admin=True, can_manage_topics=True)
    topic = await aiobot.create_forum_topic(forum.id, "Case #1 · Anna")
    posted = await aiobot.send_message(
        forum.id, "New case", message_thread_id=topic.message_thread_id
    )
    assert posted.message_thread_id == topic.message_thread_id and posted.is_topic_message
    assert await aiobot.close_forum_topic(forum.id, topic.message_thread_id)
    member = await aiobot.get_chat_member(forum.id, bot_account.id)
    assert isinstance(member, ChatMemberAdministrator) and member.can_manage_topics
    assert (await aiobot.get_chat_member(forum.id, staff.id)).status == "member"
    chat = await aiobot.get_chat(forum.id)
    assert chat.is_forum and chat.title == "Cases"
    assert [a.user.id for a in await aiobot.get_chat_administrators(forum.id)] == [bot_account.id]

    commands = [BotCommand(command="stats", description="Figures")]
    scope = BotCommandScopeChat(chat_id=anna.id)
    assert await aiobot.set_my_commands(commands, scope=scope)
    mine = await aiobot.get_my_commands(scope=scope)
    assert [(c.command, c.description) for c in mine] == [("stats", "Figures")]
    assert await aiobot.set_chat_menu_button(anna.id, MenuButtonCommands())
    assert await aiobot.leave_chat(forum.id)


async def test_a_dispatcher_polls_and_answers(
    emu: Emulator, aiobot: Bot, anna: SimUser, bot_account: BotAccount
) -> None:
    router = Router()

    @router.message(CommandStart())
    async def greet(message: Message) -> None:
        await message.answer(f"Hello, {message.from_user.first_name}!")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(
        dispatcher.start_polling(aiobot, handle_signals=False, polling_timeout=1)
    )
    try:
        await anna.send(bot_account, "/start")
        await emu.wait_for(lambda: anna.inbox(bot_account), timeout=10)
        assert anna.inbox(bot_account)[0].text == "Hello, Anna!"
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 10)
    assert [c.status for c in emu.calls if c.status != 200] == []
