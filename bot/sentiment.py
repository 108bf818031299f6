"""Sentiment of customer feedback text, and the label that combines it with the survey score.

Design
------
* One interface. `Classifier` is a protocol with a single `classify(text) -> Sentiment`; callers
  use the module-level `classify()` or hold a `Classifier`. A learned model trained on the
  business's own labelled comments can later replace `BaselineClassifier` without touching them.
* Baseline. English text is scored with TextBlob's pattern lexicon (bundled inside the textblob
  package; it needs no NLTK download and no network). That lexicon is mostly adjectives from
  product reviews, so it misses the way customers actually complain: "waited 40 minutes", "kept
  on hold", "never again", "overcharged". A small supplementary lexicon of such service cues
  adds its own assessments alongside TextBlob's, and polar emoji count as assessments too; the
  polarity is the mean of everything found.
* Language gate. The baseline can read English only, so language is decided first. Letters are
  counted per script and the dominant script (by letter count) wins, which also settles mixed
  text such as English with a few Chinese words. Scripts that identify their language well
  enough (Han, kana, Hangul, Hebrew, Greek, Thai, Devanagari) are mapped directly; Arabic and
  Cyrillic go to py3langid restricted to that script's languages. For Latin script, py3langid
  alone is unreliable on the two-to-four word comments customers write ("rude staff" comes out
  Danish), so the text is also English when most of its words are English words.
* No guessing. Text in any other language is labelled UNKNOWN with score 0.0 and its language
  kept. An English lexicon applied to German or Chinese finds almost nothing and would report
  "neutral", which looks like a verdict but is really silence; UNKNOWN lets `overall()` fall
  back on the customer's score, lets statistics count unread comments honestly, and shows which
  languages need a real model. The one exception is emoji-heavy text (at least as many emoji as
  words): emoji read the same in every language, so they decide, and the language is kept.
* The overall label. `overall()` combines the score band the customer tapped with the text. The
  score is the customer's own verdict, so it leads; the text can only make things worse (a high
  score with clearly negative words is MIXED, routed like a negative), never better.
* Cost. TextBlob (which imports NLTK), its word lists and py3langid (which imports numpy and
  unpacks a model) take about half a second to load, so they load on first use, once per
  process, keeping the bot's start-up fast; `warm_up()` loads them ahead of the first comment.
  After that a short comment takes well under a millisecond, and text beyond MAX_CHARS is not
  read at all. `detect_language()` and `read_by_emoji()` give the gate's decision without
  scoring, so a learned model can take the comments the baseline would not read without
  running it first.
"""

from __future__ import annotations

import enum
import functools
import logging
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from storage.models import SentimentLabel

__all__ = [
    "MIXED_THRESHOLD",
    "NEGATIVE_THRESHOLD",
    "POSITIVE_THRESHOLD",
    "BaselineClassifier",
    "Classifier",
    "ScoreBand",
    "Sentiment",
    "classify",
    "detect_language",
    "is_negative",
    "overall",
    "read_by_emoji",
    "warm_up",
]

logger = logging.getLogger(__name__)

# Polarity thresholds, asymmetric on purpose. Positive from +0.1, TextBlob's own convention
# (textblob.en.positive): praise diluted by neutral words ("fine but a bit late" +0.06) stays
# neutral. Negative already from -0.05: a faint negative balance is usually a complaint
# with a polite word in it ("friendly staff but we waited 40 minutes" -0.06), and missing an
# unhappy customer costs more than a needless look. On the airline tweets in /work/shared/data
# (3 classes) ±0.1 scores 0.536 accuracy, -0.05/+0.1 0.553; of the tweets scored in
# (-0.1, -0.05], 80 % were labelled negative by people.
NEGATIVE_THRESHOLD = -0.05
POSITIVE_THRESHOLD = 0.1
# A high score is overridden (MIXED) only by clearly negative words. -0.25 lets a plain complaint
# through ("rude staff" -0.3, "not good" -0.35, "waited 40 minutes" -0.5) but not a comment that
# is only faintly negative on balance ("friendly staff but we waited 40 minutes" -0.06), which
# under a high score is a quibble, not a reason to open a staff case for a happy customer.
MIXED_THRESHOLD = -0.25

