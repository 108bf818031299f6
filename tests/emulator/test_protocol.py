"""Routing and request encodings: the emulator answers the ways Telegram's Bot API does."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from bot.emulator import BotAccount, Emulator, SimUser, make_png
from bot.emulator.spec import SPEC_PATH

from .conftest import Raw, expect

SHARED_SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "telegram-bot-api-spec"


@pytest.mark.parametrize("name", ["api.min.json", "LICENSE"])
def test_the_shipped_spec_is_a_byte_identical_copy_of_the_shared_one(name: str) -> None:
    shared = SHARED_SPEC / name
    if not shared.exists():
        pytest.skip("../shared/telegram-bot-api-spec is not beside this checkout")
    assert (SPEC_PATH.parent / name).read_bytes() == shared.read_bytes()


async def test_an_unknown_token_is_unauthorized(api: Raw) -> None:
    reply = await api("getMe", token="123:nope")
    assert reply.status == 401
    assert reply.body == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_an_unknown_method_is_not_found(api: Raw) -> None:
    reply = await api("sendTelepathy", chat_id=1)
    assert reply.status == 404
    assert reply.body == {
        "ok": False,
        "error_code": 404,
        "description": "Not Found: method 'sendTelepathy' does not exist",
    }


async def test_method_names_are_case_insensitive(api: Raw, bot_account: BotAccount) -> None:
    reply = expect(await api("GETME"), 200)
    assert reply.result["id"] == bot_account.id
    assert reply.result["is_bot"] is True
    assert reply.result["username"] == "hearback_bot"


async def test_a_spec_method_the_emulator_lacks_is_refused_so_tests_notice(api: Raw) -> None:
    reply = await api("sendDice", chat_id=1)
    expect(reply, 400, "Bad Request: method sendDice is not supported by the emulator")


async def test_query_string_parameters(api: Raw, started: SimUser) -> None:
    reply = await api.query("sendMessage", {"chat_id": str(started.id), "text": "hi"})
    assert expect(reply, 200).result["text"] == "hi"


async def test_form_urlencoded_values_are_coerced_by_declared_type(
    api: Raw, started: SimUser
) -> None:
    markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    reply = await api.form(
        "sendMessage",
        {
            "chat_id": str(started.id),
            "text": "Happy?",
            "disable_notification": "true",
            "reply_markup": json.dumps(markup),
        },
    )
    assert expect(reply, 200).result["reply_markup"] == markup


async def test_form_values_reach_the_method_with_their_spec_types(
    emu: Emulator, api: Raw, started: SimUser
) -> None:
    await api.form(
        "sendMessage",
        {"chat_id": str(started.id), "text": "x", "disable_notification": "1"},
    )
    params = emu.calls_to("sendMessage")[-1].params
    assert params["chat_id"] == started.id
    assert params["disable_notification"] is True


async def test_a_garbled_json_body_is_a_bad_request(api: Raw) -> None:
    reply = await api.body("getMe", b"{not json", "application/json")
    expect(reply, 400, "Bad Request: can't parse JSON encoded request body")


async def test_multipart_upload_by_attach_reference(
    emu: Emulator, api: Raw, started: SimUser
) -> None:
    png = make_png(40, 30)
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("chat_id", str(started.id))
    form.add_field("photo", "attach://pic")
    form.add_field("pic", png, filename="pic.png", content_type="image/png")
    reply = expect(await api.multipart("sendPhoto", form), 200)
    largest = reply.result["photo"][-1]
    assert (largest["width"], largest["height"]) == (40, 30)
    assert emu.calls_to("sendPhoto")[-1].params["photo"].data == png


async def test_multipart_upload_as_the_field_itself(api: Raw, started: SimUser) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("document", b"a,b\n1,2\n", filename="report.csv", content_type="text/csv")
    reply = expect(await api.multipart("sendDocument", form), 200)
    document = reply.result["document"]
    assert document["file_name"] == "report.csv"
    assert document["mime_type"] == "text/csv"
    assert document["file_size"] == 8


async def test_attach_to_a_missing_part_is_a_bad_request(api: Raw, started: SimUser) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("photo", "attach://nothing")
    reply = await api.multipart("sendPhoto", form)
    expect(
        reply, 400, 'Bad Request: parameter "photo" refers to a missing multipart part "nothing"'
    )


async def test_every_call_is_recorded(emu: Emulator, api: Raw, bot_account: BotAccount) -> None:
    await api("getMe")
    await api("nope")
    first, second = emu.calls[-2:]
    assert (first.method, first.status, first.token) == ("getMe", 200, bot_account.token)
    assert first.result["id"] == bot_account.id
    assert (second.method, second.status) == ("nope", 404)
    assert emu.stats.requests >= 2 and emu.stats.by_status[404] == 1


async def test_the_call_log_keeps_the_newest_calls(emu: Emulator, api: Raw) -> None:
    emu.max_calls = 10  # trimmed back to 10 once it passes 10 + 10 %
    for _ in range(12):
        await api("getMe")
    assert len(emu.calls) == 10 and emu.calls_dropped == 2
    assert emu.stats.requests == 12


async def test_wait_for_returns_the_value_or_explains_the_timeout(emu: Emulator, api: Raw) -> None:
    async def eventually() -> str:
        return "done"

    assert await emu.wait_for(eventually) == "done"
    await api("getMe")
    with pytest.raises(AssertionError) as error:
        await emu.wait_for(lambda: emu.stats.requests > 5, timeout=0.05)
    text = str(error.value)
    assert "condition not met within 0.05s" in text and "emu.stats.requests > 5" in text
    assert "getMe -> 200" in text


async def test_call_listeners_hear_every_recorded_call(
    api: Raw, emu: Emulator, started: SimUser
) -> None:
    heard: list[tuple[str, int]] = []
    emu.call_listeners.append(lambda call: heard.append((call.method, call.status)))
    expect(await api("sendMessage", chat_id=started.id, text="hi"), 200)
    await api("sendMessage", chat_id=started.id)  # no text: refused, and still heard
    assert heard == [("sendMessage", 200), ("sendMessage", 400)]
    assert len(emu.calls) == 2
