"""The remaining rules of the implemented methods, each broken once."""

from __future__ import annotations

import pytest

from bot.emulator import BotAccount, Emulator, SimChat, SimUser

from .conftest import Raw, expect


@pytest.fixture
def forum(emu: Emulator, bot_account: BotAccount) -> SimChat:
    chat = emu.add_group("Cases", forum=True)
    emu.add_bot_to_chat(bot_account, chat, admin=True, can_manage_topics=True)
    return chat


async def test_a_json_body_must_be_an_object(api: Raw) -> None:
    reply = await api.body("getMe", b"[1, 2]", "application/json")
    expect(reply, 400, "Bad Request: JSON encoded request body must be an Object")


async def test_service_messages_cannot_be_copied(api: Raw, forum: SimChat) -> None:
    topic = expect(await api("createForumTopic", chat_id=forum.id, name="Case"), 200).result
    thread = topic["message_thread_id"]
    reply = await api("copyMessage", chat_id=forum.id, from_chat_id=forum.id, message_id=thread)
    expect(reply, 400, "Bad Request: message can't be copied")


async def test_topic_icon_colours(api: Raw, forum: SimChat) -> None:
    reply = await api("createForumTopic", chat_id=forum.id, name="Case", icon_color=123)
    expect(reply, 400, "Bad Request: invalid icon_color specified")
    reply = await api("createForumTopic", chat_id=forum.id, name="Case", icon_color=16766590)
    assert expect(reply, 200).result["icon_color"] == 16766590


async def test_managing_someone_elses_topic_needs_the_right(
    emu: Emulator, api: Raw, forum: SimChat, bot_account: BotAccount
) -> None:
    other = emu.add_bot(username="other_bot")
    emu.add_bot_to_chat(other, forum, admin=True, can_manage_topics=True)
    async with api.session.post(
        api.url("createForumTopic", other.token), json={"chat_id": forum.id, "name": "Theirs"}
    ) as response:
        thread = (await response.json())["result"]["message_thread_id"]
    emu.add_bot_to_chat(bot_account, forum, admin=True, can_manage_topics=False)
    reply = await api("closeForumTopic", chat_id=forum.id, message_thread_id=thread)
    expect(reply, 400, "Bad Request: not enough rights to manage topics in the chat")


async def test_deleting_a_topic_needs_can_delete_messages(
    emu: Emulator, api: Raw, forum: SimChat, bot_account: BotAccount
) -> None:
    emu.add_bot_to_chat(
        bot_account,
        forum,
        admin=True,
        can_manage_topics=True,
        rights={"can_delete_messages": False},
    )
    thread = expect(await api("createForumTopic", chat_id=forum.id, name="x"), 200).result[
        "message_thread_id"
    ]
    reply = await api("deleteForumTopic", chat_id=forum.id, message_thread_id=thread)
    expect(reply, 400, "Bad Request: not enough rights to delete the topic")


async def test_inline_messages_are_not_emulated(api: Raw) -> None:
    reply = await api("editMessageText", inline_message_id="AgAAA", text="x")
    expect(reply, 400, "Bad Request: MESSAGE_ID_INVALID")


async def test_an_edit_needs_a_message_id(api: Raw, started: SimUser) -> None:
    reply = await api("editMessageText", chat_id=started.id, text="x")
    expect(reply, 400, "Bad Request: message identifier is not specified")
    reply = await api("editMessageText", message_id=1, text="x")
    expect(reply, 400, "Bad Request: chat_id is empty")


async def test_a_text_message_has_no_caption(api: Raw, started: SimUser) -> None:
    sent = expect(await api("sendMessage", chat_id=started.id, text="x"), 200).result
    reply = await api(
        "editMessageCaption", chat_id=started.id, message_id=sent["message_id"], caption="c"
    )
    expect(reply, 400, "Bad Request: there is no caption in the message to edit")


async def test_deleting_many_messages(api: Raw, started: SimUser, bot_account) -> None:
    ids = [
        expect(await api("sendMessage", chat_id=started.id, text=t), 200).result["message_id"]
        for t in ("a", "b")
    ]
    expect(await api("deleteMessages", chat_id=started.id, message_ids=[*ids, 999]), 200)
    assert started.inbox(bot_account) == []
    reply = await api("deleteMessages", chat_id=started.id, message_ids=[])
    expect(reply, 400, "Bad Request: message_ids must contain 1-100 identifiers")


async def test_pinning(emu: Emulator, api: Raw, bot_account: BotAccount) -> None:
    group = emu.add_group("Staff")
    emu.add_bot_to_chat(bot_account, group)
    sent = expect(await api("sendMessage", chat_id=group.id, text="Rules"), 200).result
    reply = await api("pinChatMessage", chat_id=group.id, message_id=sent["message_id"])
    expect(reply, 400, "Bad Request: not enough rights to manage pinned messages in the chat")
    emu.add_bot_to_chat(bot_account, group, admin=True)
    expect(await api("pinChatMessage", chat_id=group.id, message_id=sent["message_id"]), 200)
    assert group.pinned == [sent["message_id"]]
    reply = await api("pinChatMessage", chat_id=group.id, message_id=999)
    expect(reply, 400, "Bad Request: message to pin not found")
    expect(await api("unpinChatMessage", chat_id=group.id), 200)
    assert group.pinned == []


async def test_command_lists(api: Raw) -> None:
    too_many = [{"command": f"c{i}", "description": "d"} for i in range(101)]
    expect(await api("setMyCommands", commands=too_many), 400, "Bad Request: too many commands")
    no_description = [{"command": "start", "description": ""}]
    reply = await api("setMyCommands", commands=no_description)
    expect(reply, 400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")


async def test_a_menu_button_belongs_to_a_private_chat(
    emu: Emulator, api: Raw, bot_account: BotAccount
) -> None:
    group = emu.add_group("Staff")
    emu.add_bot_to_chat(bot_account, group)
    reply = await api("setChatMenuButton", chat_id=group.id, menu_button={"type": "default"})
    expect(reply, 400, "Bad Request: chat not found")


async def test_profile_text_lengths(api: Raw) -> None:
    reply = await api("setMyShortDescription", short_description="s" * 121)
    expect(reply, 400, "Bad Request: short_description must be at most 120 characters long")
    expect(await api("setMyName", name="Rice Shop feedback"), 200)
    assert expect(await api("getMe"), 200).result["first_name"] == "Rice Shop feedback"


async def test_files_of_the_wrong_kind_and_size(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    voice = await started.send_voice(bot_account)
    reply = await api("sendPhoto", chat_id=started.id, photo=voice["voice"]["file_id"])
    expect(reply, 400, "Bad Request: can't use file of type Voice as Photo")
    huge = emu.world.store_file("document", bytes(20 * 1024 * 1024 + 1), file_name="big.bin")
    expect(await api("getFile", file_id=huge.file_id), 400, "Bad Request: file is too big")


async def test_private_chats_the_bot_cannot_see(api: Raw, anna: SimUser, started_boris) -> None:
    expect(await api("getChat", chat_id=anna.id), 400, "Bad Request: chat not found")
    reply = await api("getChatMember", chat_id=started_boris.id, user_id=anna.id)
    expect(reply, 400, "Bad Request: user not found")


@pytest.fixture
async def started_boris(emu: Emulator, bot_account: BotAccount) -> SimUser:
    boris = emu.add_user("Boris")
    await boris.send(bot_account, "/start")
    return boris