# Work is capped: a comment longer than this is classified by its beginning. Sentiment and
# language are settled long before 5,000 characters, and without the cap a pasted document
# (or a hostile one) would cost time on the event loop proportional to its length.
MAX_CHARS = 5_000


@dataclass(frozen=True, slots=True)
class Sentiment:
    """What a classifier read in one text.

    `label` is NEGATIVE, NEUTRAL, POSITIVE or UNKNOWN (never MIXED: that needs the score, see
    `overall`). `score` is the polarity in [-1.0, 1.0], 0.0 when unknown. `language` is an ISO
    639-1 code, or None when the text has no letters (emoji, digits, punctuation).
    """

    label: SentimentLabel
    score: float
    language: str | None


class Classifier(Protocol):
    def classify(self, text: str) -> Sentiment: ...


class ScoreBand(enum.StrEnum):
    LOW = "low"
    MIDDLE = "middle"
    HIGH = "high"


_UNKNOWN = Sentiment(SentimentLabel.UNKNOWN, 0.0, None)


def _label(score: float) -> SentimentLabel:
    if score <= NEGATIVE_THRESHOLD:
        return SentimentLabel.NEGATIVE
    if score >= POSITIVE_THRESHOLD:
        return SentimentLabel.POSITIVE
    return SentimentLabel.NEUTRAL


# --- Emoji --------------------------------------------------------------------------------------

# Deliberately small: only emoji whose meaning in feedback is unambiguous. 🔥, 😂 or 🙃 can be
# praise or sarcasm, so they stay neutral. ⭐ is positive although "⭐" alone might mean one star;
# star ratings arrive through the score buttons, not as text.
_EMOJI_POLARITY: dict[str, float] = {
    "😡": -0.9,
    "🤬": -1.0,
    "😠": -0.8,
    "👎": -0.7,
    "😞": -0.6,
    "😢": -0.6,
    "😭": -0.6,
    "💩": -0.8,
    "🙁": -0.5,
    "☹": -0.5,
    "😤": -0.6,
    "🤮": -0.9,
    "😊": 0.7,
    "😀": 0.6,
    "😃": 0.6,
    "😄": 0.6,
    "😁": 0.6,
    "🙂": 0.4,
    "😍": 0.9,
    "🥰": 0.9,
    "👍": 0.6,
    "👏": 0.6,
    "❤": 0.8,
    "♥": 0.8,
    "💕": 0.8,
    "🙏": 0.5,
    "👌": 0.6,
    "⭐": 0.5,
    "🌟": 0.5,
    "💯": 0.7,
}

# Pictographs and symbols that count as emoji (polar or not). Skin-tone modifiers, ZWJ and
# variation selectors are not letters and not counted, so "👍🏽" is one emoji.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2190-\u21ff\u2300-\u23ff\u3030\u303d]"
)
_EMOJI_MODIFIERS = re.compile("[\U0001f3fb-\U0001f3ff]")


def _emoji_polarities(text: str) -> tuple[int, list[float]]:
    """Number of emoji in the text and the polarities of those in the table."""
    found = [e for e in _EMOJI.findall(text) if not _EMOJI_MODIFIERS.fullmatch(e)]
    return len(found), [_EMOJI_POLARITY[e] for e in found if e in _EMOJI_POLARITY]


# --- Scripts and language -----------------------------------------------------------------------

_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
# Links and @handles are not language; left in, "@united" or a URL skew the word counts.
_NOISE = re.compile(r"https?://\S+|www\.\S+|(?<!\w)@\w+")
# Hashtags run words together ("#bestairlineever"), so they are not counted as words when
# deciding the language; the sentiment lexicon still reads them ("#fail").
_HASHTAG = re.compile(r"#\w+")

