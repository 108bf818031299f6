"""Simulated people in private chats: starting, blocking, media, taps, edits and the inbox."""

from __future__ import annotations

import pytest

from bot.emulator import BotAccount, Emulator, SimulationError, SimUser

from .conftest import ManualClock, Raw, expect

KEYBOARD = {
    "inline_keyboard": [
        [{"text": "😡 1", "callback_data": "score:1"}, {"text": "😍 5", "callback_data": "score:5"}]
    ]
}


async def updates(api: Raw) -> list[dict]:
    reply = expect(await api("getUpdates"), 200)
    if reply.result:
        await api("getUpdates", offset=reply.result[-1]["update_id"] + 1)
    return reply.result


async def test_bot_tokens_look_like_telegrams(bot_account: BotAccount) -> None:
    head, _, secret = bot_account.token.partition(":")
    assert int(head) == bot_account.id
    assert len(secret) == 35 and secret.startswith("AA")


async def test_a_user_who_never_started_the_bot_cannot_be_written_to(
    api: Raw, anna: SimUser
) -> None:
    reply = await api("sendMessage", chat_id=anna.id, text="Hello?")
    expect(reply, 403, "Forbidden: bot can't initiate conversation with a user")


async def test_an_unknown_chat(api: Raw) -> None:
    reply = await api("sendMessage", chat_id=424242, text="Hello?")
    expect(reply, 400, "Bad Request: chat not found")


async def test_a_user_who_blocked_the_bot(api: Raw, started: SimUser, bot_account) -> None:
    started.block(bot_account)
    reply = await api("sendMessage", chat_id=started.id, text="Hello?")
    expect(reply, 403, "Forbidden: bot was blocked by the user")
    started.unblock(bot_account)
    expect(await api("sendMessage", chat_id=started.id, text="Hello again"), 200)


