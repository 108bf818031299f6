"""Sending, editing, deleting, copying and forwarding messages; files in and out."""

from __future__ import annotations

import aiohttp

from bot.emulator import BotAccount, Emulator, SimUser, make_png

from .conftest import Raw, expect

KEYBOARD = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


async def send(api: Raw, chat_id: int, text: str = "Hello", **params) -> dict:
    return expect(await api("sendMessage", chat_id=chat_id, text=text, **params), 200).result


async def test_a_sent_message(api: Raw, started: SimUser, bot_account: BotAccount) -> None:
    result = await send(api, started.id, "How was your visit?", reply_markup=KEYBOARD)
    assert result["from"] == bot_account.as_user()
    assert result["chat"]["id"] == started.id
    assert isinstance(result["date"], int)
    assert result["message_id"] == 2  # after Anna's /start
    (message,) = started.inbox(bot_account)
    assert message.data == result


async def test_replying_to_a_message(api: Raw, started: SimUser, bot_account: BotAccount) -> None:
    start_id = started.chat_with(bot_account).messages[0].message_id
    result = await send(api, started.id, reply_parameters={"message_id": start_id})
    assert result["reply_to_message"]["text"] == "/start"
    reply = await api(
        "sendMessage", chat_id=started.id, text="x", reply_parameters={"message_id": 99}
    )
    expect(reply, 400, "Bad Request: message to be replied not found")
    lenient = {"message_id": 99, "allow_sending_without_reply": True}
    assert "reply_to_message" not in await send(api, started.id, reply_parameters=lenient)


async def test_the_legacy_reply_to_message_id_still_works(api: Raw, started: SimUser) -> None:
    result = await send(api, started.id, reply_to_message_id=1)
    assert result["reply_to_message"]["message_id"] == 1


async def test_editing_text(api: Raw, started: SimUser) -> None:
    sent = await send(api, started.id, "Draft", reply_markup=KEYBOARD)
    reply = await api(
        "editMessageText",
        chat_id=started.id,
        message_id=sent["message_id"],
        text="<i>Final</i>",
        parse_mode="HTML",
        reply_markup=KEYBOARD,
    )
    edited = expect(reply, 200).result
    assert edited["text"] == "Final" and edited["entities"][0]["type"] == "italic"
    assert edited["reply_markup"] == KEYBOARD and "edit_date" in edited


async def test_an_edit_without_a_keyboard_removes_it(
    api: Raw, started: SimUser, bot_account
) -> None:
    sent = await send(api, started.id, "Rate us", reply_markup=KEYBOARD)
    reply = await api(
        "editMessageText", chat_id=started.id, message_id=sent["message_id"], text="Thanks"
    )
    assert "reply_markup" not in expect(reply, 200).result
    assert started.inbox(bot_account)[-1].reply_markup is None


async def test_an_edit_that_changes_nothing(api: Raw, started: SimUser) -> None:
    sent = await send(api, started.id, "Same", reply_markup=KEYBOARD)
    reply = await api(
        "editMessageText",
        chat_id=started.id,
        message_id=sent["message_id"],
        text="Same",
        reply_markup=KEYBOARD,
    )
    expect(reply, 400, NOT_MODIFIED)
    reply = await api(
        "editMessageReplyMarkup",
        chat_id=started.id,
        message_id=sent["message_id"],
        reply_markup=KEYBOARD,
    )
    expect(reply, 400, NOT_MODIFIED)


async def test_removing_a_keyboard(api: Raw, started: SimUser, bot_account: BotAccount) -> None:
    sent = await send(api, started.id, "Rate us", reply_markup=KEYBOARD)
    reply = await api("editMessageReplyMarkup", chat_id=started.id, message_id=sent["message_id"])
    assert "reply_markup" not in expect(reply, 200).result
    assert started.inbox(bot_account)[-1].buttons == []


async def test_editing_a_missing_message(api: Raw, started: SimUser) -> None:
    reply = await api("editMessageText", chat_id=started.id, message_id=404, text="x")
    expect(reply, 400, "Bad Request: message to edit not found")


async def test_editing_someone_elses_message(api: Raw, started: SimUser) -> None:
    reply = await api("editMessageText", chat_id=started.id, message_id=1, text="x")
    expect(reply, 400, "Bad Request: message can't be edited")


async def test_editing_the_text_of_a_photo(api: Raw, started: SimUser) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("photo", make_png(), filename="p.png")
    sent = expect(await api.multipart("sendPhoto", form), 200).result
    reply = await api(
        "editMessageText", chat_id=started.id, message_id=sent["message_id"], text="x"
    )
    expect(reply, 400, "Bad Request: there is no text in the message to edit")
    reply = await api(
        "editMessageCaption", chat_id=started.id, message_id=sent["message_id"], caption="A chart"
    )
    assert expect(reply, 200).result["caption"] == "A chart"


async def test_deleting(api: Raw, started: SimUser, bot_account: BotAccount) -> None:
    sent = await send(api, started.id)
    expect(await api("deleteMessage", chat_id=started.id, message_id=sent["message_id"]), 200)
    assert started.inbox(bot_account) == []
    reply = await api("deleteMessage", chat_id=started.id, message_id=sent["message_id"])
    expect(reply, 400, "Bad Request: message to delete not found")


async def test_deleting_in_a_group_needs_the_right(
    emu: Emulator, api: Raw, bot_account: BotAccount
) -> None:
    olga = emu.add_user("Olga")
    group = emu.add_group("Staff", members=[olga])
    emu.add_bot_to_chat(bot_account, group)
    theirs = await olga.send_to_chat(bot_account, group, "/stats")
    reply = await api("deleteMessage", chat_id=group.id, message_id=theirs.message_id)
    expect(reply, 400, "Bad Request: message can't be deleted")


