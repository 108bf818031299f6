"""Sentiment of feedback text (English baseline, language gate, emoji) and the overall label."""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bot.sentiment import (
    MAX_CHARS,
    BaselineClassifier,
    Classifier,
    ScoreBand,
    Sentiment,
    classify,
    detect_language,
    is_negative,
    overall,
    read_by_emoji,
)
from storage.models import SentimentLabel

NEG = SentimentLabel.NEGATIVE
NEU = SentimentLabel.NEUTRAL
POS = SentimentLabel.POSITIVE
MIX = SentimentLabel.MIXED
UNK = SentimentLabel.UNKNOWN

ROOT = Path(__file__).resolve().parents[2]


def assert_english(text: str, label: SentimentLabel) -> Sentiment:
    result = classify(text)
    assert result.language == "en", (text, result)
    assert result.label is label, (text, result)
    return result


# --- English ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The haircut was terrible",
        "Worst service I've ever had.",
        "rude staff",
        "The food was cold and bland",
        "Really disappointed with the delivery, the box was broken",
        "the room was dirty and the towels smelled",
        "Awful. Just awful.",
        "The staff were friendly but we waited 40 minutes",
    ],
)
def test_english_complaints_are_negative(text: str) -> None:
    result = assert_english(text, NEG)
    assert -1.0 <= result.score < 0.0


@pytest.mark.parametrize(
    "text",
    [
        "Great haircut, thank you!",
        "Excellent service, the staff were lovely",
        "all good",
        "Staff were friendly and quick",
        "Amazing food, we'll definitely come back",
        "Perfect as always 😊",
        "Anna was very helpful and patient with my questions",
        "Spotless rooms, highly recommend",
    ],
)
def test_english_praise_is_positive(text: str) -> None:
    result = assert_english(text, POS)
    assert 0.0 < result.score <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "I had a haircut on Monday",
        "The order arrived on Tuesday",
        "Booked a table for two at 7pm",
        "My name is on the booking",
        "Our first visit",
        "Same as usual",
    ],
)
def test_english_facts_are_neutral(text: str) -> None:
    assert_english(text, NEU)


@pytest.mark.parametrize(
    "text",
    [
        "not good",
        "The service was not good at all",
        "The coffee wasn't great",
        "The coffee wasn’t great",  # a phone's curly apostrophe
        "I didn't like the haircut",
        "not helpful at all",
        "would not recommend",
        "I wouldn't recommend this place",
    ],
)
def test_negated_praise_is_negative(text: str) -> None:
    assert_english(text, NEG)


@pytest.mark.parametrize("text", ["not bad at all", "The staff were not rude and not pushy"])
def test_negated_complaint_is_not_negative(text: str) -> None:
    result = classify(text)
    assert result.language == "en"
    assert result.label is not NEG


# One family of the supplementary lexicon per case; TextBlob alone reads each of these as 0.0.
@pytest.mark.parametrize(
    "text",
    [
        # waiting
        "waited 40 minutes",
        "We were waiting for over an hour",
        "the queue took forever",
        "it took more than an hour to get our food",
        "long wait for a simple trim",
        # unreachable
        "kept on hold for ages",
        "I was put on hold and then they hung up",
        "called three times, nobody answered",
        # leaving
        "never again",
        "Never coming here again.",
        "won't be back",
        # staff attitude
        "the manager ignored us",
        "the receptionist was unprofessional",
        # cleanliness
        "hair in my soup",
        "the toilets were smelly",
        # food
        "my steak was overcooked",
        "the chips were soggy",
        # money
        "overcharged",
        "they charged me twice",
        "still no refund",
        # availability
        "out of stock again",
        "the cake I ordered was sold out",
        # failures
        "my order was delayed",
        "the courier never showed up",
        "they lost my booking",
        "wrong order",
    ],
)
def test_complaint_cues_are_negative(text: str) -> None:
    assert_english(text, NEG)


@pytest.mark.parametrize(
    "text",
    [
        "very helpful",
        "spotless",
        "I recommend them",
        "thank you",
        "the new barber went above and beyond",
        "will be back",
        "five stars",
        "no complaints",
        "can't complain",
        "prompt and efficient",
    ],
)
def test_praise_cues_are_positive(text: str) -> None:
    assert_english(text, POS)