async def test_blocking_and_unblocking_are_my_chat_member_updates(
    api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    await updates(api)
    started.block(bot_account)
    started.unblock(bot_account)
    changes = [u["my_chat_member"] for u in await updates(api)]
    assert [c["new_chat_member"]["status"] for c in changes] == ["kicked", "member"]
    assert changes[0]["old_chat_member"]["status"] == "member"
    assert changes[0]["chat"] == {"id": started.id, "type": "private", **started.names()}


async def test_writing_to_a_blocked_bot_unblocks_it(
    api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    started.block(bot_account)
    await started.send(bot_account, "/start")
    expect(await api("sendMessage", chat_id=started.id, text="Welcome back"), 200)


async def test_a_deactivated_user(api: Raw, started: SimUser) -> None:
    started.deactivate()
    expect(
        await api("sendMessage", chat_id=started.id, text="x"),
        403,
        "Forbidden: user is deactivated",
    )


async def test_bots_cannot_write_to_bots(emu: Emulator, api: Raw) -> None:
    other = emu.add_bot(username="other_bot")
    reply = await api("sendMessage", chat_id=other.id, text="hi")
    expect(reply, 403, "Forbidden: bot can't send messages to bots")


async def test_a_command_becomes_a_message_update(
    api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    sent = await anna.send(bot_account, "/start v123")
    (update,) = await updates(api)
    message = update["message"]
    assert message == sent.data
    assert message["text"] == "/start v123"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["from"] == {
        "id": anna.id,
        "is_bot": False,
        "first_name": "Anna",
        "username": "anna",
        "language_code": "en",
    }
    assert message["chat"]["type"] == "private"


async def test_update_ids_increase(api: Raw, anna: SimUser, bot_account: BotAccount) -> None:
    for text in ("a", "b", "c"):
        await anna.send(bot_account, text)
    ids = [u["update_id"] for u in await updates(api)]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[1] == ids[0] + 1


async def test_stickers_photos_voice_and_documents(
    api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    await anna.send_sticker(bot_account)
    await anna.send_photo(bot_account, caption="look")
    await anna.send_voice(bot_account, duration=4)
    await anna.send_document(bot_account, b"data", "x.txt")
    sticker, photo, voice, document = [u["message"] for u in await updates(api)]
    assert sticker["sticker"]["emoji"] == "👍" and sticker["sticker"]["type"] == "regular"
    assert photo["caption"] == "look" and photo["photo"][-1]["width"] == 64
    assert voice["voice"]["duration"] == 4
    assert document["document"]["file_name"] == "x.txt"
    file = expect(await api("getFile", file_id=voice["voice"]["file_id"]), 200).result
    async with api.session.get(f"{api.base}/file/bot{api.token}/{file['file_path']}") as response:
        assert response.status == 200
        assert (await response.read()).startswith(b"OggS")


async def test_a_tap_on_a_real_button(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    await api("sendMessage", chat_id=started.id, text="How was it?", reply_markup=KEYBOARD)
    await updates(api)
    message = started.inbox(bot_account)[-1]
    query = await started.tap(bot_account, message, "score:5")
    (update,) = await updates(api)
    payload = update["callback_query"]
    assert payload["id"] == query.id
    assert payload["data"] == "score:5"
    assert payload["from"]["id"] == started.id
    assert payload["message"]["message_id"] == message.message_id
    assert payload["chat_instance"]
    by_label = await started.tap(bot_account, message, label="😡 1")
    assert by_label.data == "score:1"


async def test_a_tap_must_match_a_button_unless_forged(
    api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    await api("sendMessage", chat_id=started.id, text="How was it?", reply_markup=KEYBOARD)
    message = started.inbox(bot_account)[-1]
    with pytest.raises(SimulationError, match="no button with data 'score:9'"):
        await started.tap(bot_account, message, "score:9")
    forged = await started.tap(bot_account, message, "score:9", forged=True)
    assert forged.data == "score:9"


async def test_answering_a_callback_query(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    await api("sendMessage", chat_id=started.id, text="?", reply_markup=KEYBOARD)
    query = await started.tap(bot_account, started.inbox(bot_account)[-1], "score:1")
    reply = await api("answerCallbackQuery", callback_query_id=query.id, text="Sorry!")
    assert expect(reply, 200).result is True
    assert query.answered and query.answer == {"text": "Sorry!"}


async def test_a_callback_query_is_answered_once(
    api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    await api("sendMessage", chat_id=started.id, text="?", reply_markup=KEYBOARD)
    query = await started.tap(bot_account, started.inbox(bot_account)[-1], "score:1")
    await api("answerCallbackQuery", callback_query_id=query.id)
    reply = await api("answerCallbackQuery", callback_query_id=query.id)
    expect(
        reply,
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )


async def test_a_callback_query_expires(
    api: Raw, emu_clock: ManualClock, started: SimUser, bot_account: BotAccount
) -> None:
    await api("sendMessage", chat_id=started.id, text="?", reply_markup=KEYBOARD)
    query = await started.tap(bot_account, started.inbox(bot_account)[-1], "score:1")
    emu_clock.advance(16)
    reply = await api("answerCallbackQuery", callback_query_id=query.id)
    expect(
        reply,
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )
    reply = await api("answerCallbackQuery", callback_query_id="12345")
    assert reply.status == 400


async def test_the_inbox_shows_the_current_state(
    api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    first = expect(await api("sendMessage", chat_id=started.id, text="one"), 200).result
    await api("sendMessage", chat_id=started.id, text="two", reply_markup=KEYBOARD)
    await api(
        "editMessageText", chat_id=started.id, message_id=first["message_id"], text="one, edited"
    )
    inbox = started.inbox(bot_account)
    assert [m.text for m in inbox] == ["one, edited", "two"]
    assert inbox[1].reply_markup == KEYBOARD
    assert inbox[1].callback_data == ["score:1", "score:5"]
    assert inbox[0].history[0]["text"] == "one"


async def test_a_user_edits_a_message(api: Raw, anna: SimUser, bot_account: BotAccount) -> None:
    sent = await anna.send(bot_account, "it was fine")
    await updates(api)
    await anna.edit(sent, "it was awful")
    (update,) = await updates(api)
    assert update["edited_message"]["text"] == "it was awful"
    assert "edit_date" in update["edited_message"]