_SCRIPT_PATTERNS: dict[str, re.Pattern[str]] = {
    "latin": re.compile("[A-Za-z\u00aa\u00ba\u00c0-\u024f\u0250-\u02af\u1e00-\u1eff\uff21-\uff5a]"),
    "han": re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3007\U00020000-\U0003134f]"),
    "kana": re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"),
    "hangul": re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff]"),
    "arabic": re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"),
    "hebrew": re.compile("[\u0590-\u05ff\ufb1d-\ufb4f]"),
    "cyrillic": re.compile("[\u0400-\u052f\u1c80-\u1c8f\u2de0-\u2dff\ua640-\ua69f]"),
    "greek": re.compile("[\u0370-\u03ff\u1f00-\u1fff]"),
    "thai": re.compile("[\u0e00-\u0e7f]"),
    "devanagari": re.compile("[\u0900-\u097f\ua8e0-\ua8ff]"),
}


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Scripts written by (nearly) one language in customer feedback: no identifier needed.
# Devanagari is here too: py3langid calls short Hindi "Nepali" ("बहुत अच्छा"), and Hindi is by far
# the likeliest writer.
_SCRIPT_LANGUAGE = {"hebrew": "he", "greek": "el", "thai": "th", "devanagari": "hi"}
# Scripts shared by several languages: py3langid chooses, but only among these (the first is
# the answer if it cannot), so a short Russian comment is not called Serbian-in-Latin or Tatar.
_SCRIPT_CANDIDATES = {
    "arabic": ("ar", "fa", "ur", "ps", "ug"),
    "cyrillic": ("ru", "uk", "bg", "be", "sr", "mk", "kk", "ky", "mn", "tg", "tt", "ba"),
}
# Latin-script languages with an ISO 639-1 code that py3langid knows (English is decided before
# it is asked, and its other labels include ISO 639-3 codes such as "ary", which are skipped).
_LATIN_LANGUAGES = _word_set(
    "af an az br bs ca cs cy da de en eo es et eu fi fo fr fy ga gd gl ha hr ht hu id ig is it jv"
    " ku la lb lg ln lt lv mg ms mt nl nn no oc om pl pt qu ro rw se sk sl sn so sq st sv sw tk tl"
    " tr uz vi vo wa xh yo zu"
)
# Rarer scripts, named by the first word of a letter's Unicode name.
_UNICODE_SCRIPT_LANGUAGE = {
    "ARMENIAN": "hy",
    "BENGALI": "bn",
    "ETHIOPIC": "am",
    "GEORGIAN": "ka",
    "GUJARATI": "gu",
    "GURMUKHI": "pa",
    "KANNADA": "kn",
    "KHMER": "km",
    "LAO": "lo",
    "MALAYALAM": "ml",
    "MYANMAR": "my",
    "ORIYA": "or",
    "SINHALA": "si",
    "TAMIL": "ta",
    "TELUGU": "te",
    "TIBETAN": "bo",
}

# Latin text is English when at least this share of its words are English words. py3langid
# needs more text than customers write: "rude staff" is Danish to it and "all good" only barely
# English. Foreign words that happen to be English too ("service", "war") stay below 60 % in
# real sentences ("Der Service war schrecklich": 2 of 4).
ENGLISH_WORD_SHARE = 0.6

# The English word list is TextBlob's POS lexicon (Brown/WSJ words) without the tags that bring
# in foreign or proper words, plus the sentiment lexicon and these function words and
# contractions, which the POS lexicon lists split ("did" + "n't").
_FUNCTION_WORDS = _word_set(
    """
    a an the and or but if so nor yet of to in on at by for from with without about into over
    under after before since until than then there here this that these those i me my mine we
    us our ours you your yours he him his she her hers it its they them their theirs who whom
    whose which what when where why how all any both each few more most other some such no not
    only own same too very can will just don should now is are was were be been being have has
    had having do does did doing would could shall might must may ok okay thanks thank pls
    please hi hello lol yes yeah nope yup nah
    thx thnx ty u ur r plz omg btw asap idk smh
    i'm i've i'd i'll you're you've you'd you'll he's she's it's we're we've we'd we'll they're
    they've they'd they'll that's there's what's who's let's isn't aren't wasn't weren't hasn't
    haven't hadn't doesn't don't didn't won't wouldn't shan't shouldn't can't cannot couldn't
    mustn't mightn't needn't ain't y'all
    """
)
_EXCLUDED_TAGS = frozenset({"FW", "NNP", "NNPS", "SYM", "CD", "LS"})


