"""Customer texts edited by admins, end to end: /texts, /text, replies to its prompt, /text_reset.

Each change is checked where a customer notices it: the next /help, /start or survey they get,
in their own language; and after a restart on the same database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot import texts
from bot.app import Application
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser, StoredMessage
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from handlers import admin_texts
from storage.models import AuditEntry, Template
from tests.e2e.conftest import BUSINESS, QUICK, UNPACED, customers, e2e_settings, running
from tests.e2e.conftest import visits_due_now as due_now

BOSS = 5_200_001  # an admin through ADMIN_IDS
CARL = 5_200_002  # a customer


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, admin_ids=[BOSS], worker_poll_interval=0.05)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # Monday 2026-01-05 12:00 UTC


@pytest.fixture
def start(make_app, emulator: Emulator, clock: FakeClock):
    emulator.limits = Limits.off()

    def started() -> AsyncIterator[Application]:
        return running(make_app(clock=clock, limiter=RateLimiter(UNPACED, QUICK)))

    return started


@pytest.fixture
async def app(start) -> AsyncIterator[Application]:
    async with start() as started:
        yield started


@pytest.fixture
def boss(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Bea", last_name="Boss", user_id=BOSS)


@pytest.fixture
def carl(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Carl", user_id=CARL)


async def said(
    person: SimUser, bot: BotAccount, text: str, *, reply_to: StoredMessage | None = None
) -> list[StoredMessage]:
    """Send ``text`` in the private chat; every message the bot answered with."""
    before = len(person.inbox(bot))
    await person.send(bot, text, reply_to=reply_to)
    await _wait_for_more(person, bot, before)
    await asyncio.sleep(0.2)  # a long answer comes in several messages
    return person.inbox(bot)[before:]


async def ask(person: SimUser, bot: BotAccount, text: str, **kwargs) -> str:
    """The bot's answer to ``text``, as one text."""
    return "\n\n".join(m.text or "" for m in await said(person, bot, text, **kwargs))


async def _wait_for_more(person: SimUser, bot: BotAccount, before: int) -> None:
    for _ in range(200):
        if len(person.inbox(bot)) > before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer; the chat holds {[m.text for m in person.inbox(bot)]}")


async def stored(app: Application) -> list[tuple[str, str, str]]:
    async with app.session_factory() as session:
        rows = await session.scalars(select(Template).order_by(Template.name, Template.language))
        return [(row.name, row.language, row.text) for row in rows]


async def text_audit(app: Application) -> list[tuple]:
    async with app.session_factory() as session:
        entries = await session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("text.%")).order_by(AuditEntry.id)
        )
        return [(e.action, e.actor_id, e.target, e.old_value, e.new_value) for e in entries]


HELP_EN = texts.render(texts.HELP, business=BUSINESS)
HELP_ZH = texts.render(texts.HELP, "zh_Hans", business=BUSINESS)


# ----------------------------------------------------------------------------------- /texts


