"""Each validation rule, broken once over real HTTP: the exact status and description."""

from __future__ import annotations

import pytest

from bot.emulator import BotAccount, Emulator, SimUser
from bot.emulator.spec import Spec

from .conftest import Raw, expect

BUTTON = {"text": "OK", "callback_data": "ok"}


# -- the spec: required fields, types, objects ---------------------------------------------------


async def test_missing_chat_id(api: Raw) -> None:
    expect(await api("sendMessage", text="hi"), 400, "Bad Request: chat_id is empty")


async def test_missing_text(api: Raw, started: SimUser) -> None:
    expect(await api("sendMessage", chat_id=started.id), 400, "Bad Request: message text is empty")


async def test_missing_other_required_field(api: Raw) -> None:
    reply = await api("getChatMember", chat_id=1)
    expect(reply, 400, 'Bad Request: parameter "user_id" is required')


async def test_integer_field_with_a_non_number(api: Raw, started: SimUser) -> None:
    reply = await api("sendMessage", chat_id=started.id, text="x", message_thread_id="seven")
    expect(reply, 400, 'Bad Request: parameter "message_thread_id" must be an Integer, got "seven"')


async def test_boolean_field_with_garbage(api: Raw, started: SimUser) -> None:
    reply = await api("sendMessage", chat_id=started.id, text="x", protect_content="maybe")
    expect(reply, 400, 'Bad Request: parameter "protect_content" must be a Boolean, got "maybe"')


async def test_object_field_with_garbled_json(api: Raw, started: SimUser) -> None:
    reply = await api.form(
        "sendMessage", {"chat_id": str(started.id), "text": "x", "reply_markup": "{oops"}
    )
    expect(
        reply,
        400,
        "Bad Request: can't parse reply keyboard markup JSON object: "
        'field "reply_markup" is not valid JSON: "{oops"',
    )


async def test_object_field_with_an_array(api: Raw, started: SimUser) -> None:
    reply = await api("sendMessage", chat_id=started.id, text="x", reply_parameters=[1])
    expect(
        reply,
        400,
        "Bad Request: can't parse reply_parameters JSON object: "
        'field "reply_parameters" must be an Object (ReplyParameters), got [1]',
    )


async def test_nested_button_without_text(api: Raw, started: SimUser) -> None:
    markup = {"inline_keyboard": [[{"callback_data": "x"}]]}
    reply = await api("sendMessage", chat_id=started.id, text="x", reply_markup=markup)
    expect(
        reply,
        400,
        "Bad Request: can't parse reply keyboard markup JSON object: "
        'field "reply_markup.inline_keyboard[0][0].text" is required',
    )


async def test_nested_keyboard_row_that_is_not_an_array(api: Raw, started: SimUser) -> None:
    markup = {"inline_keyboard": [BUTTON]}
    reply = await api("sendMessage", chat_id=started.id, text="x", reply_markup=markup)
    assert expect(reply, 400).description == (
        "Bad Request: can't parse reply keyboard markup JSON object: "
        'field "reply_markup.inline_keyboard[0]" must be an Array, '
        'got {"text": "OK", "callback_data": "ok"}'
    )


async def test_subtype_chosen_by_its_type_field(api: Raw) -> None:
    reply = await api(
        "setMyCommands", commands=[{"command": "start", "description": "Go"}], scope={"type": "x"}
    )
    assert expect(reply, 400).description.startswith(
        'Bad Request: can\'t parse scope JSON object: field "scope.type" must be one of '
        "'default', 'all_private_chats',"
    )


async def test_subtype_missing_its_own_required_field(api: Raw) -> None:
    reply = await api(
        "setMyCommands",
        commands=[{"command": "start", "description": "Go"}],
        scope={"type": "chat"},
    )
    expect(
        reply, 400, 'Bad Request: can\'t parse scope JSON object: field "scope.chat_id" is required'
    )


async def test_unknown_parameters_are_ignored(api: Raw, started: SimUser) -> None:
    reply = await api("sendMessage", chat_id=started.id, text="hi", flavour="vanilla")
    assert expect(reply, 200).result["text"] == "hi"