def _textblob_dir() -> Path:
    import textblob.en

    return Path(textblob.en.__file__).parent


@functools.cache
def _english_words() -> frozenset[str]:
    words = set(_FUNCTION_WORDS)
    words.update(w for w in _pattern_sentiment() if isinstance(w, str) and w.isalpha())
    with (_textblob_dir() / "en-lexicon.txt").open(encoding="utf-8") as lexicon:
        for line in lexicon:
            parts = line.split()
            if len(parts) == 2 and parts[1] not in _EXCLUDED_TAGS and parts[0].isalpha():
                words.add(parts[0].lower())
    return frozenset(words)


def _rank_languages(text: str, allowed: Callable[[str], bool]) -> str | None:
    """py3langid's most likely language among those `allowed` accepts."""
    # The module-level rank() keeps one identifier per process, loaded on first call; it is the
    # same call in py3langid 0.3 and 0.4, whose class APIs differ.
    from py3langid.langid import rank

    for language, _ in rank(text):
        if allowed(language):
            return str(language)
    return None


def _script_counts(letters: str) -> dict[str, int]:
    if letters.isascii():
        return {"latin": len(letters)}
    counts = {name: len(p.findall(letters)) for name, p in _SCRIPT_PATTERNS.items()}
    counts["other"] = len(letters) - sum(counts.values())
    return counts


def _other_script_language(letters: str, text: str) -> str | None:
    for letter in letters:
        if not any(p.match(letter) for p in _SCRIPT_PATTERNS.values()):
            script = unicodedata.name(letter, "").split(" ", 1)[0]
            if script in _UNICODE_SCRIPT_LANGUAGE:
                return _UNICODE_SCRIPT_LANGUAGE[script]
            break
    # A script this module does not know: py3langid's best guess, but never English, which
    # would send the text to the English lexicon.
    return _rank_languages(text, lambda language: len(language) == 2 and language != "en")


def _english_share(words: list[str]) -> float:
    latin = [w for w in words if _SCRIPT_PATTERNS["latin"].match(w)]
    if not latin:
        return 0.0
    vocabulary = _english_words()
    known = sum(1 for w in latin if w.lower() in vocabulary)
    return known / len(latin)


def _detect_language(text: str, letters: str, words: list[str]) -> str | None:
    counts = _script_counts(letters)
    cjk = counts.get("han", 0) + counts.get("kana", 0) + counts.get("hangul", 0)
    grouped = {k: v for k, v in counts.items() if k not in ("han", "kana", "hangul")}
    grouped["cjk"] = cjk
    # Ties go to Latin (first in insertion order): a half-English text is read, not skipped.
    script = max(grouped, key=lambda k: grouped[k])
    if script == "cjk":
        hangul, kana = counts.get("hangul", 0), counts.get("kana", 0)
        if hangul and hangul >= kana:
            return "ko"
        return "ja" if kana else "zh"
    if script in _SCRIPT_LANGUAGE:
        return _SCRIPT_LANGUAGE[script]
    if script in _SCRIPT_CANDIDATES:
        candidates = _SCRIPT_CANDIDATES[script]
        return _rank_languages(text, candidates.__contains__) or candidates[0]
    if script == "other":
        return _other_script_language(letters, text)
    if _english_share(words) >= ENGLISH_WORD_SHARE:
        return "en"
    return _rank_languages(text, _LATIN_LANGUAGES.__contains__) or "en"


# --- English ------------------------------------------------------------------------------------