def test_a_short_wait_is_not_a_complaint() -> None:
    assert classify("We only waited 5 minutes").label is not NEG
    assert classify("We waited 50 minutes").label is NEG


def test_emoji_nudge_english_text() -> None:
    plain = classify("The order arrived")
    happy = classify("The order arrived 😊")
    angry = classify("The order arrived 😡")
    assert plain.label is NEU
    assert happy.label is POS and happy.language == "en"
    assert angry.label is NEG and angry.language == "en"
    assert classify("fine 😡😡😡").label is NEG
    assert classify("ok 👍").score > classify("ok").score


def test_lookalike_letters_are_read_as_english() -> None:
    assert_english("𝐠𝐫𝐞𝐚𝐭 𝐬𝐞𝐫𝐯𝐢𝐜𝐞", POS)
    assert_english("ｔｅｒｒｉｂｌｅ", NEG)


def test_mentions_and_links_do_not_decide() -> None:
    assert_english("@hearback_bot the staff were rude https://example.com/x?y=1", NEG)


# --- Other languages: never guessed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("服务太差了", "zh"),
        ("服务员态度很差，等了四十分钟", "zh"),
        ("非常好吃，下次还来", "zh"),
        ("料理はとても美味しかったです", "ja"),
        ("서비스가 너무 느려요", "ko"),
        ("Der Service war schrecklich", "de"),
        ("Die Bedienung war sehr unfreundlich", "de"),
        ("El servicio fue muy lento", "es"),
        ("Muy bien, gracias", "es"),
        ("Le service était très lent", "fr"),
        ("Il servizio era pessimo", "it"),
        ("O atendimento foi muito ruim", "pt"),
        ("Очень плохо", "ru"),
        ("Дуже погане обслуговування, ніхто не відповів", "uk"),
        ("Πολύ κακό", "el"),
        ("บริการแย่มาก", "th"),
        ("बहुत अच्छा", "hi"),
        ("ძალიან ცუდი", "ka"),
    ],
)
def test_other_languages_are_unknown_with_their_language(text: str, language: str) -> None:
    assert classify(text) == Sentiment(UNK, 0.0, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("خدمة سيئة جدا", "ar"),
        ("الموظفون لطفاء جدا", "ar"),
        ("خیلی بد بود", "fa"),
        ("השירות היה גרוע", "he"),
        ("שירות מעולה, תודה", "he"),
    ],
)
def test_right_to_left_text_is_unknown_with_its_language(text: str, language: str) -> None:
    assert classify(text) == Sentiment(UNK, 0.0, language)


def test_mixed_scripts_follow_the_dominant_script() -> None:
    # Mostly English with a few Chinese words: read as English.
    assert_english("The service was awful, 服务差", NEG)
    assert_english("Lovely staff and great coffee 谢谢", POS)
    # Mostly Chinese with an English word: not read.
    assert classify("服务员态度非常差，等了很久，太失望了 OK") == Sentiment(UNK, 0.0, "zh")
    # Mostly German with an English loan word: not read.
    assert classify("Das Personal war unfreundlich, kein guter Service") == Sentiment(
        UNK, 0.0, "de"
    )


def test_emoji_heavy_foreign_text_is_read_from_its_emoji() -> None:
    result = classify("太慢了😡😡")
    assert result.label is NEG
    assert result.language == "zh"
    assert classify("Muy bien 👍👍").label is POS


# --- No letters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("😡", NEG),
        ("😡😡😡", NEG),
        ("👎", NEG),
        ("💩💩", NEG),
        ("👍", POS),
        ("👍🏽", POS),
        ("❤️", POS),
        ("🙏🙏", POS),
        ("⭐⭐⭐⭐⭐", POS),
        ("🤷", NEU),
        ("🚗", NEU),
        ("😡👍", NEG),  # -0.9 and +0.6: the angry one is stronger
    ],
)
def test_emoji_only(text: str, label: SentimentLabel) -> None:
    result = classify(text)
    assert result.label is label
    assert result.language is None