async def test_reply_keyboards_are_validated_too(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    keyboard = {"keyboard": [[{"text": "Yes"}, {"text": "No"}]], "one_time_keyboard": True}
    reply = await api("sendMessage", chat_id=started.id, text="ok?", reply_markup=keyboard)
    assert "reply_markup" not in expect(reply, 200).result  # only inline keyboards are shown
    assert started.inbox(bot_account)[-1].keyboard == keyboard
    broken = {"keyboard": [[{"txt": "Yes"}]]}
    reply = await api("sendMessage", chat_id=started.id, text="ok?", reply_markup=broken)
    assert expect(reply, 400).description.endswith(
        'field "reply_markup.keyboard[0][0].text" is required'
    )


def test_every_method_and_type_of_the_spec_is_understood() -> None:
    spec = Spec.load()
    primitives = {"Integer", "Float", "String", "Boolean", "InputFile", "True"}
    for method in spec.methods.values():
        for field in method.fields:
            for type_expr in field.types:
                inner = type_expr.removeprefix("Array of ").removeprefix("Array of ")
                assert inner in primitives or inner in spec.types, (method.name, type_expr)
    assert spec.method("sendmessage") is spec.methods["sendMessage"]


# -- limits written in prose -----------------------------------------------------------------


async def test_text_of_only_spaces_is_empty(api: Raw, started: SimUser) -> None:
    reply = await api("sendMessage", chat_id=started.id, text="   ")
    expect(reply, 400, "Bad Request: message text is empty")


async def test_text_longer_than_4096_characters(api: Raw, started: SimUser) -> None:
    expect(await api("sendMessage", chat_id=started.id, text="я" * 4096), 200)
    reply = await api("sendMessage", chat_id=started.id, text="я" * 4097)
    expect(reply, 400, "Bad Request: message is too long")


async def test_html_tags_do_not_count_towards_the_length(api: Raw, started: SimUser) -> None:
    text = "<b>" + "a" * 4090 + "</b> &lt;&gt;"
    reply = await api("sendMessage", chat_id=started.id, text=text, parse_mode="HTML")
    result = expect(reply, 200).result
    assert result["text"] == "a" * 4090 + " <>"
    assert result["entities"] == [{"type": "bold", "offset": 0, "length": 4090}]


async def test_html_that_becomes_empty(api: Raw, started: SimUser) -> None:
    reply = await api("sendMessage", chat_id=started.id, text="<b></b>", parse_mode="HTML")
    expect(reply, 400, "Bad Request: message text is empty")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Rating < 3", 'Unsupported start tag "" at byte offset 7'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<blink>x</blink>", 'Unsupported start tag "blink" at byte offset 0'),
        ("é</b>", "Unexpected end tag at byte offset 2"),
    ],
)
async def test_malformed_html(api: Raw, started: SimUser, text: str, problem: str) -> None:
    reply = await api("sendMessage", chat_id=started.id, text=text, parse_mode="HTML")
    expect(reply, 400, f"Bad Request: can't parse entities: {problem}")


async def test_unknown_parse_mode(api: Raw, started: SimUser) -> None:
    reply = await api("sendMessage", chat_id=started.id, text="x", parse_mode="BBCode")
    expect(reply, 400, "Bad Request: unsupported parse_mode")


async def test_caption_longer_than_1024(api: Raw, started: SimUser) -> None:
    url = "https://example.com/menu.pdf"
    expect(await api("sendDocument", chat_id=started.id, document=url, caption="c" * 1024), 200)
    reply = await api("sendDocument", chat_id=started.id, document=url, caption="c" * 1025)
    expect(reply, 400, "Bad Request: message caption is too long")


@pytest.mark.parametrize("data", ["", "x" * 65, "й" * 33])
async def test_callback_data_must_be_1_to_64_bytes(api: Raw, started: SimUser, data: str) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": data}]]}
    reply = await api("sendMessage", chat_id=started.id, text="x", reply_markup=markup)
    expect(reply, 400, "Bad Request: BUTTON_DATA_INVALID")


async def test_callback_data_of_exactly_64_bytes_is_fine(api: Raw, started: SimUser) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "й" * 32}]]}
    expect(await api("sendMessage", chat_id=started.id, text="x", reply_markup=markup), 200)


async def test_inline_button_without_an_action(api: Raw, started: SimUser) -> None:
    markup = {"inline_keyboard": [[{"text": "Just text"}]]}
    reply = await api("sendMessage", chat_id=started.id, text="x", reply_markup=markup)
    expect(
        reply,
        400,
        "Bad Request: can't parse inline keyboard button: "
        "Text buttons are unallowed in the inline keyboard",
    )


async def test_inline_button_with_a_bad_url(api: Raw, started: SimUser) -> None:
    markup = {"inline_keyboard": [[{"text": "Site", "url": "javascript:alert(1)"}]]}
    reply = await api("sendMessage", chat_id=started.id, text="x", reply_markup=markup)
    expect(reply, 400, "Bad Request: BUTTON_URL_INVALID")


async def test_callback_answer_text_longer_than_200(
    api: Raw, started: SimUser, bot_account: BotAccount
) -> None:
    markup = {"inline_keyboard": [[BUTTON]]}
    await api("sendMessage", chat_id=started.id, text="x", reply_markup=markup)
    query = await started.tap(bot_account, started.inbox(bot_account)[-1], "ok")
    reply = await api("answerCallbackQuery", callback_query_id=query.id, text="t" * 201)
    expect(reply, 400, "Bad Request: MESSAGE_TOO_LONG")
    expect(await api("answerCallbackQuery", callback_query_id=query.id, text="t" * 200), 200)


async def test_bot_command_names(api: Raw) -> None:
    reply = await api("setMyCommands", commands=[{"command": "Start!", "description": "Go"}])
    expect(reply, 400, "Bad Request: BOT_COMMAND_INVALID")