@functools.cache
def _pattern_sentiment() -> Any:
    # textblob.en.sentiment is the lexicon behind TextBlob's default PatternAnalyzer; calling it
    # directly gives the per-word assessments the cues are blended with, in one pass.
    from textblob.en import sentiment

    if not dict.__len__(sentiment):
        sentiment.load()
    return sentiment


# Service cues TextBlob's lexicon lacks or underrates. Each match adds one assessment to the
# mean, like one lexicon word. Single words that TextBlob already scores ("rude" -0.3, "dirty"
# -0.6, "cold" -0.6, "slow" -0.3, "friendly" +0.375) are not repeated, or they would count
# twice. The families are small and concrete: each cue is something that went wrong (or right)
# in a visit, not a general opinion word.
@dataclass(frozen=True, slots=True)
class _Cue:
    pattern: re.Pattern[str]
    polarity: float
    # False for cues a preceding negation does not reverse: "no refund" is still a complaint.
    negatable: bool = True
    # Extra test on the match, for cues that depend on a quantity.
    accept: Callable[[re.Match[str]], bool] | None = None


def _long_wait(match: re.Match[str]) -> bool:
    # "waited 5 minutes" is a fact, often praise; a complaint starts around a quarter of an hour.
    number, unit = match.group("n"), match.group("unit")
    return not (number.isdigit() and unit.startswith("m") and int(number) < 15)


_NUMBER = r"\b(?P<n>\d+|an?|one|two|three|four|five|several|many|over|almost|nearly|about)"
_UNIT = r"(?P<unit>min|mins|minutes?|hours?|hrs?|h)\b"
_WAIT = r"\b(?:waited|waiting|wait|queued?|queuing|in line|on hold|took|takes|taking)\b"


def _cue(pattern: str, polarity: float, **kwargs: Any) -> _Cue:
    return _Cue(re.compile(pattern), polarity, **kwargs)