async def test_texts_lists_every_text_in_groups_marking_the_changed_ones(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    listing = await said(boss, telegram_bot, "/texts")
    assert len(listing) >= 2  # ~100 texts do not fit one message
    assert all(len(m.text or "") <= 4096 for m in listing)
    whole = "\n\n".join(m.text or "" for m in listing)
    assert whole.startswith(f"Texts customers read ({len(texts.TEXTS)}). ✏️ marks those changed")
    lines = whole.splitlines()
    for name in texts.TEXTS:
        assert sum(line.startswith(f"• {name} ") for line in lines) == 1, name
    assert "• help — I ask how your visit to {business} went, so tha…" in lines
    assert "Reason chips" in lines
    assert lines.index("Reason chips") < lines.index("• reason_long_wait — Waited too long")

    await said(boss, telegram_bot, "/text help zh 有问题随时问我。")
    await said(boss, telegram_bot, "/text help Ask {business} anything.")
    whole = "\n\n".join(m.text or "" for m in await said(boss, telegram_bot, "/texts"))
    assert "• help ✏️ en, zh_Hans — Ask {business} anything." in whole.splitlines()

    assert await ask(boss, telegram_bot, "/texts please") == admin_texts.TEXTS_USAGE


# ------------------------------------------------------------------------------------ /text


async def test_text_shows_the_wording_its_source_and_placeholders_ready_for_a_reply(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    [prompt] = await said(boss, telegram_bot, "/text greeting")
    assert prompt.text == "\n".join(
        [
            "Text: greeting · en",
            "In force: the default wording.",
            "Placeholders: {name} the customer's first name · {business} your business's name",
            "",
            texts.GREETING.english,
            "",
            "Reply to this message with the new wording, or send /text greeting en <new "
            "wording>. /text_reset greeting en brings back the default.",
        ]
    )
    assert prompt.keyboard == {
        "force_reply": True,
        "input_field_placeholder": "New wording of greeting",
    }

    [prompt] = await said(boss, telegram_bot, "/text GREETING zh-CN")
    lines = (prompt.text or "").splitlines()
    assert lines[0] == "Text: greeting · zh_Hans"
    assert texts.render(texts.GREETING, "zh_Hans", name="{name}", business="{business}") in lines

    await said(boss, telegram_bot, "/text greeting zh {name}，欢迎！")
    [prompt] = await said(boss, telegram_bot, "/text greeting zh_hans")
    lines = (prompt.text or "").splitlines()
    assert lines[:2] == [
        "Text: greeting · zh_Hans",
        f"In force: changed by Bea Boss ({BOSS}) on 05 Jan 2026, "
        f"{app.clock.now().astimezone(app.live.current.zone):%H:%M}.",
    ]
    assert lines[4] == "{name}，欢迎！"
    assert lines[6] == "The default:"


async def test_a_text_replaced_inline_reaches_the_next_customer(
    app: Application, telegram_bot: BotAccount, boss: SimUser, carl: SimUser
) -> None:
    assert await ask(carl, telegram_bot, "/help") == HELP_EN

    answer = await ask(boss, telegram_bot, "/text help Ask {business} anything, any time.")
    assert answer == "\n\n".join(
        [
            "Saved: help · en. Customers now read:",
            "Ask Rice Shop anything, any time.",
            "/text_reset help en brings back the default.",
        ]
    )
    assert await ask(carl, telegram_bot, "/help") == "Ask Rice Shop anything, any time."
    assert await stored(app) == [("help", "en", "Ask {business} anything, any time.")]
    assert await text_audit(app) == [
        ("text.set", BOSS, "help/en", texts.HELP.english, "Ask {business} anything, any time.")
    ]

    # The same again changes nothing and records nothing.
    answer = await ask(boss, telegram_bot, "/text help en Ask {business} anything, any time.")
    assert answer.startswith("help · en reads so already; nothing changed. Customers read:")
    assert len(await text_audit(app)) == 1


async def test_a_reply_to_the_prompt_replaces_the_text_in_that_language_only(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    [prompt] = await said(boss, telegram_bot, "/text greeting zh")
    answer = await ask(boss, telegram_bot, "{name}，欢迎光临{business}！", reply_to=prompt)
    assert answer == "\n\n".join(
        [
            "Saved: greeting · zh_Hans. Customers now read:",
            "Bea，欢迎光临Rice Shop！",
            "/text_reset greeting zh_Hans brings back the default.",
        ]
    )
    assert await stored(app) == [("greeting", "zh_Hans", "{name}，欢迎光临{business}！")]

    chinese = emulator.add_user(first_name="安", language_code="zh-hans")
    english = emulator.add_user(first_name="Ann", language_code="en")
    assert await ask(chinese, telegram_bot, "/start") == "安，欢迎光临Rice Shop！"
    assert await ask(english, telegram_bot, "/start") == texts.render(
        texts.GREETING, name="Ann", business=BUSINESS
    )


async def test_a_reply_to_another_message_of_the_bot_is_not_taken_as_a_wording(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    [saved, *_] = await said(boss, telegram_bot, "/text help Ask us.")
    [refused] = await said(boss, telegram_bot, "/text help {oops}")
    for message in (saved, refused):
        answer = await ask(boss, telegram_bot, "Lovely shop!", reply_to=message)
        # The customer's conversation takes it, as any words a customer writes.
        assert answer == texts.render(texts.UNSOLICITED_THANKS, name="Bea")
    # A command in reply to the prompt is a command, not a wording.
    [prompt] = await said(boss, telegram_bot, "/text help")
    assert await ask(boss, telegram_bot, "/help", reply_to=prompt) == "Ask us."
    assert await stored(app) == [("help", "en", "Ask us.")]


async def test_a_prompt_still_works_after_a_restart(
    start, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, carl: SimUser
) -> None:
    async with start():
        [prompt] = await said(boss, telegram_bot, "/text help")
    async with start() as app:
        answer = await ask(boss, telegram_bot, "Just write, {business} reads it.", reply_to=prompt)
        assert answer.startswith("Saved: help · en. Customers now read:")
        assert await ask(carl, telegram_bot, "/help") == "Just write, Rice Shop reads it."
        assert await stored(app) == [("help", "en", "Just write, {business} reads it.")]


async def test_the_next_survey_uses_the_new_wording(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    await said(boss, telegram_bot, "/text survey_at_location {name}, how was {location} {when}?")
    [prompt] = await said(boss, telegram_bot, "/text survey_hint_csat")
    await said(boss, telegram_bot, "One tap, 1 to 5. Thank you!", reply_to=prompt)

    [anna] = await customers(app, emulator, telegram_bot, 1, prefix="Anna")
    await due_now(app, [anna])
    await emulator.wait_for(lambda: anna.inbox(telegram_bot), timeout=10)
    survey = anna.inbox(telegram_bot)[0]
    assert survey.text == "Anna0, how was Downtown today?\n\nOne tap, 1 to 5. Thank you!"


# ----------------------------------------------------------------------------- refusals


async def test_an_unknown_placeholder_is_refused_with_the_allowed_ones(
    app: Application, telegram_bot: BotAccount, boss: SimUser, carl: SimUser
) -> None:
    answer = await ask(boss, telegram_bot, "/text greeting Hi {nickname}, welcome to {shop}!")
    assert answer == (
        "greeting cannot use {nickname}, {shop}: it may use {name}, {business}.\n"
        "Nothing was changed."
    )
    [prompt] = await said(boss, telegram_bot, "/text greeting")
    answer = await ask(boss, telegram_bot, "Hi {name", reply_to=prompt)
    assert answer == f"{admin_texts.REFUSED_BRACES}\n{admin_texts.TRY_AGAIN}"
    assert "{name}" in answer and "{{ or }}" in answer
    answer = await ask(boss, telegram_bot, "Hi {name!r}", reply_to=prompt)
    assert answer.startswith("{name!r} is not a placeholder I can fill")
    assert await stored(app) == []
    assert await ask(carl, telegram_bot, "/start") == texts.render(
        texts.GREETING, name="Carl", business=BUSINESS
    )


async def test_dropping_the_name_is_allowed_with_a_warning(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    answer = await ask(boss, telegram_bot, "/text thanks_final Thank you! See you again.")
    assert answer == "\n\n".join(
        [
            "Saved: thanks_final · en. Customers now read:",
            "Thank you! See you again.",
            "Note: your wording leaves out {name}, so customers are no longer addressed by "
            "name.\n/text_reset thanks_final en brings back the default.",
        ]
    )


async def test_too_long_texts_are_refused_with_the_limit(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    # As long as a message can be (4096), and over the limit once {deadline} is filled in
    # ("tomorrow by 12:00").
    [prompt] = await said(boss, telegram_bot, "/text closing_contact")
    long = "a" * 4086 + "{deadline}"
    assert await ask(boss, telegram_bot, long, reply_to=prompt) == (
        "That is 4103 characters as a customer would read it; Telegram allows at most 4096 in a "
        "message. Please shorten it.\nNothing was changed; reply to the prompt again with the "
        "corrected wording."
    )
    assert await ask(boss, telegram_bot, "/text button_done " + "d" * 65) == (
        "button_done is a button: at most 64 characters fit on it, and that is 65. Please "
        "shorten it.\nNothing was changed."
    )
    assert await ask(boss, telegram_bot, "/text reason_other Other, " + "x" * 60) == (
        "reason_other is a button: at most 64 characters fit on it, and that is 67. Please "
        "shorten it.\nNothing was changed."
    )
    assert await stored(app) == []


async def test_a_long_wording_is_shown_in_parts_that_fit(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    wording = "\n".join(["A line of help, {business}."] * 140)  # 3919 characters
    await said(boss, telegram_bot, f"/text help {wording}")
    shown = await said(boss, telegram_bot, "/text help")
    assert all(len(m.text or "") <= 4096 for m in shown)
    prompt = shown[-1]
    assert (prompt.text or "").startswith("Text: help · en\n")
    assert prompt.keyboard is not None and prompt.keyboard["force_reply"] is True
    answer = await ask(boss, telegram_bot, "Shorter, {business}.", reply_to=prompt)
    assert answer.startswith("Saved: help · en.")


async def test_bad_arguments_get_the_usage_or_a_suggestion(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    assert await ask(boss, telegram_bot, "/text") == admin_texts.TEXT_USAGE
    assert admin_texts.TEXT_USAGE.startswith("Usage:\n/text <name> [language]")
    assert await ask(boss, telegram_bot, "/text greetings") == (
        "There is no text called “greetings”.\n"
        "Did you mean greeting, greeting_again?\n"
        "/texts lists them all."
    )
    assert await ask(boss, telegram_bot, "/text greeting fr") == (
        "There are no texts in “fr”. The languages are: en (English), zh_Hans (简体中文).\n"
        "To make “fr” the new English wording, send: /text greeting en fr"
    )
    assert await ask(boss, telegram_bot, "/text_reset") == admin_texts.TEXT_RESET_USAGE
    assert await ask(boss, telegram_bot, "/text_reset help en extra") == (
        admin_texts.TEXT_RESET_USAGE
    )
    assert await ask(boss, telegram_bot, "/text_reset help de") == (
        "There are no texts in “de”. The languages are: en (English), zh_Hans (简体中文)."
    )
    assert (await ask(boss, telegram_bot, "/text_reset helpp")).startswith(
        "There is no text called “helpp”.\nDid you mean help"
    )
    assert await stored(app) == []


# ------------------------------------------------------------------------------ /text_reset


async def test_reset_brings_back_the_default(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    chinese = emulator.add_user(first_name="安", language_code="zh-hans")
    await said(boss, telegram_bot, "/text help zh 有问题随时问我。")
    assert await ask(chinese, telegram_bot, "/help") == "有问题随时问我。"

    assert await ask(boss, telegram_bot, "/text_reset help zh") == "\n\n".join(
        ["help · zh_Hans is back to the default. Customers now read:", HELP_ZH]
    )
    assert await ask(chinese, telegram_bot, "/help") == HELP_ZH
    assert await stored(app) == []
    default = app.words.default(texts.HELP, "zh_Hans")
    assert "{business}" in default
    assert await text_audit(app) == [
        ("text.set", BOSS, "help/zh_Hans", default, "有问题随时问我。"),
        ("text.reset", BOSS, "help/zh_Hans", "有问题随时问我。", default),
    ]

    assert await ask(boss, telegram_bot, "/text_reset help zh") == "\n\n".join(
        ["help · zh_Hans was not changed; customers read the default:", HELP_ZH]
    )
    assert len(await text_audit(app)) == 2


# ------------------------------------------------------------------- non-admins, restarts


async def test_a_non_admin_gets_what_any_unknown_command_gets(
    app: Application, telegram_bot: BotAccount, carl: SimUser
) -> None:
    unknown = await ask(carl, telegram_bot, "/no_such_command")
    assert unknown.startswith("I do not know that command, Carl")
    for command in ("/texts", "/text help", "/text help Hacked!", "/text_reset help"):
        assert await ask(carl, telegram_bot, command) == unknown
    assert await ask(carl, telegram_bot, "/help") == HELP_EN
    assert await stored(app) == []


async def test_a_changed_text_survives_a_restart(
    start, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, carl: SimUser
) -> None:
    async with start():
        await said(boss, telegram_bot, "/text greeting Hi {name}, welcome to {business}!")
        await said(boss, telegram_bot, "/text greeting_again zh 欢迎回来，{name}！")
    async with start():
        assert await ask(carl, telegram_bot, "/start") == "Hi Carl, welcome to Rice Shop!"
        chinese = emulator.add_user(first_name="安", language_code="zh-hans")
        await said(chinese, telegram_bot, "/start")
        assert await ask(chinese, telegram_bot, "/start") == "欢迎回来，安！"