@pytest.mark.parametrize("text", ["", " ", "   \n\t  ", "\u3000", "123", "?!", "10/10 ...", "-"])
def test_no_letters_and_no_emoji_is_unknown(text: str) -> None:
    assert classify(text) == Sentiment(UNK, 0.0, None)


# --- Robustness -----------------------------------------------------------------------------------


def test_very_long_text() -> None:
    complaint = "We waited 40 minutes and the staff were rude. "
    text = (complaint * (20_000 // len(complaint) + 1))[:20_000]
    assert len(text) == 20_000
    assert_english(text, NEG)


def test_only_the_beginning_of_an_overlong_text_is_read() -> None:
    text = "The staff were rude. " * (MAX_CHARS // 21 + 1) + "Great! " * 5_000
    assert classify(text).label is NEG


def test_random_unicode_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(20240611)
    # Whole code space, including lone surrogates, controls and unassigned points, plus a
    # denser pool of the scripts and emoji the classifier treats specially.
    pool = [
        chr(c) for r in (range(0x20, 0x250), range(0x370, 0x980), range(0xE00, 0xE80)) for c in r
    ]
    pool += [chr(c) for c in range(0x3040, 0x3100)] + [chr(c) for c in range(0x4E00, 0x4F00)]
    pool += [chr(c) for c in range(0x1F300, 0x1FA00)] + ["\u200d", "\ufe0f", "\ud800", " ", "\n"]
    valid = {NEG, NEU, POS, UNK}
    with caplog.at_level(logging.ERROR, logger="bot.sentiment"):
        for i in range(600):
            length = rng.randrange(0, 120)
            if i % 2:
                text = "".join(chr(rng.randrange(0x110000)) for _ in range(length))
            else:
                text = "".join(rng.choice(pool) for _ in range(length))
            result = classify(text)
            assert result.label in valid
            assert -1.0 <= result.score <= 1.0
            if result.label is UNK:
                assert result.score == 0.0
            assert result.language is None or (
                len(result.language) == 2 and result.language.islower()
            )
    assert not caplog.records, "classification failed internally on random input"


# Every branch of the language gate and of the emoji rule, and the text noise around them.
SCREENED = [
    "rude staff",
    "Rude staff",
    "@united thanks for nothing https://t.co/x #fail",
    "The service was awful, 服务差",
    "服务员态度非常差，等了很久，太失望了 OK",
    "服务太差了",
    "太慢了😡😡",
    "太慢了😡",
    "料理はとても美味しかったです",
    "서비스가 너무 느려요",
    "Der Service war schrecklich",
    "Muy bien 👍👍",
    "Muy bien 🚗🚗",
    "Очень плохо",
    "خدمة سيئة جدا",
    "השירות היה גרוע",
    "ძალიან ცუდი",
    "𝐠𝐫𝐞𝐚𝐭 𝐬𝐞𝐫𝐯𝐢𝐜𝐞",
    "wasn’t great",
    "😡",
    "🤷",
    "👍🏽",
    "",
    " ",
    "123",
    "?!",
    "x" * (MAX_CHARS + 10) + " 服务太差了" * 500,
]


@pytest.mark.parametrize("text", SCREENED)
def test_language_and_emoji_screening_agree_with_the_baseline(text: str) -> None:
    # A learned model routes comments by these two without running the baseline; they must
    # say exactly what the baseline's own answer would.
    result = classify(text)
    language = detect_language(text)
    assert language == result.language
    unread = language != "en" and not read_by_emoji(text)
    assert (result.label is UNK) == unread


def test_detect_language_on_random_unicode_agrees_with_the_baseline() -> None:
    rng = random.Random(7)
    pool = [chr(c) for c in range(0x20, 0x250)] + [chr(c) for c in range(0x4E00, 0x4E80)]
    pool += [chr(c) for c in range(0x1F600, 0x1F650)] + [" "] * 20
    for _ in range(300):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 40)))
        result = classify(text)
        assert detect_language(text) == result.language, text
        assert (result.label is UNK) == (detect_language(text) != "en" and not read_by_emoji(text))


