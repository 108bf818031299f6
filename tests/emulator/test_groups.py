"""Groups, supergroups and forum topics: membership, rights, privacy mode and topic rules."""

from __future__ import annotations

import pytest

from bot.emulator import BotAccount, Emulator, SimChat, SimUser

from .conftest import Raw, expect


@pytest.fixture
def staff(emu: Emulator) -> tuple[SimUser, SimUser]:
    return emu.add_user("Olga", "olga"), emu.add_user("Pavel", "pavel")


@pytest.fixture
def forum(emu: Emulator, bot_account: BotAccount, staff: tuple[SimUser, SimUser]) -> SimChat:
    member, admin = staff
    chat = emu.add_group("Cases", forum=True, members=[member], admins=[admin])
    emu.add_bot_to_chat(bot_account, chat, admin=True, can_manage_topics=True)
    return chat


async def new_topic(api: Raw, chat: SimChat, name: str = "Case #1") -> int:
    reply = expect(await api("createForumTopic", chat_id=chat.id, name=name), 200)
    return reply.result["message_thread_id"]


def test_chat_ids_look_like_telegrams(emu: Emulator) -> None:
    group = emu.add_group("Staff")
    forum = emu.add_group("Forum", forum=True)
    assert group.type == "group" and -5_000_000_000 < group.id < 0
    assert forum.type == "supergroup" and forum.is_forum and str(forum.id).startswith("-100")


async def test_adding_the_bot_is_a_my_chat_member_update(
    emu: Emulator, api: Raw, bot_account: BotAccount, staff: tuple[SimUser, SimUser]
) -> None:
    group = emu.add_group("Staff", members=[staff[0]], admins=[staff[1]])
    emu.add_bot_to_chat(bot_account, group)
    (update,) = expect(await api("getUpdates"), 200).result
    change = update["my_chat_member"]
    assert change["chat"] == {"id": group.id, "type": "group", "title": "Staff"}
    assert change["old_chat_member"]["status"] == "left"
    assert change["new_chat_member"]["status"] == "member"
    assert change["from"]["id"] == staff[1].id


async def test_a_group_the_bot_was_never_in_is_not_found(
    emu: Emulator, api: Raw, staff: tuple[SimUser, SimUser]
) -> None:
    group = emu.add_group("Elsewhere", members=list(staff))
    expect(
        await api("sendMessage", chat_id=group.id, text="hi"), 400, "Bad Request: chat not found"
    )


async def test_a_group_the_bot_left(emu: Emulator, api: Raw, bot_account: BotAccount) -> None:
    group = emu.add_group("Staff")
    emu.add_bot_to_chat(bot_account, group)
    expect(await api("leaveChat", chat_id=group.id), 200)
    reply = await api("sendMessage", chat_id=group.id, text="hi")
    expect(reply, 403, "Forbidden: bot is not a member of the group chat")


async def test_a_supergroup_that_kicked_the_bot(
    emu: Emulator, api: Raw, bot_account: BotAccount
) -> None:
    group = emu.add_group("Staff", supergroup=True)
    emu.add_bot_to_chat(bot_account, group)
    emu.remove_bot_from_chat(bot_account, group)
    reply = await api("sendMessage", chat_id=group.id, text="hi")
    expect(reply, 403, "Forbidden: bot was kicked from the supergroup chat")


async def test_leaving_a_private_chat(api: Raw, started: SimUser) -> None:
    reply = await api("leaveChat", chat_id=started.id)
    expect(reply, 400, "Bad Request: chat member status can't be changed in private chats")


async def test_members_and_their_statuses(
    emu: Emulator, api: Raw, forum: SimChat, staff: tuple[SimUser, SimUser], bot_account
) -> None:
    member, admin = staff
    outsider = emu.add_user("Zoe")
    emu.set_member(forum, outsider, "kicked")
    statuses = {}
    for user_id in (member.id, admin.id, outsider.id, bot_account.id, emu.add_user("New").id):
        reply = expect(await api("getChatMember", chat_id=forum.id, user_id=user_id), 200)
        statuses[user_id] = reply.result["status"]
    assert list(statuses.values()) == ["member", "administrator", "kicked", "administrator", "left"]
    admin_member = expect(
        await api("getChatMember", chat_id=forum.id, user_id=bot_account.id), 200
    ).result
    assert admin_member["can_manage_topics"] is True
    expect(
        await api("getChatMember", chat_id=forum.id, user_id=5), 400, "Bad Request: user not found"
    )