_CUES: tuple[_Cue, ...] = (
    # Waiting, the most common complaint: TextBlob reads "waited 40 minutes" as 0.0.
    _cue(
        rf"{_WAIT}\D{{0,20}}?{_NUMBER}(?:\s+(?:an?|half|more|\w+))?\s*\+?\s*{_UNIT}",
        -0.5,
        accept=_long_wait,
    ),
    _cue(
        rf"{_WAIT}.{{0,15}}?\b(?:forever|ages|too long|so long)\b",
        -0.5,
    ),
    _cue(r"\blong (?:wait|waits|waiting|queues?|lines?|delays?)\b", -0.5),
    _cue(r"\bstill waiting\b", -0.5),
    # Unreachable: "kept on hold", "nobody answered".
    _cue(r"\b(?:kept|put|left|placed) (?:me |us )?on hold\b", -0.5),
    _cue(r"\bhung up\b", -0.5),
    _cue(
        r"\b(?:no ?one|nobody)\b.{0,12}?\b(?:answer(?:ed|s)?|call(?:ed|s)? back|repl(?:y|ied)"
        r"|respond(?:ed)?|picks? up|picked up)\b",
        -0.5,
    ),
    _cue(r"\bnever\b.{0,12}?\b(?:answered|called back|got back|replied|responded)\b", -0.5),
    _cue(r"\bno (?:answer|response|reply)\b", -0.4),
    # "didn't like": TextBlob has no score for "like" (it is as often a preposition).
    _cue(r"\b(?:didn't|did not|don't|do not|doesn't|does not)\s+(?:really\s+)?like\b", -0.5),
    # Attitude of staff ("rude" is TextBlob's).
    _cue(
        r"\b(?:ignored|ignoring|unprofessional|disrespectful|condescending|arrogant|unfriendly"
        r"|impolite|unhelpful|pushy|yelled|shouted)\b",
        -0.6,
    ),
    # Cleanliness ("dirty", "filthy" are TextBlob's).
    _cue(
        r"\b(?:unclean|smelly|smelled|smelt|stank|stinks|sticky|cockroach(?:es)?|mou?ldy?)\b", -0.6
    ),
    _cue(r"\bhair in (?:my|the|our)\b", -0.6),
    # Food ("cold", "stale", "bland" are TextBlob's).
    _cue(r"\b(?:undercooked|overcooked|burnt|tasteless|inedible|soggy)\b", -0.6),
    # Money.
    _cue(r"\b(?:overcharged|overpriced|over-priced|rip-?off|ripped off|double[- ]charged)\b", -0.6),
    _cue(r"\bcharged (?:me |us )?twice\b", -0.6),
    _cue(r"\bhidden (?:fees?|charges?|costs?)\b", -0.6),
    _cue(r"\brefund\b", -0.4, negatable=False),
    # Availability.
    _cue(r"\b(?:out of stock|sold out|ran out|unavailable)\b", -0.4),
    # Things that failed to happen, or broke.
    _cue(r"\b(?:delayed|cancell?ed|damaged)\b", -0.4),
    _cue(
        r"\b(?:never|didn't|did not|hasn't|has not|haven't|have not)\b"
        r" (?:arrived?|showed up|turned up|came)\b",
        -0.5,
    ),
    _cue(
        r"\blost (?:my|our|the) (?:luggage|bags?|order|booking|reservation|parcel|package)\b",
        -0.6,
        negatable=False,
    ),
    _cue(r"\bwrong (?:order|item|size|dish|change|bill)\b", -0.5),
    # Leaving: the strongest signal a customer gives.
    _cue(r"\bnever\b.{0,30}?\bagain\b", -0.8),
    _cue(
        r"\b(?:never|won't|will not|not)\b (?:be |come |coming |going )?(?:back|returning)\b", -0.8
    ),
    # Praise TextBlob misses ("friendly", "quick", "clean" are its own).
    _cue(r"\b(?:helpful|spotless|efficient|polite|knowledgeable|welcoming|tasty|punctual)\b", 0.5),
    _cue(r"\bprompt(?:ly)?\b", 0.4),
    _cue(r"\b(?:highly )?recommend(?:ed|ing)?\b", 0.5),
    _cue(r"\bthank (?:you|u)\b|\bthankyou\b", 0.3),
    _cue(r"\bappreciate\b", 0.4),
    _cue(r"\babove and beyond\b", 0.8),
    _cue(
        r"\b(?:will|i'll|we'll)\b (?:definitely |surely |certainly )?"
        r"(?:be back|come back|come again|return)\b",
        0.6,
    ),
    _cue(r"\b(?:5|five|10|ten) stars?\b|\b10/10\b", 0.8),
    _cue(r"\bno (?:complaints?|issues|problems)\b|\bcan't complain\b", 0.4),
)
# A cue preceded (within three words, same clause) by one of these is negated: "not helpful",
# "wouldn't recommend". A negated complaint is only faint praise ("not unfriendly"), but
# customers negate praise to complain ("not helpful at all"), so the two flip with different
# strength, as TextBlob halves a negated word.
_NEGATION = re.compile(r"\b(?:not|no|never|hardly|without)\b|n't\b")
_NEGATED_PRAISE = -0.8
_NEGATED_COMPLAINT = -0.5
_LAST_WORDS = re.compile(r"(?:[\w']+\W+){0,3}$")
_CLAUSE_BREAK = re.compile(r"[.!?;,]|\bbut\b")
_OWN_NEGATION = re.compile(r"\b(?:no|never|not|nobody|no one|noone)\b|n't\b")


def _negated(lower: str, start: int) -> bool:
    before = _CLAUSE_BREAK.split(lower[max(0, start - 40) : start])[-1]
    window = _LAST_WORDS.search(before)
    return window is not None and _NEGATION.search(window.group()) is not None


def _cue_assessments(lower: str) -> list[float]:
    found: list[float] = []
    for cue in _CUES:
        for match in cue.pattern.finditer(lower):
            if cue.accept is not None and not cue.accept(match):
                continue
            # A cue that carries its own negation ("never again", "no answer") is not reversed
            # by another one before it.
            if (
                cue.negatable
                and not _OWN_NEGATION.search(match.group())
                and _negated(lower, match.start())
            ):
                factor = _NEGATED_PRAISE if cue.polarity > 0 else _NEGATED_COMPLAINT
                found.append(cue.polarity * factor)
            else:
                found.append(cue.polarity)
    return found


