"""Customer texts edited by admins, as a service: checking a wording, the preview, storing,
auditing, applying to the running `Texts`, and loading at start — on a real database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.clock import FakeClock
from bot.i18n import LOCALES
from bot.text_editor import (
    BUTTON_LIMIT,
    GROUPS,
    MESSAGE_LIMIT,
    RESET_ACTION,
    SET_ACTION,
    Problem,
    Refusal,
    Reset,
    Saved,
    TextEditor,
    check,
    find,
    grouped,
    language_of,
    limit_for,
    load_overrides,
    looks_like_language,
    preview,
    suggestions,
    telegram_length,
)
from bot.texts import TEXTS, Texts
from handlers.admin_texts import PROMPT_HEADING, TextRequest, pack, parse_text, read_prompt
from storage.models import AuditEntry, Template

BUSINESS = "Rice Shop"
BOSS = 5_000_001


@pytest.fixture
def words() -> Texts:
    return Texts(BUSINESS)


@pytest.fixture
def editor(
    session_factory: async_sessionmaker[AsyncSession], words: Texts, clock: FakeClock
) -> TextEditor:
    return TextEditor(session_factory, words, clock)


async def templates(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        rows = await session.scalars(select(Template).order_by(Template.name, Template.language))
        return [(row.name, row.language, row.text) for row in rows]


async def audit(sessions: async_sessionmaker[AsyncSession]) -> list[tuple]:
    async with sessions() as session:
        entries = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [
            (e.action, e.actor_id, e.actor_name, e.target, e.old_value, e.new_value)
            for e in entries
        ]


# ------------------------------------------------------------------------- checking a wording


def test_a_wording_may_use_the_defaults_placeholders_and_the_business() -> None:
    greeting = TEXTS["greeting"]
    assert check(greeting, "Hi {name}, welcome to {business}!") is None
    assert check(greeting, "Hi there!") is None  # dropping placeholders is allowed
    assert check(greeting, "Braces {{like this}} are fine") is None
    # {business} everywhere, even where the default does not use it.
    assert check(TEXTS["button_done"], "Done at {business}") is None


def test_an_unknown_placeholder_is_refused_naming_it_and_the_allowed_ones() -> None:
    refusal = check(TEXTS["greeting"], "Hi {nam}, see you at {location} {nam}!")
    assert refusal is not None
    assert refusal.problem is Problem.UNKNOWN_PLACEHOLDER
    assert refusal.unknown == ("nam", "location")
    assert refusal.allowed == ("name", "business")
    # Case matters: {Name} is not {name}.
    refusal = check(TEXTS["greeting"], "Hi {Name}")
    assert refusal is not None and refusal.unknown == ("Name",)


@pytest.mark.parametrize("wording", ["Hi {name", "Hi name}", "Hi {name}}", "{", "Hi {na{me}}"])
def test_broken_braces_are_refused(wording: str) -> None:
    refusal = check(TEXTS["greeting"], wording)
    assert refusal is not None and refusal.problem is Problem.BROKEN_BRACES


@pytest.mark.parametrize(
    ("wording", "piece"),
    [
        ("Hi {}", "{}"),
        ("Hi {0}", "{0}"),
        ("Hi {name.__class__}", "{name.__class__}"),
        ("Hi {name[0]}", "{name[0]}"),
        ("Hi {name!r}", "{name!r}"),
        ("Hi {name!x}", "{name!x}"),
        ("Hi {name:>20}", "{name:>20}"),
    ],
)
def test_placeholders_that_are_more_than_a_name_are_refused(wording: str, piece: str) -> None:
    refusal = check(TEXTS["greeting"], wording)
    assert refusal is not None
    assert (refusal.problem, refusal.detail) == (Problem.MALFORMED, piece)
    assert refusal.allowed == ("name", "business")


@pytest.mark.parametrize("wording", ["", "   ", "\n\n"])
def test_an_empty_wording_is_refused(wording: str) -> None:
    refusal = check(TEXTS["help"], wording)
    assert refusal is not None and refusal.problem is Problem.EMPTY


def test_buttons_and_reason_chips_have_the_button_limit() -> None:
    buttons = [name for name in TEXTS if name.startswith(("button_", "reason_"))]
    assert "button_done" in buttons and "reason_long_wait" in buttons
    for name in buttons:
        assert limit_for(TEXTS[name]) == BUTTON_LIMIT == 64
    assert limit_for(TEXTS["help"]) == MESSAGE_LIMIT == 4096


def test_length_is_counted_as_telegram_counts_it() -> None:
    assert telegram_length("abc") == 3
    assert telegram_length("好") == 1
    assert telegram_length("👍") == 2  # outside the BMP: two UTF-16 code units


# ----------------------------------------------------------------------- names and languages


@pytest.mark.parametrize(
    ("typed", "locale"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("en-GB", "en"),
        ("zh_Hans", "zh_Hans"),
        ("zh_hans", "zh_Hans"),
        ("zh-Hans", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("fr", None),
        ("zh-TW", None),  # Traditional Chinese is not the Simplified texts
        ("english", None),
    ],
)
def test_languages_are_named_as_admins_type_them(typed: str, locale: str | None) -> None:
    assert language_of(typed) == locale


def test_a_lower_case_language_code_is_taken_as_a_language_not_a_wording() -> None:
    assert looks_like_language("fr")
    assert looks_like_language("pt-BR")
    assert looks_like_language("it")
    assert not looks_like_language("It")  # "It is done": a wording
    assert not looks_like_language("OK")
    assert not looks_like_language("Done")
    assert not looks_like_language("xx")  # no such language
    assert not looks_like_language("好的")


def test_names_are_found_in_any_case_and_near_misses_suggested() -> None:
    assert find("Greeting") is TEXTS["greeting"]
    assert find("greetings") is None
    assert suggestions("greetings")[0] == "greeting"
    assert suggestions("greet")[:2] == ["greeting", "greeting_again"]
    assert suggestions("buton_done")[0] == "button_done"
    assert suggestions("zzzzzz") == []


def test_every_text_is_in_exactly_one_group_in_declaration_order() -> None:
    groups = grouped()
    assert [title for title, _ in groups] == [title for _, title in GROUPS]
    listed = [item.name for _, items in groups for item in items]
    assert listed == list(TEXTS)
    for first, _ in GROUPS:
        assert first in TEXTS
    reasons = dict(groups)["Reason chips"]
    assert all(item.name.startswith("reason_") for item in reasons)


# ------------------------------------------------------------------------------- the preview


@pytest.mark.parametrize("locale", LOCALES)
def test_every_text_previews_with_every_placeholder_filled(words: Texts, locale: str) -> None:
    for item in TEXTS.values():
        shown = preview(
            item, words.template(item, locale), locale, words, first_name="Bea", today=date.today()
        )
        assert "{" not in shown and "}" not in shown, (item.name, shown)


def test_the_preview_fills_placeholders_as_a_customer_would_read_them(words: Texts) -> None:
    today = date(2026, 3, 14)
    survey = TEXTS["survey_service_at_location"]
    assert (
        preview(survey, survey.english, "en", words, first_name="Bea", today=today)
        == "How was your haircut at Downtown today, Bea?"
    )
    on_date = TEXTS["survey_on_date"]
    assert preview(on_date, "on {date}", "en", words, first_name="Bea", today=today) == (
        "on 14 March"
    )
    assert preview(on_date, "{date}", "zh_Hans", words, first_name="Bea", today=today) == (
        "3月14日"
    )
    greeting = TEXTS["greeting"]
    assert preview(greeting, "{name} at {business}", "en", words, first_name=None, today=today) == (
        "dear customer at Rice Shop"
    )
    chosen = TEXTS["reasons_chosen"]
    assert preview(chosen, chosen.english, "en", words, first_name="Bea", today=today) == (
        "What went wrong: Waited too long and Rude or indifferent staff."
    )


# ------------------------------------------------------------------------- replacing a text


async def test_a_new_wording_is_stored_applied_at_once_and_audited(
    editor: TextEditor,
    words: Texts,
    session_factory: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    help_text = TEXTS["help"]
    saved = await editor.set(
        help_text, "en", "  Ask {business} anything, {business}!  ", by=BOSS, by_name="Bea Boss"
    )
    assert isinstance(saved, Saved)
    assert saved.changed
    assert saved.wording == "Ask {business} anything, {business}!"
    assert saved.preview == "Ask Rice Shop anything, Rice Shop!"
    assert saved.dropped == ()

    assert words.render(texts.HELP, "en") == "Ask Rice Shop anything, Rice Shop!"
    assert words.render(texts.HELP, "zh_Hans") != "Ask Rice Shop anything, Rice Shop!"
    assert words.overridden("help", "en") == "Ask {business} anything, {business}!"
    assert await templates(session_factory) == [
        ("help", "en", "Ask {business} anything, {business}!")
    ]
    assert await audit(session_factory) == [
        (
            SET_ACTION,
            BOSS,
            "Bea Boss",
            "help/en",
            help_text.english,
            "Ask {business} anything, {business}!",
        )
    ]

    # Changed again: the row is replaced, and the audit says from what.
    clock.advance(minutes=5)
    await editor.set(help_text, "en", "Just ask.", by=BOSS, by_name="Bea Boss")
    assert await templates(session_factory) == [("help", "en", "Just ask.")]
    assert (await audit(session_factory))[-1][4:] == (
        "Ask {business} anything, {business}!",
        "Just ask.",
    )


async def test_the_same_wording_again_records_nothing(
    editor: TextEditor, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    greeting = TEXTS["greeting"]
    first = await editor.set(greeting, "en", "Hi {name}!", by=BOSS, by_name="Bea")
    again = await editor.set(greeting, "en", "Hi {name}!", by=BOSS, by_name="Bea")
    assert isinstance(first, Saved) and first.changed
    assert isinstance(again, Saved) and not again.changed
    assert again.preview == "Hi dear customer!"
    assert len(await audit(session_factory)) == 1
    # The default's own words, with no override: nothing to store either.
    same = await editor.set(TEXTS["help"], "en", TEXTS["help"].english, by=BOSS, by_name="Bea")
    assert isinstance(same, Saved) and not same.changed
    assert await templates(session_factory) == [("greeting", "en", "Hi {name}!")]


async def test_a_wording_in_chinese_changes_only_the_chinese(
    editor: TextEditor, words: Texts
) -> None:
    english = words.render(texts.GREETING, "en", name="Ann")
    saved = await editor.set(
        TEXTS["greeting"],
        "zh_Hans",
        "{name}，欢迎光临{business}！",
        by=BOSS,
        by_name="Bea",
        first_name="Bea",
    )
    assert isinstance(saved, Saved) and saved.preview == "Bea，欢迎光临Rice Shop！"
    assert words.render(texts.GREETING, "zh_Hans", name="安") == "安，欢迎光临Rice Shop！"
    assert words.render(texts.GREETING, "en", name="Ann") == english


async def test_dropped_placeholders_are_reported(editor: TextEditor) -> None:
    saved = await editor.set(
        TEXTS["survey_service_at_location"], "en", "How was it at {location}?", by=BOSS, by_name="B"
    )
    assert isinstance(saved, Saved)
    assert saved.dropped == ("name", "service", "when")


async def test_refusals_change_nothing(
    editor: TextEditor, words: Texts, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    refused = await editor.set(TEXTS["greeting"], "en", "Hi {nickname}", by=BOSS, by_name="B")
    assert isinstance(refused, Refusal) and refused.unknown == ("nickname",)
    refused = await editor.set(TEXTS["greeting"], "en", "   ", by=BOSS, by_name="B")
    assert isinstance(refused, Refusal) and refused.problem is Problem.EMPTY
    assert await templates(session_factory) == []
    assert await audit(session_factory) == []
    assert words.overridden("greeting", "en") is None


async def test_a_message_longer_than_telegram_allows_is_refused(editor: TextEditor) -> None:
    help_text = TEXTS["help"]
    assert isinstance(await editor.set(help_text, "en", "a" * 4096, by=BOSS, by_name="B"), Saved)
    refused = await editor.set(help_text, "en", "a" * 4097, by=BOSS, by_name="B")
    assert isinstance(refused, Refusal)
    assert (refused.problem, refused.limit, refused.length) == (Problem.TOO_LONG, 4096, 4097)
    # It is the message as the customer reads it that counts: {business} is filled in.
    refused = await editor.set(help_text, "en", "a" * 4090 + "{business}", by=BOSS, by_name="B")
    assert isinstance(refused, Refusal) and refused.length == 4090 + len(BUSINESS)


async def test_a_button_longer_than_64_characters_is_refused(editor: TextEditor) -> None:
    done = TEXTS["button_done"]
    assert isinstance(await editor.set(done, "en", "d" * 64, by=BOSS, by_name="B"), Saved)
    refused = await editor.set(done, "en", "d" * 65, by=BOSS, by_name="B")
    assert isinstance(refused, Refusal)
    assert (refused.problem, refused.limit, refused.length) == (Problem.TOO_LONG, 64, 65)
    refused = await editor.set(TEXTS["reason_other"], "en", "👍" * 33, by=BOSS, by_name="B")
    assert isinstance(refused, Refusal) and refused.length == 66


# --------------------------------------------------------------------------- showing a text


async def test_show_says_where_the_wording_comes_from(editor: TextEditor, clock: FakeClock) -> None:
    greeting = TEXTS["greeting"]
    shown = await editor.show(greeting, "zh_Hans")
    assert not shown.changed and shown.source is None
    assert shown.wording == shown.default
    assert shown.wording.startswith("{name}，您好！")
    assert shown.placeholders == ("name", "business")

    await editor.set(greeting, "zh_Hans", "{name}，您好", by=BOSS, by_name="Bea Boss")
    shown = await editor.show(greeting, "zh_Hans")
    assert shown.changed and shown.source is not None
    assert (shown.source.by_id, shown.source.by_name, shown.source.at) == (
        BOSS,
        "Bea Boss",
        clock.now(),
    )
    assert shown.wording == "{name}，您好"
    assert shown.default.startswith("{name}，您好！")
    assert not (await editor.show(greeting, "en")).changed


async def test_listing_marks_the_changed_texts_and_languages(editor: TextEditor) -> None:
    await editor.set(TEXTS["help"], "zh_Hans", "有问题请问我", by=BOSS, by_name="B")
    await editor.set(TEXTS["help"], "en", "Ask me", by=BOSS, by_name="B")
    await editor.set(TEXTS["button_skip"], "zh_Hans", "跳过吧", by=BOSS, by_name="B")
    entries = {entry.item.name: entry for _, group in await editor.listing() for entry in group}
    assert len(entries) == len(TEXTS)
    assert (entries["help"].changed_in, entries["help"].english) == (("en", "zh_Hans"), "Ask me")
    assert entries["button_skip"].changed_in == ("zh_Hans",)
    assert entries["button_skip"].english == "Skip"
    assert entries["greeting"].changed_in == ()


# ---------------------------------------------------------------------------------- reset


async def test_reset_brings_back_the_default_and_is_audited(
    editor: TextEditor, words: Texts, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    greeting = TEXTS["greeting"]
    await editor.set(greeting, "en", "Hi {name}!", by=BOSS, by_name="Bea")
    reset = await editor.reset(greeting, "en", by=BOSS, by_name="Bea", first_name="Bea")
    assert isinstance(reset, Reset) and reset.changed
    assert reset.wording == greeting.english
    assert reset.preview == greeting.english.format(name="Bea", business=BUSINESS)
    assert words.overridden("greeting", "en") is None
    assert words.render(texts.GREETING, "en", name="Ann").startswith("Hello, Ann! Thank you")
    assert await templates(session_factory) == []
    assert (await audit(session_factory))[-1] == (
        RESET_ACTION,
        BOSS,
        "Bea",
        "greeting/en",
        "Hi {name}!",
        greeting.english,
    )

    again = await editor.reset(greeting, "en", by=BOSS, by_name="Bea")
    assert not again.changed
    assert len(await audit(session_factory)) == 2


# ------------------------------------------------------------------------------- at start


async def test_stored_wordings_are_loaded_at_start_and_bad_ones_skipped(
    editor: TextEditor, session_factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await editor.set(TEXTS["help"], "en", "Ask {business}.", by=BOSS, by_name="B")
    await editor.set(TEXTS["greeting"], "zh_Hans", "{name}，你好", by=BOSS, by_name="B")
    async with session_factory.begin() as session:
        # A text since removed from the code, a language no longer offered, and a wording
        # whose placeholder the text no longer has: none can be used.
        for name, language, wording in [
            ("retired_text", "en", "Old"),
            ("help", "fr", "Demandez"),
            ("button_done", "en", "Done, {name}"),
        ]:
            session.add(
                Template(
                    name=name,
                    language=language,
                    text=wording,
                    updated_by=BOSS,
                    updated_at=clock.now(),
                )
            )

    fresh = Texts(BUSINESS)  # a restarted process
    assert await load_overrides(session_factory, fresh) == 2
    assert fresh.render(texts.HELP, "en") == "Ask Rice Shop."
    assert fresh.render(texts.GREETING, "zh_Hans", name="安") == "安，你好"
    assert fresh.render(texts.BUTTON_DONE, "en") == "Done"
    assert fresh.overrides() == {
        ("help", "en"): "Ask {business}.",
        ("greeting", "zh_Hans"): "{name}，你好",
    }


def test_a_wording_that_does_not_render_falls_back_to_the_default() -> None:
    words = Texts(BUSINESS, overrides={("button_done", "en"): "Done, {name}"})
    assert words.render(texts.BUTTON_DONE, "en") == "Done"


# ------------------------------------------------------------------- the command's arguments


def test_text_arguments_name_language_and_wording() -> None:
    greeting = TEXTS["greeting"]
    assert parse_text("greeting") == TextRequest(greeting, "en", None)
    assert parse_text("Greeting zh") == TextRequest(greeting, "zh_Hans", None)
    assert parse_text("greeting zh-CN 你好，{name}") == TextRequest(
        greeting, "zh_Hans", "你好，{name}"
    )
    assert parse_text("greeting Hello {name}!\n\nWelcome.") == TextRequest(
        greeting, "en", "Hello {name}!\n\nWelcome."
    )
    assert parse_text("greeting en\nHello\nthere") == TextRequest(greeting, "en", "Hello\nthere")
    assert parse_text("button_done OK") == TextRequest(TEXTS["button_done"], "en", "OK")


def test_text_arguments_that_are_not_usable_get_an_answer() -> None:
    assert isinstance(parse_text(None), str) and parse_text(None).startswith("Usage:")
    assert parse_text("greetings").startswith("There is no text called “greetings”.")
    answer = parse_text("greeting fr")
    assert isinstance(answer, str)
    assert answer.startswith("There are no texts in “fr”. The languages are: en (English), ")
    assert "/text greeting en fr" in answer
    assert isinstance(parse_text("greeting fr Bonjour {name}"), str)


def test_the_prompt_is_read_back_from_its_first_line() -> None:
    heading = PROMPT_HEADING.format(name="greeting", language="zh_Hans")
    prompt = read_prompt(f"{heading}\nIn force: the default wording.\n\nHello")
    assert prompt is not None and (prompt.item.name, prompt.locale) == ("greeting", "zh_Hans")
    assert read_prompt("How was your visit to Downtown today, Bea?") is None
    assert read_prompt(PROMPT_HEADING.format(name="no_such_text", language="en")) is None
    assert read_prompt(PROMPT_HEADING.format(name="greeting", language="fr")) is None


def test_long_answers_are_split_to_fit_telegram() -> None:
    blocks = ["heading", "x" * 3000, "y" * 3000, "z" * 9000]
    parts = pack(blocks)
    assert all(telegram_length(part) <= 4096 for part in parts)
    assert "".join(parts).replace("\n", "") == "".join(blocks)
    assert pack(["a", "b"]) == ["a\n\nb"]


def test_samples_use_today_in_the_language() -> None:
    words = Texts(BUSINESS)
    today = date(2026, 1, 5)  # a Monday
    weekday = TEXTS["survey_on_weekday"]
    assert preview(weekday, weekday.english, "en", words, first_name="B", today=today) == (
        f"on {words.weekday(today - timedelta(days=2), 'en')}"
    )