async def test_administrators(emu: Emulator, api: Raw, forum: SimChat, staff, bot_account) -> None:
    result = expect(await api("getChatAdministrators", chat_id=forum.id), 200).result
    assert {a["user"]["id"] for a in result} == {staff[1].id, bot_account.id}
    assert expect(await api("getChatMemberCount", chat_id=forum.id), 200).result == 3


async def test_no_administrators_in_a_private_chat(api: Raw, started: SimUser) -> None:
    reply = await api("getChatAdministrators", chat_id=started.id)
    expect(reply, 400, "Bad Request: there are no administrators in the private chat")


async def test_get_chat(api: Raw, forum: SimChat, started: SimUser) -> None:
    info = expect(await api("getChat", chat_id=forum.id), 200).result
    assert info["title"] == "Cases" and info["is_forum"] is True and info["type"] == "supergroup"
    private = expect(await api("getChat", chat_id=started.id), 200).result
    assert private["first_name"] == "Anna" and private["type"] == "private"


async def test_creating_a_topic(api: Raw, forum: SimChat, bot_account: BotAccount) -> None:
    reply = expect(await api("createForumTopic", chat_id=forum.id, name="Case #7"), 200)
    topic = reply.result
    assert topic == {
        "message_thread_id": topic["message_thread_id"],
        "name": "Case #7",
        "icon_color": 7322096,
    }
    opener = forum.message(topic["message_thread_id"])
    assert opener is not None and opener["forum_topic_created"]["name"] == "Case #7"
    assert forum.topic("Case #7").thread_id == topic["message_thread_id"]


async def test_topics_only_in_forums(emu: Emulator, api: Raw, bot_account: BotAccount) -> None:
    group = emu.add_group("Plain", supergroup=True)
    emu.add_bot_to_chat(bot_account, group, admin=True, can_manage_topics=True)
    reply = await api("createForumTopic", chat_id=group.id, name="x")
    expect(reply, 400, "Bad Request: the chat is not a forum")


async def test_topics_need_can_manage_topics(
    emu: Emulator, api: Raw, bot_account: BotAccount
) -> None:
    chat = emu.add_group("Forum", forum=True)
    emu.add_bot_to_chat(bot_account, chat, admin=True, can_manage_topics=False)
    reply = await api("createForumTopic", chat_id=chat.id, name="x")
    expect(reply, 400, "Bad Request: not enough rights to create a topic")


async def test_topic_names_are_1_to_128_characters(api: Raw, forum: SimChat) -> None:
    expect(await api("createForumTopic", chat_id=forum.id, name="n" * 128), 200)
    reply = await api("createForumTopic", chat_id=forum.id, name="n" * 129)
    expect(reply, 400, "Bad Request: topic name must be 1-128 characters long")
    reply = await api("createForumTopic", chat_id=forum.id, name="")
    expect(reply, 400, 'Bad Request: parameter "name" is required')


async def test_messages_in_a_topic(api: Raw, forum: SimChat) -> None:
    thread = await new_topic(api, forum)
    reply = expect(
        await api("sendMessage", chat_id=forum.id, text="New case", message_thread_id=thread), 200
    )
    assert reply.result["message_thread_id"] == thread
    assert reply.result["is_topic_message"] is True
    assert [m.text for m in forum.topic_messages(thread)] == [None, "New case"]


async def test_a_closed_topic(
    emu: Emulator, api: Raw, forum: SimChat, bot_account: BotAccount
) -> None:
    thread = await new_topic(api, forum)
    expect(await api("closeForumTopic", chat_id=forum.id, message_thread_id=thread), 200)
    again = await api("closeForumTopic", chat_id=forum.id, message_thread_id=thread)
    expect(again, 400, "Bad Request: TOPIC_NOT_MODIFIED")
    # The bot may still write (it manages topics); a bot without that right may not.
    expect(await api("sendMessage", chat_id=forum.id, text="x", message_thread_id=thread), 200)
    emu.add_bot_to_chat(bot_account, forum, admin=False)
    reply = await api("sendMessage", chat_id=forum.id, text="x", message_thread_id=thread)
    expect(reply, 400, "Bad Request: TOPIC_CLOSED")


