"""Telegram's text rules in isolation: HTML entities with UTF-16 offsets, markdown counting."""

from __future__ import annotations

import pytest

from bot.emulator.formatting import (
    EntityParseError,
    command_entities,
    parse_html,
    parse_text,
    utf16_len,
)


def test_entities_use_utf16_offsets() -> None:
    text, entities = parse_html("😀 <b>ok</b> <i>é</i>")
    assert text == "😀 ok é"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "italic", "offset": 6, "length": 1},
    ]
    assert utf16_len("😀") == 2


def test_nested_and_linked_entities() -> None:
    text, entities = parse_html('<b>Case <a href="https://e.com/?a=1&amp;b=2">#7</a></b>')
    assert text == "Case #7"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 7},
        {"type": "text_link", "offset": 5, "length": 2, "url": "https://e.com/?a=1&b=2"},
    ]


def test_character_references() -> None:
    assert parse_html("&lt;3 &amp; &quot;hi&quot; &#65;&#x42; &copy;")[0] == '<3 & "hi" AB &copy;'


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ('<a href="x>y</a>', 'Unclosed end of the attribute value of the tag "a" at byte offset 0'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_html_errors(source: str, problem: str) -> None:
    with pytest.raises(EntityParseError) as error:
        parse_html(source)
    assert str(error.value) == problem


def test_markdown_is_counted_without_its_markers() -> None:
    assert parse_text(r"*Thanks*, \_Anna\_\!", "MarkdownV2") == ("Thanks, _Anna_!", [])
    assert parse_text("plain <b>", None) == ("plain <b>", [])


def test_commands_in_user_text() -> None:
    assert command_entities("/start@hearback_bot v1 /help") == [
        {"type": "bot_command", "offset": 0, "length": 19},
        {"type": "bot_command", "offset": 23, "length": 5},
    ]
    assert command_entities("a/b and http://x/y") == []