def test_screening_refuses_non_str() -> None:
    with pytest.raises(TypeError):
        detect_language(b"rude staff")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        read_by_emoji(None)  # type: ignore[arg-type]


def test_classify_never_returns_mixed() -> None:
    for text in ["Great but rude", "5 stars, never again", "love it 😡", "ok"]:
        assert classify(text).label is not MIX


def test_non_str_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        classify(b"rude staff")  # type: ignore[arg-type]


def test_baseline_is_a_classifier_and_the_module_function_uses_it() -> None:
    baseline: Classifier = BaselineClassifier()
    for text in ["rude staff", "服务太差了", "👍", ""]:
        assert baseline.classify(text) == classify(text)


def test_import_is_cheap() -> None:
    code = (
        "import sys, bot.sentiment; "
        "print(any(m in sys.modules for m in ('textblob', 'nltk', 'py3langid', 'numpy')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- Overall label --------------------------------------------------------------------------------

CLEARLY_NEGATIVE = Sentiment(NEG, -0.6, "en")
FAINTLY_NEGATIVE = Sentiment(NEG, -0.1, "en")
NEUTRAL_TEXT = Sentiment(NEU, 0.0, "en")
POSITIVE_TEXT = Sentiment(POS, 0.7, "en")
UNREAD = Sentiment(UNK, 0.0, "zh")


@pytest.mark.parametrize(
    ("sentiment", "band", "expected"),
    [
        # No readable text: the score decides.
        (None, ScoreBand.LOW, NEG),
        (None, ScoreBand.MIDDLE, NEU),
        (None, ScoreBand.HIGH, POS),
        (UNREAD, ScoreBand.LOW, NEG),
        (UNREAD, ScoreBand.MIDDLE, NEU),
        (UNREAD, ScoreBand.HIGH, POS),
        # Neither score nor readable text.
        (None, None, UNK),
        (UNREAD, None, UNK),
        # Unsolicited feedback: the text decides.
        (CLEARLY_NEGATIVE, None, NEG),
        (NEUTRAL_TEXT, None, NEU),
        (POSITIVE_TEXT, None, POS),
        # Low score: negative whatever the words.
        (CLEARLY_NEGATIVE, ScoreBand.LOW, NEG),
        (NEUTRAL_TEXT, ScoreBand.LOW, NEG),
        (POSITIVE_TEXT, ScoreBand.LOW, NEG),
        # Middle score: a complaint makes it negative, praise does not lift it.
        (CLEARLY_NEGATIVE, ScoreBand.MIDDLE, NEG),
        (FAINTLY_NEGATIVE, ScoreBand.MIDDLE, NEG),
        (NEUTRAL_TEXT, ScoreBand.MIDDLE, NEU),
        (POSITIVE_TEXT, ScoreBand.MIDDLE, NEU),
        # High score: clearly negative words make it mixed, a quibble does not.
        (CLEARLY_NEGATIVE, ScoreBand.HIGH, MIX),
        (Sentiment(NEG, -0.25, "en"), ScoreBand.HIGH, MIX),
        (FAINTLY_NEGATIVE, ScoreBand.HIGH, POS),
        (NEUTRAL_TEXT, ScoreBand.HIGH, POS),
        (POSITIVE_TEXT, ScoreBand.HIGH, POS),
    ],
)
def test_overall(
    sentiment: Sentiment | None, band: ScoreBand | None, expected: SentimentLabel
) -> None:
    assert overall(sentiment, band) is expected


def test_overall_with_classified_text() -> None:
    assert overall(classify("Thanks anyway"), ScoreBand.LOW) is NEG
    assert overall(classify("The staff were rude and we waited an hour"), ScoreBand.HIGH) is MIX
    assert overall(classify("服务太差了"), ScoreBand.HIGH) is POS
    assert overall(classify(""), None) is UNK


@pytest.mark.parametrize(
    ("label", "negative"),
    [(NEG, True), (MIX, True), (NEU, False), (POS, False), (UNK, False)],
)
def test_is_negative(label: SentimentLabel, negative: bool) -> None:
    assert is_negative(label) is negative
