"""Languages: the catalogues are complete, in sync with the code, and used when rendering.

When a test here fails after you added or reworded a text in bot/texts.py: run `make locales`
(which refreshes bot/locales/hearback.pot and merges it into every .po), then translate the
entries the failure names in bot/locales/<locale>/LC_MESSAGES/hearback.po and drop their
``#, fuzzy`` flag once checked.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po

from bot import texts
from bot.i18n import DOMAIN, LANGUAGE_NAMES, LOCALES_DIR, Catalogues, negotiate
from bot.texts import TEXTS, Texts, placeholders

ROOT = Path(__file__).resolve().parents[2]
POT = LOCALES_DIR / f"{DOMAIN}.pot"
TRANSLATED = [locale for locale in LANGUAGE_NAMES if locale != "en"]
CJK = re.compile(r"[\u4e00-\u9fff]")
COMMAND = re.compile(r"(?<![\w/])/[a-z_]+")
MONDAY = date(2026, 1, 12)


def _po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


def _ids(catalog: Catalog) -> set[str]:
    return {message.id for message in catalog if message.id}


def _translations(locale: str) -> dict[str, str]:
    """Text name → its usable translation (non-empty, not fuzzy), as the bot would load it."""
    catalog = _read(_po_path(locale), locale)
    by_english = {message.id: message for message in catalog if message.id}
    found = {}
    for name, item in TEXTS.items():
        message = by_english.get(item.english)
        if message is not None and message.string and not message.fuzzy:
            found[name] = message.string
    return found


def _extract() -> dict[str, str]:
    """What `make locales` extracts, in-process: msgid → the file it came from."""
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file, "babel.cfg")
    # The keywords are the ones the Makefile passes (`-k text:2 --no-default-keywords`).
    makefile = (ROOT / "Makefile").read_text()
    keyword_args = re.findall(r"pybabel\b.*\bextract\b.*\s-k\s*(\S+)", makefile)
    assert len(keyword_args) == 1, "expected one `pybabel extract -k …` in the Makefile"
    assert "--no-default-keywords" in makefile
    keywords = parse_keywords(keyword_args)
    return {
        message: filename
        for filename, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }


# ----------------------------------------------------------------------- the catalogues


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_text_has_a_translation(locale: str) -> None:
    translated = _translations(locale)
    missing = [name for name in TEXTS if name not in translated]
    assert not missing, (
        f"texts without a {locale} translation (empty or fuzzy): {', '.join(missing)}; "
        f"run `make locales` and translate them in {_po_path(locale).relative_to(ROOT)}"
    )


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_the_placeholders(locale: str) -> None:
    wrong = []
    for name, translation in _translations(locale).items():
        try:
            used = placeholders(translation)
        except ValueError as error:  # e.g. an unclosed brace
            wrong.append(f"{name}: not a valid template ({error})")
            continue
        expected = TEXTS[name].placeholders
        if used != expected:
            wrong.append(
                f"{name}: missing {sorted(expected - used)}, unexpected {sorted(used - expected)}"
            )
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_commands_and_line_breaks(locale: str) -> None:
    wrong = []
    for name, translation in _translations(locale).items():
        english = TEXTS[name].english
        if sorted(COMMAND.findall(translation)) != sorted(COMMAND.findall(english)):
            wrong.append(f"{name}: commands {COMMAND.findall(translation)}")
        if translation.count("\n") != english.count("\n"):
            wrong.append(f"{name}: {translation.count(chr(10))} line breaks")
    assert not wrong, "\n".join(wrong)


def test_chinese_speaks_politely() -> None:
    informal = [name for name, words in _translations("zh_Hans").items() if "你" in words]
    assert not informal, f"use 您, not 你: {', '.join(informal)}"


def test_the_template_is_in_sync_with_the_code() -> None:
    extracted = _extract()
    assert not [path for path in extracted.values() if path.startswith("bot/emulator/")]
    # Extraction finds exactly the declared texts: nothing lost, nothing stray.
    assert set(extracted) == {item.english for item in TEXTS.values()}
    in_pot = _ids(_read(POT))
    assert set(extracted) == in_pot, (
        "bot/locales/hearback.pot is stale, run `make locales`: "
        f"new {sorted(set(extracted) - in_pot)}, gone {sorted(in_pot - set(extracted))}"
    )


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_catalogue_holds_only_current_texts(locale: str) -> None:
    catalog = _read(_po_path(locale), locale)
    assert not catalog.obsolete, f"obsolete entries: {sorted(catalog.obsolete)}"
    english = {item.english for item in TEXTS.values()}
    assert sorted(_ids(catalog) - english) == []
    assert sorted(_ids(catalog) - _ids(_read(POT))) == []


def test_the_catalogues_are_found_where_the_bot_looks() -> None:
    assert set(Catalogues().available_locales) == set(TRANSLATED)


# ------------------------------------------------------------------------ negotiation


@pytest.mark.parametrize("tag", ["zh-hans", "zh", "zh-CN", "zh-TW", "zh_Hans", "ZH-hant-HK"])
def test_any_chinese_reads_simplified_chinese(tag: str) -> None:
    assert negotiate(tag) == "zh_Hans"


@pytest.mark.parametrize("tag", ["en", "en-GB", "en_US"])
def test_any_english_reads_english(tag: str) -> None:
    assert negotiate(tag, "zh_Hans") == "en"


@pytest.mark.parametrize("tag", ["de", "pt-br", None, ""])
def test_other_languages_get_the_default(tag: str | None) -> None:
    assert negotiate(tag) == "en"
    assert negotiate(tag, "zh_Hans") == "zh_Hans"


def test_texts_negotiate_with_their_default_locale() -> None:
    assert Texts("X", default_locale="zh_Hans").locale_for("fr") == "zh_Hans"
    assert Texts("X").locale_for("zh-TW") == "zh_Hans"


# -------------------------------------------------------------------------- rendering


def test_chinese_renders_chinese_with_the_values_filled_in() -> None:
    words = Texts("云杉理发")
    greeting = words.render(texts.GREETING, "zh_Hans", name="小明")
    assert CJK.search(greeting)
    assert "小明" in greeting
    assert "云杉理发" in greeting
    assert greeting != words.render(texts.GREETING, "en", name="小明")

    when = words.render(texts.SURVEY_YESTERDAY, "zh_Hans")
    question = words.render(
        texts.SURVEY_AT_LOCATION, "zh_Hans", name="小明", location="南京西路店", when=when
    )
    assert when == "昨天"
    assert question.startswith("小明")
    assert "昨天" in question
    assert "南京西路店" in question
    assert question.endswith("？")

    deadline = words.render(texts.DEADLINE_TOMORROW, "zh_Hans", time="09:00")
    closing = words.render(texts.CLOSING_CONTACT, "zh_Hans", name="小明", deadline=deadline)
    assert "09:00" in deadline
    assert deadline in closing
    assert "{" not in closing

    assert words.render(texts.LANGUAGE_SET, "zh_Hans", language="简体中文").count("简体中文") == 1
    assert words.name(None, "zh_Hans") == "尊敬的顾客"
    assert words.name("  ", "en") == "dear customer"


def test_every_text_renders_in_every_language() -> None:
    words = Texts("云杉理发")
    for locale in LANGUAGE_NAMES:
        for item in TEXTS.values():
            values = {field: f"<{field}>" for field in item.placeholders}
            rendered = words.render(item, locale, **values)
            assert all(value in rendered for value in values.values()), (item.name, locale)
            wording = rendered
            for value in values.values():
                wording = wording.replace(value, "")
            # Not just placeholders and punctuation ("{weekday}", "{business}：{message}").
            if locale == "zh_Hans" and any(ch.isalpha() for ch in wording):
                assert CJK.search(wording), item.name


def test_an_override_wins_over_the_catalogue() -> None:
    words = Texts("X", overrides={("button_done", "zh_Hans"): "好了"})
    assert words.render(texts.BUTTON_DONE, "zh_Hans") == "好了"
    assert words.render(texts.BUTTON_DONE, "en") == "Done"
    assert CJK.search(words.render(texts.BUTTON_SKIP, "zh_Hans"))


def test_an_unknown_locale_reads_english() -> None:
    words = Texts("Spruce")
    assert words.render(texts.THANKS_FINAL, "de", name="Ann") == words.render(
        texts.THANKS_FINAL, "en", name="Ann"
    )
    assert words.render(texts.THANKS_FINAL, "de", name="Ann") == (
        "Thank you, Ann! We look forward to seeing you again."
    )


@pytest.mark.parametrize(
    ("locale", "day", "weekday", "both"),
    [
        ("en", "12 January", "Monday", "Monday 12 January"),
        ("zh_Hans", "1月12日", "星期一", "1月12日周一"),
    ],
)
def test_dates_read_as_the_language_writes_them(
    locale: str, day: str, weekday: str, both: str
) -> None:
    words = Texts("X")
    assert words.date(MONDAY, locale) == day
    assert words.weekday(MONDAY, locale) == weekday
    assert words.weekday_and_date(MONDAY, locale) == both


# --------------------------------------------------------------------------- loading

TINY_PO = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Language: de\\n"

msgid "Done"
msgstr "Fertig"

#, fuzzy
msgid "Skip"
msgstr "Überspringen?"

msgid "Other"
msgstr ""
"""


def test_catalogues_load_po_files_and_leave_out_fuzzy_entries(tmp_path: Path) -> None:
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / f"{DOMAIN}.po").write_text(TINY_PO, encoding="utf-8")
    (tmp_path / "empty" / "LC_MESSAGES").mkdir(parents=True)  # a folder without a catalogue

    loaded = Catalogues(tmp_path)

    assert loaded.available_locales == ("de",)
    assert loaded.gettext("Done", locale="de") == "Fertig"
    assert loaded.gettext("Skip", locale="de") == "Skip"
    assert loaded.gettext("Other", locale="de") == "Other"
    assert loaded.gettext("Done", locale="zh_Hans") == "Done"

    words = Texts("X", i18n=loaded)
    assert words.render(texts.BUTTON_DONE, "de") == "Fertig"
    assert words.render(texts.BUTTON_SKIP, "de") == "Skip"
