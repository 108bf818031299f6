"""Everything the emulator answers has the shape the spec declares for it.

aiogram validates answers with pydantic models generated from the same spec, so a missing
required field would surface as a confusing ClientDecodeError in some end-to-end test. Here a
broad scenario is played and every result and every update is checked against the spec.
"""

from __future__ import annotations

import aiohttp

from bot.emulator import BotAccount, Emulator, Limits, SimUser, make_png

from .conftest import Raw, expect

#: A field newer than the shipped spec (Bot API 10.2+) that aiogram 3.31 already requires.
NEWER_FIELDS = frozenset({"can_send_welcome_messages"})


def problems(emu: Emulator, types: tuple[str, ...], value: object) -> list[str]:
    found: list[str] = []
    for type_expr in types:
        found = emu.spec.conformance_problems(type_expr, value, allow=NEWER_FIELDS)
        if not found:
            return []
    return found


async def test_every_answer_and_update_conforms_to_the_spec(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    emu.limits = Limits.off()
    olga, pavel = emu.add_user("Olga", "olga"), emu.add_user("Pavel", last_name="P.")
    group = emu.add_group("Staff", members=[olga], admins=[pavel], creator=emu.add_user("Boss"))
    forum = emu.add_group("Cases", forum=True, members=[olga], admins=[pavel])
    emu.add_bot_to_chat(bot_account, group)
    emu.add_bot_to_chat(bot_account, forum, admin=True, can_manage_topics=True)

    await anna.send(bot_account, "/start v1")
    sticker = await anna.send_sticker(bot_account)
    photo = await anna.send_photo(bot_account, caption="see")
    await anna.send_voice(bot_account)
    await anna.send_document(bot_account)
    keyboard = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    sent = expect(
        await api(
            "sendMessage",
            chat_id=anna.id,
            text="<b>Hi</b> <a href='https://e.com'>link</a>",
            parse_mode="HTML",
            reply_markup=keyboard,
            reply_parameters={"message_id": 1},
        ),
        200,
    ).result
    query = await anna.tap(bot_account, sent["message_id"], "yes")
    await api("answerCallbackQuery", callback_query_id=query.id)
    await anna.edit(anna.chat_with(bot_account).messages[0], "/start v2")
    await api("editMessageText", chat_id=anna.id, message_id=sent["message_id"], text="Edited")
    await api(
        "editMessageReplyMarkup",
        chat_id=anna.id,
        message_id=sent["message_id"],
        reply_markup=keyboard,
    )
    form = aiohttp.FormData()
    form.add_field("chat_id", str(anna.id))
    form.add_field("photo", make_png(500, 300), filename="chart.png")
    form.add_field("caption", "chart")
    await api.multipart("sendPhoto", form)
    await api("sendDocument", chat_id=anna.id, document="https://example.com/a.pdf")
    await api("sendSticker", chat_id=anna.id, sticker=sticker["sticker"]["file_id"])
    await api("sendVoice", chat_id=anna.id, voice="https://example.com/a.ogg")
    topic = expect(await api("createForumTopic", chat_id=forum.id, name="Case"), 200).result
    thread = topic["message_thread_id"]
    await api(
        "copyMessage",
        chat_id=forum.id,
        from_chat_id=anna.id,
        message_id=photo.message_id,
        message_thread_id=thread,
    )
    await api("forwardMessage", chat_id=group.id, from_chat_id=anna.id, message_id=1)
    await olga.send_to_chat(bot_account, forum, "on it", thread_id=thread)
    await api("editForumTopic", chat_id=forum.id, message_thread_id=thread, name="Case ✓")
    await api("closeForumTopic", chat_id=forum.id, message_thread_id=thread)
    await api("reopenForumTopic", chat_id=forum.id, message_thread_id=thread)
    for chat_id in (anna.id, group.id, forum.id):
        await api("getChat", chat_id=chat_id)
    for user_id in (olga.id, pavel.id, bot_account.id, anna.id):
        await api("getChatMember", chat_id=group.id, user_id=user_id)
    await api("getChatAdministrators", chat_id=group.id)
    await api("getChatAdministrators", chat_id=forum.id)
    await api("getMe")
    await api("getWebhookInfo")
    await api("getFile", file_id=photo["photo"][-1]["file_id"])
    await api("setMyCommands", commands=[{"command": "start", "description": "Go"}])
    await api("getMyCommands")
    await api("getChatMenuButton")
    await api("getMyName")
    await api("getMyDescription")
    await api("getChatMemberCount", chat_id=group.id)
    anna.block(bot_account)
    anna.unblock(bot_account)
    emu.set_member(group, olga, "left")
    await api("getUpdates", allowed_updates=["message", "chat_member", "my_chat_member"])
    await olga.send_to_chat(bot_account, forum, "/stats")
    updates = expect(await api("getUpdates"), 200).result

    failures = [c for c in emu.calls if not c.ok]
    assert failures == [], [(c.method, c.description) for c in failures]
    for call in emu.calls:
        returns = emu.spec.methods[call.method].returns
        assert problems(emu, returns, call.result) == [], call.method
    kinds = {next(k for k in u if k != "update_id") for u in updates}
    assert {"message", "edited_message", "callback_query", "my_chat_member"} <= kinds
    for update in updates:
        assert problems(emu, ("Update",), update) == [], update


def test_the_conformance_check_finds_what_is_missing_or_extra(emu: Emulator) -> None:
    found = emu.spec.conformance_problems("Message", {"message_id": 1, "date": "today", "x": 1})
    assert found == [
        "result.x is not a field of Message",
        "result.date must be Integer",
        "result.chat is required",
    ]
    member = {"status": "member", "user": {"id": 1, "is_bot": False, "first_name": "A"}}
    assert emu.spec.conformance_problems("ChatMember", member) == []