async def test_copying_a_customer_message_to_staff(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    staff = emu.add_group("Staff")
    emu.add_bot_to_chat(bot_account, staff)
    complaint = await anna.send_photo(bot_account, caption="Broken")
    reply = await api(
        "copyMessage", chat_id=staff.id, from_chat_id=anna.id, message_id=complaint.message_id
    )
    copy = staff.message(expect(reply, 200).result["message_id"])
    assert copy is not None and copy.caption == "Broken" and copy["photo"] == complaint["photo"]
    assert copy["from"]["id"] == bot_account.id
    reply = await api("copyMessage", chat_id=staff.id, from_chat_id=anna.id, message_id=77)
    expect(reply, 400, "Bad Request: message to copy not found")


async def test_forwarding(emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount) -> None:
    staff = emu.add_group("Staff")
    emu.add_bot_to_chat(bot_account, staff)
    said = await anna.send(bot_account, "The tea was cold")
    reply = await api(
        "forwardMessage", chat_id=staff.id, from_chat_id=anna.id, message_id=said.message_id
    )
    forwarded = expect(reply, 200).result
    assert forwarded["text"] == "The tea was cold"
    assert forwarded["forward_origin"] == {
        "type": "user",
        "sender_user": anna.as_user(),
        "date": said["date"],
    }


async def test_uploaded_files_can_be_read_back(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("document", b"id,score\n1,5\n", filename="export.csv", content_type="text/csv")
    sent = expect(await api.multipart("sendDocument", form), 200).result
    assert started.inbox(bot_account)[-1].file.data == b"id,score\n1,5\n"
    file = expect(await api("getFile", file_id=sent["document"]["file_id"]), 200).result
    assert file["file_size"] == 13
    url = f"{api.base}/file/bot{api.token}/{file['file_path']}"
    async with api.session.get(url) as response:
        assert await response.read() == b"id,score\n1,5\n"
    expect(await api("getFile", file_id="nope"), 400, "Bad Request: invalid file_id")


async def test_a_file_id_can_be_sent_again(api: Raw, started: SimUser, emu: Emulator) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("photo", make_png(400, 200), filename="chart.png")
    first = expect(await api.multipart("sendPhoto", form), 200).result
    assert [(s["width"], s["height"]) for s in first["photo"]] == [(320, 160), (400, 200)]
    file_id = first["photo"][-1]["file_id"]
    again = expect(await api("sendPhoto", chat_id=started.id, photo=file_id), 200).result
    assert again["photo"][-1]["file_id"] == file_id


async def test_files_by_url_and_wrong_identifiers(api: Raw, started: SimUser) -> None:
    by_url = await api("sendPhoto", chat_id=started.id, photo="https://example.com/a.jpg")
    assert expect(by_url, 200).result["photo"][-1]["width"] == 320
    reply = await api("sendPhoto", chat_id=started.id, photo="not-a-file")
    expect(reply, 400, "Bad Request: wrong file identifier/HTTP URL specified")


async def test_a_photo_must_be_an_image(api: Raw, started: SimUser) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("photo", b"definitely not a picture", filename="x.png")
    expect(await api.multipart("sendPhoto", form), 400, "Bad Request: IMAGE_PROCESS_FAILED")
    empty = aiohttp.FormData()
    empty.add_field("chat_id", str(started.id))
    empty.add_field("document", b"", filename="empty.txt")
    expect(await api.multipart("sendDocument", empty), 400, "Bad Request: file must be non-empty")


async def test_chat_actions(api: Raw, started: SimUser, bot_account: BotAccount) -> None:
    expect(await api("sendChatAction", chat_id=started.id, action="typing"), 200)
    assert started.chat_with(bot_account).last_action == "typing"
    reply = await api("sendChatAction", chat_id=started.id, action="dancing")
    expect(reply, 400, "Bad Request: wrong parameter action in request")


async def test_commands_by_scope(api: Raw, started: SimUser, bot_account: BotAccount) -> None:
    commands = [{"command": "start", "description": "Begin"}]
    admin = [{"command": "stats", "description": "Figures"}]
    scope = {"type": "chat", "chat_id": started.id}
    expect(await api("setMyCommands", commands=commands), 200)
    expect(await api("setMyCommands", commands=admin, scope=scope, language_code="en"), 200)
    assert expect(await api("getMyCommands"), 200).result == commands
    mine = await api("getMyCommands", scope=scope, language_code="en")
    assert expect(mine, 200).result == admin
    assert bot_account.get_commands("chat", chat_id=started.id, language_code="en") == admin
    expect(await api("deleteMyCommands", scope=scope, language_code="en"), 200)
    assert expect(await api("getMyCommands", scope=scope, language_code="en"), 200).result == []
    reply = await api("setMyCommands", commands=commands, scope={"type": "chat", "chat_id": 5})
    expect(reply, 400, "Bad Request: chat not found")


async def test_menu_button(api: Raw, started: SimUser) -> None:
    expect(await api("setChatMenuButton", menu_button={"type": "commands"}), 200)
    assert expect(await api("getChatMenuButton", chat_id=started.id), 200).result == {
        "type": "commands"
    }


async def test_profile_texts(api: Raw) -> None:
    expect(await api("setMyDescription", description="Tell us how it went"), 200)
    reply = await api("getMyDescription")
    assert expect(reply, 200).result == {"description": "Tell us how it went"}