# TextBlob's tokenizer splits "wasn't" into "was n ' t", so its negation rule never sees the
# "n't" and "wasn't great" scores +0.8. Spelling the negation out restores it.
_CONTRACTED_NOT = re.compile(r"n't\b", re.IGNORECASE)


# Words TextBlob scores that describe rather than judge in a service comment: "it took more than
# an hour" is not praise (+0.5 for "more"), "our first visit" or "the new barber" neither, and
# "the usual" is not a complaint (-0.25). Alone they are ignored; as modifiers ("much better")
# TextBlob still uses them. Removing them added 1.2 points of accuracy on the airline tweets.
_DESCRIPTIVE = frozenset(
    {"usual", "other", "first", "new", "old", "more", "much", "many", "full", "high", "large"}
    | {"early", "real"}
)


def _english_polarity(text: str, emoji: list[float]) -> float:
    expanded = _CONTRACTED_NOT.sub(" not", text)
    assessments = [
        p
        for words, p, _, _ in _pattern_sentiment()(expanded).assessments
        if not (len(words) == 1 and words[0] in _DESCRIPTIVE)
    ]
    assessments += _cue_assessments(text.lower())
    assessments += emoji
    if not assessments:
        return 0.0
    return max(-1.0, min(1.0, math.fsum(assessments) / len(assessments)))


# --- Classifier ---------------------------------------------------------------------------------


class BaselineClassifier:
    """TextBlob plus service cues for English; UNKNOWN for every other language."""

    def classify(self, text: str) -> Sentiment:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        try:
            return self._classify(_normalised(text))
        except Exception:
            # A classifier bug must never lose the customer's answer: report it and let the
            # score decide (overall() treats UNKNOWN text as no text).
            logger.exception("sentiment classification failed")
            return _UNKNOWN

    def _classify(self, text: str) -> Sentiment:
        if not text or text.isspace():
            return _UNKNOWN
        clean = _denoised(text)
        emoji_count, emoji = _emoji_polarities(clean)
        letters = "".join(_LETTER.findall(clean))
        if not letters:
            if emoji:
                score = math.fsum(emoji) / len(emoji)
                return Sentiment(_label(score), score, None)
            if emoji_count:
                return Sentiment(SentimentLabel.NEUTRAL, 0.0, None)
            return _UNKNOWN
        words = _words(clean)
        language = _detect_language(clean, letters, words)
        if language == "en":
            score = _english_polarity(clean, emoji)
            return Sentiment(_label(score), score, "en")
        if _emoji_heavy(emoji_count, emoji, words):
            # Emoji-heavy ("太慢了😡😡"): the emoji are read, the words are not.
            score = math.fsum(emoji) / len(emoji)
            return Sentiment(_label(score), score, language)
        return Sentiment(SentimentLabel.UNKNOWN, 0.0, language)


def _normalised(text: str) -> str:
    # NFKC folds the look-alikes people paste from "font" sites (𝐠𝐫𝐞𝐚𝐭, ｇｒｅａｔ) into plain
    # letters the lexicons know.
    return unicodedata.normalize("NFKC", text[:MAX_CHARS])[:MAX_CHARS]


def _denoised(text: str) -> str:
    # Phones type curly apostrophes ("wasn’t"); the lexicons and cues spell them straight.
    return _NOISE.sub(" ", text).replace("’", "'").replace("‘", "'")


def _words(clean: str) -> list[str]:
    return _WORD.findall(_HASHTAG.sub(" ", clean)) or _WORD.findall(clean)


def _emoji_heavy(emoji_count: int, emoji: list[float], words: list[str]) -> bool:
    # Text with letters is read by its emoji only when some are polar and they are at least as
    # many as the words.
    return bool(emoji) and emoji_count >= len(words)