async def test_a_deleted_topic(api: Raw, forum: SimChat) -> None:
    thread = await new_topic(api, forum)
    await api("sendMessage", chat_id=forum.id, text="New case", message_thread_id=thread)
    expect(await api("deleteForumTopic", chat_id=forum.id, message_thread_id=thread), 200)
    assert forum.topic_messages(thread) == []
    reply = await api("sendMessage", chat_id=forum.id, text="x", message_thread_id=thread)
    expect(reply, 400, "Bad Request: message thread not found")
    reply = await api("editForumTopic", chat_id=forum.id, message_thread_id=thread, name="y")
    expect(reply, 400, "Bad Request: TOPIC_ID_INVALID")


async def test_an_unknown_thread(api: Raw, forum: SimChat) -> None:
    reply = await api("sendMessage", chat_id=forum.id, text="x", message_thread_id=999)
    expect(reply, 400, "Bad Request: message thread not found")


async def test_renaming_a_topic(api: Raw, forum: SimChat) -> None:
    thread = await new_topic(api, forum)
    expect(
        await api("editForumTopic", chat_id=forum.id, message_thread_id=thread, name="Solved"), 200
    )
    assert forum.topics[thread].name == "Solved"
    reply = await api("editForumTopic", chat_id=forum.id, message_thread_id=thread, name="Solved")
    expect(reply, 400, "Bad Request: TOPIC_NOT_MODIFIED")


async def test_staff_write_in_a_topic(
    api: Raw, forum: SimChat, staff: tuple[SimUser, SimUser], bot_account: BotAccount
) -> None:
    thread = await new_topic(api, forum)
    card = expect(
        await api("sendMessage", chat_id=forum.id, text="Case card", message_thread_id=thread), 200
    ).result
    await api("getUpdates", offset=-1)
    await api("getUpdates", offset=10**12)  # drop the my_chat_member update
    member, admin = staff
    await member.send_to_chat(bot_account, forum, "On it", thread_id=thread)
    await admin.send_to_chat(
        bot_account, forum, "Thanks", thread_id=thread, reply_to=card["message_id"]
    )
    first, second = [u["message"] for u in expect(await api("getUpdates"), 200).result]
    assert first["message_thread_id"] == thread and first["is_topic_message"] is True
    # In a topic every message replies to the topic's first message, unless to another one.
    assert first["reply_to_message"]["forum_topic_created"]["name"] == "Case #1"
    assert second["reply_to_message"]["message_id"] == card["message_id"]
    assert [m.text for m in forum.messages][-2:] == ["On it", "Thanks"]


async def test_privacy_mode_in_groups(
    emu: Emulator, api: Raw, bot_account: BotAccount, staff: tuple[SimUser, SimUser]
) -> None:
    member, _ = staff
    group = emu.add_group("Staff", members=[member])
    emu.add_bot_to_chat(bot_account, group)
    await api("getUpdates", offset=-1)
    await api("getUpdates", offset=10**12)
    await member.send_to_chat(bot_account, group, "just chatting")
    await member.send_to_chat(bot_account, group, "/stats@hearback_bot")
    await member.send_to_chat(bot_account, group, "/stats@other_bot")
    await member.send_to_chat(bot_account, group, "hey @hearback_bot")
    texts = [u["message"]["text"] for u in expect(await api("getUpdates"), 200).result]
    assert texts == ["/stats@hearback_bot", "hey @hearback_bot"]
    assert [m.text for m in group.messages] == [
        "just chatting",
        "/stats@hearback_bot",
        "/stats@other_bot",
        "hey @hearback_bot",
    ]


async def test_a_person_outside_the_group_cannot_write_there(
    emu: Emulator, forum: SimChat, bot_account: BotAccount
) -> None:
    from bot.emulator import SimulationError

    with pytest.raises(SimulationError, match="not a member"):
        await emu.add_user("Eve").send_to_chat(bot_account, forum, "hi")


async def test_chat_messages_by_id(emu: Emulator, api: Raw, forum: SimChat) -> None:
    await api("sendMessage", chat_id=forum.id, text="General")
    assert [m.text for m in emu.chat_messages(forum.id)] == ["General"]
