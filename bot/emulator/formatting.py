"""Message text as Telegram sees it: parse modes, entities and the length rules.

Telegram limits text to 1–4096 characters *after entities parsing*: ``<b>hi</b>`` is two
characters long. So the emulator parses ``parse_mode=HTML`` the way Telegram does and counts
what is left. The HTML parser follows Telegram's (tdlib's) rules and error texts, because the
common bug it catches is real: interpolating a customer's text containing ``<`` or ``&`` into an
HTML message without escaping it makes Telegram reject the whole message with
``Bad Request: can't parse entities: …``.

Supported tags are Telegram's: b/strong, i/em, u/ins, s/strike/del, tg-spoiler,
span class="tg-spoiler", a href, code, pre, blockquote [expandable], tg-emoji emoji-id. Entity
offsets and lengths are in UTF-16 code units, as in the Bot API. The length limits count
characters (code points) of the parsed text.

Markdown and MarkdownV2 are handled leniently: markers are stripped and backslash escapes
undone for counting, with no entities and no parse errors. (The bot uses HTML; a strict
MarkdownV2 parser would be a lot of code for no test.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_TEXT = 4096
MAX_CAPTION = 1024

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MARKDOWN_MARKERS = re.compile(r"\\(.)|(\*|__|_|~|\|\||```|`)", re.DOTALL)


class EntityParseError(ValueError):
    """Malformed markup; the message is Telegram's, without the ``can't parse entities:`` part."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Bot API entity offsets."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    tag: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset in the parsed text where the entity starts
    byte_offset: int


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into plain text and MessageEntity dicts; raise EntityParseError."""
    out: list[str] = []
    out_len = 0  # UTF-16 length of what has been emitted so far
    entities: list[dict[str, Any]] = []
    stack: list[_Open] = []
    i = 0
    n = len(source)

    def byte_at(pos: int) -> int:
        return len(source[:pos].encode("utf-8"))

    while i < n:
        ch = source[i]
        if ch == "&":
            decoded, length = _decode_entity(source, i)
            out.append(decoded)
            out_len += utf16_len(decoded)
            i += length
            continue
        if ch != "<":
            out.append(ch)
            out_len += utf16_len(ch)
            i += 1
            continue
        begin = i
        if i + 1 < n and source[i + 1] == "/":
            close = source.find(">", i)
            if close == -1:
                raise EntityParseError(f"Unclosed end tag at byte offset {byte_at(begin)}")
            name = source[i + 2 : close].strip().lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {byte_at(begin)}")
            top = stack[-1]
            if name != top.tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {byte_at(begin)}, "
                    f'expected "</{top.tag}>", found "</{name}>"'
                )
            stack.pop()
            entity = _entity_for(top, out_len)
            if entity is not None and not _is_language_pre(entity, entities):
                entities.append(entity)
            i = close + 1
            continue
        j = i + 1
        while j < n and not source[j].isspace() and source[j] not in "/>":
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {byte_at(begin)}")
        name = source[i + 1 : j].lower()
        if name not in _SIMPLE_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{name}" at byte offset {byte_at(begin)}'
            )
        attrs, j = _parse_attributes(source, j, name, byte_at(begin))
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError('Tag "span" must have class "tg-spoiler"')
        stack.append(_Open(name, attrs, out_len, byte_at(begin)))
        i = j
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _decode_entity(source: str, i: int) -> tuple[str, int]:
    """Decode ``&name;``/``&#N;``/``&#xH;`` at ``i``; an unknown one stays literal, as in tdlib."""
    end = source.find(";", i + 1, i + 12)
    if end == -1:
        return "&", 1
    body = source[i + 1 : end]
    if body in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[body], end - i + 1
    try:
        if body[:2].lower() == "#x":
            return chr(int(body[2:], 16)), end - i + 1
        if body[:1] == "#":
            return chr(int(body[1:])), end - i + 1
    except (ValueError, OverflowError):
        pass
    return "&", 1


def _parse_attributes(source: str, j: int, tag: str, begin_byte: int) -> tuple[dict[str, str], int]:
    """Read ``name="value"`` pairs up to the closing ``>``; return them and the index after it."""
    attrs: dict[str, str] = {}
    n = len(source)
    while True:
        while j < n and source[j].isspace():
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
        if source[j] == ">":
            return attrs, j + 1
        if source[j] == "/" and j + 1 < n and source[j + 1] == ">":
            return attrs, j + 2
        start = j
        while j < n and not source[j].isspace() and source[j] not in "=>":
            j += 1
        name = source[start:j].lower()
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {begin_byte}'
            )
        while j < n and source[j].isspace():
            j += 1
        if j >= n or source[j] != "=":
            if tag == "blockquote" and name == "expandable":
                attrs[name] = ""
                continue
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {begin_byte}"
            )
        j += 1
        while j < n and source[j].isspace():
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
        if source[j] in "\"'":
            quote = source[j]
            end = source.find(quote, j + 1)
            if end == -1:
                raise EntityParseError(
                    f'Unclosed end of the attribute value of the tag "{tag}" '
                    f"at byte offset {begin_byte}"
                )
            raw_value = source[j + 1 : end]
            j = end + 1
        else:
            start = j
            while j < n and not source[j].isspace() and source[j] != ">":
                j += 1
            raw_value = source[start:j]
        value, _ = parse_html_text(raw_value)
        attrs[name] = value


def parse_html_text(raw: str) -> tuple[str, int]:
    """Decode the HTML character references in an attribute value."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "&":
            decoded, length = _decode_entity(raw, i)
            out.append(decoded)
            i += length
        else:
            out.append(raw[i])
            i += 1
    return "".join(out), i


def _is_language_pre(entity: dict[str, Any], done: list[dict[str, Any]]) -> bool:
    """``<pre><code class="language-x">`` is one pre entity with a language, not two."""
    if entity["type"] != "pre" or not done:
        return False
    last = done[-1]
    return last["type"] == "pre" and (last["offset"], last["length"]) == (
        entity["offset"],
        entity["length"],
    )


def _entity_for(tag: _Open, end: int) -> dict[str, Any] | None:
    length = end - tag.offset
    if length <= 0:
        return None
    kind = _SIMPLE_TAGS[tag.tag]
    entity: dict[str, Any] = {"type": kind, "offset": tag.offset, "length": length}
    if tag.tag == "a":
        href = tag.attrs.get("href", "")
        if not href:
            return None
        match = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if match:
            return {
                "type": "text_mention",
                "offset": tag.offset,
                "length": length,
                "user": {"id": int(match.group(1)), "is_bot": False, "first_name": ""},
            }
        entity["url"] = href
    elif tag.tag == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.tag == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs.get("emoji-id", "")
    elif tag.tag == "code" and tag.attrs.get("class", "").startswith("language-"):
        entity["type"] = "pre"
        entity["language"] = tag.attrs["class"][len("language-") :]
    return entity


def strip_markdown(source: str) -> str:
    """Plain text of a Markdown/MarkdownV2 message, for counting (see the module docstring)."""
    return _MARKDOWN_MARKERS.sub(lambda m: m.group(1) or "", source)


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The plain text and entities Telegram stores for ``text`` sent with ``parse_mode``.

    Raises :class:`EntityParseError` for malformed HTML and ``ValueError`` with Telegram's
    "unsupported parse_mode" for an unknown mode.
    """
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode in ("markdown", "markdownv2"):
        return strip_markdown(text), []
    raise ValueError("unsupported parse_mode")


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities, as Telegram adds them to messages users send."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group(0)),
        }
        for m in _COMMAND_RE.finditer(text)
    ]