def detect_language(text: str) -> str | None:
    """The language the baseline decides for `text`, without scoring it.

    Same normalisation and decision as `BaselineClassifier` (ISO 639-1 code, None when the text
    has no letters), so a learned model and the baseline always agree on a comment's language.
    Costs a few microseconds for Chinese or English (no TextBlob scoring); Latin text that is
    not mostly English words, and Arabic or Cyrillic, also ask py3langid.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    try:
        clean = _denoised(_normalised(text))
        letters = "".join(_LETTER.findall(clean))
        return _detect_language(clean, letters, _words(clean)) if letters else None
    except Exception:
        logger.exception("language detection failed")
        return None


def read_by_emoji(text: str) -> bool:
    """Whether the baseline reads `text` by its emoji when it is not English: some emoji and
    no letters, or polar emoji at least as many as the words.

    With `detect_language` this tells, without scoring, when the baseline has nothing to say:
    it labels a text UNKNOWN exactly when the language is not "en" and this is False.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    clean = _denoised(_normalised(text))
    emoji_count, emoji = _emoji_polarities(clean)
    if not _LETTER.search(clean):
        return emoji_count > 0
    return _emoji_heavy(emoji_count, emoji, _words(clean))


_default = BaselineClassifier()


def classify(text: str) -> Sentiment:
    """Classify with the shared default classifier."""
    return _default.classify(text)


def warm_up() -> None:
    """Load the lexicons and the language model now rather than on the first comment.

    Takes about half a second and blocks; call it from a worker thread
    (`await asyncio.to_thread(warm_up)`) after start-up if the first comment must not wait.
    """
    _default.classify("Thank you, all good.")
    _default.classify("Très bien, merci")


# --- Overall label ------------------------------------------------------------------------------

_BAND_LABEL = {
    ScoreBand.LOW: SentimentLabel.NEGATIVE,
    ScoreBand.MIDDLE: SentimentLabel.NEUTRAL,
    ScoreBand.HIGH: SentimentLabel.POSITIVE,
}


def overall(sentiment: Sentiment | None, band: ScoreBand | None) -> SentimentLabel:
    """The label used for routing and statistics, from the score band and the text.

    `band` is None for unsolicited feedback (no score); `sentiment` is None when there is no
    text. The score is the customer's own verdict and leads; the text can only pull it down:

    - no readable text (None or UNKNOWN): LOW -> NEGATIVE, MIDDLE -> NEUTRAL, HIGH -> POSITIVE,
      and UNKNOWN when there is no band either;
    - no band: the text label;
    - LOW: NEGATIVE whatever the text ("thanks anyway" after a 1 is politeness, not praise);
    - MIDDLE: NEGATIVE with negative text (a lukewarm score plus a complaint is a complaint),
      otherwise NEUTRAL (positive words do not lift a middling score: the customer chose it);
    - HIGH: MIXED with clearly negative text (label NEGATIVE and score <= MIXED_THRESHOLD),
      otherwise POSITIVE (faintly negative text under a high score is usually a quibble).

    MIXED is routed like a negative by callers; see `is_negative`.
    """
    readable = sentiment is not None and sentiment.label is not SentimentLabel.UNKNOWN
    if band is None:
        return sentiment.label if sentiment is not None and readable else SentimentLabel.UNKNOWN
    if not readable or sentiment is None:
        return _BAND_LABEL[band]
    if band is ScoreBand.LOW:
        return SentimentLabel.NEGATIVE
    if band is ScoreBand.MIDDLE:
        if sentiment.label is SentimentLabel.NEGATIVE:
            return SentimentLabel.NEGATIVE
        return SentimentLabel.NEUTRAL
    if sentiment.label is SentimentLabel.NEGATIVE and sentiment.score <= MIXED_THRESHOLD:
        return SentimentLabel.MIXED
    return SentimentLabel.POSITIVE


def is_negative(label: SentimentLabel) -> bool:
    """Whether a label calls for a person: NEGATIVE, or MIXED (high score, negative words)."""
    return label in (SentimentLabel.NEGATIVE, SentimentLabel.MIXED)
