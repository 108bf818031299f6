"""Learned sentiment and reasons (bot.learning): labels, training, validation, storage, odd text."""

from __future__ import annotations

import csv
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from bot.learning import (
    MIN_EXAMPLES,
    SENTIMENT_CLASSES,
    ReasonModel,
    SentimentModel,
    label_from_score,
    parse_label,
    parse_labels,
    score_predictions,
    train_reasons,
    train_sentiment,
    validate_reasons,
    validate_sentiment,
)
from bot.sentiment import Classifier
from storage.models import SentimentLabel, SurveyScale

NEG = SentimentLabel.NEGATIVE
NEU = SentimentLabel.NEUTRAL
POS = SentimentLabel.POSITIVE
UNK = SentimentLabel.UNKNOWN

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

# --- Labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("score", "label"), [(1, NEG), (2, NEG), (3, NEU), (4, POS), (5, POS)])
def test_csat_bands(score: int, label: SentimentLabel) -> None:
    assert label_from_score(SurveyScale.CSAT, score) is label


@pytest.mark.parametrize(
    ("score", "label"), [(0, NEG), (6, NEG), (7, NEU), (8, NEU), (9, POS), (10, POS)]
)
def test_nps_bands(score: int, label: SentimentLabel) -> None:
    assert label_from_score(SurveyScale.NPS, score) is label


@pytest.mark.parametrize(("scale", "score"), [("csat", 0), ("csat", 6), ("nps", -1), ("nps", 11)])
def test_scores_outside_the_scale_are_refused(scale: str, score: int) -> None:
    with pytest.raises(ValueError, match=str(score)):
        label_from_score(SurveyScale(scale), score)


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("negative", NEG),
        ("Negative", NEG),
        (" NEG ", NEG),
        ("neutral", NEU),
        ("neu", NEU),
        ("POSITIVE", POS),
        ("pos", POS),
        ("0", NEG),
        ("1", POS),
        ("1.0", POS),
    ],
)
def test_parse_label_reads_words_and_zero_one(raw: str, label: SentimentLabel) -> None:
    assert parse_label(raw) is label


@pytest.mark.parametrize(("raw", "label"), [("1", NEG), ("2", NEG), ("3", NEU), ("4", POS)])
def test_parse_label_reads_scores_when_not_binary(raw: str, label: SentimentLabel) -> None:
    assert parse_label(raw, binary=False) is label


@pytest.mark.parametrize("raw", ["", "good", "2", "-1", "0.5", "mixed", "unknown"])
def test_parse_label_refuses_what_it_cannot_read(raw: str) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_label(raw)


def test_a_column_of_scores_is_read_as_csat_and_zero_one_as_binary() -> None:
    assert parse_labels(["1", "3", "5", "positive"]) == [NEG, NEU, POS, POS]
    assert parse_labels(["1", "0", "1"]) == [POS, NEG, POS]


def test_a_bad_value_in_a_column_is_named_with_its_position() -> None:
    with pytest.raises(ValueError, match="'7'") as caught:
        parse_labels(["1", "2", "7", "4"])
    assert caught.value.position == 2  # type: ignore[attr-defined]


# --- Scores -------------------------------------------------------------------------------------


def test_scores_macro_f1_is_over_the_classes_in_the_truth() -> None:
    truth = [NEG, NEG, POS, POS]
    # One positive called neutral: neutral is not a class of the truth, so it only costs recall.
    scores = score_predictions(truth, [NEG, NEG, POS, NEU], seconds=2.0)
    assert scores.accuracy == 0.75
    assert scores.macro_f1 == pytest.approx((1.0 + 2 / 3) / 2)
    assert scores.texts_per_s == 2.0
    assert scores.n == 4


def test_unknown_predictions_are_wrong() -> None:
    scores = score_predictions([NEG, POS], [UNK, UNK], seconds=1.0)
    assert scores.accuracy == 0.0
    assert scores.macro_f1 == 0.0


# --- Synthetic training data --------------------------------------------------------------------

ENGLISH = {
    NEG: [
        "waited forever and the food was cold",
        "rude staff, never again",
        "terrible service, my order was wrong",
        "dirty tables and slow service",
        "awful, overcharged and ignored",
        "the worst coffee I have had",
    ],
    NEU: [
        "ordered a sandwich at noon",
        "came in on tuesday with my son",
        "the shop is next to the station",
        "paid by card at the counter",
        "it was a normal visit",
        "we sat by the window",
    ],
    POS: [
        "lovely staff and great coffee",
        "fast friendly service, thank you",
        "excellent food, will come back",
        "amazing, best cake in town",
        "very helpful and kind people",
        "great value and delicious",
    ],
}
CHINESE = {
    NEG: [
        "太慢了，等了一个小时",
        "菜是凉的，很难吃",
        "服务态度很差",
        "送错了，再也不点了",
        "太咸了，不好吃",
    ],
    POS: [
        "很好吃，送得很快",
        "味道不错，服务很好",
        "非常满意，下次还点",
        "好吃，分量足",
        "很快，很热，赞",
    ],
}


def synthetic(
    phrases: dict[SentimentLabel, list[str]], per_class: int, seed: int = 1
) -> tuple[list[str], list[SentimentLabel]]:
    """Labelled texts made of one or two phrases of the same sentiment."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label, options in phrases.items():
        for _ in range(per_class):
            texts.append(" ".join(rng.sample(options, rng.choice((1, 2)))))
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def english_model() -> SentimentModel:
    texts, labels = synthetic(ENGLISH, 20)
    return train_sentiment(texts, labels)


@pytest.fixture(scope="module")
def chinese_model() -> SentimentModel:
    texts, labels = synthetic(CHINESE, 20)
    return train_sentiment(texts, labels)


def test_an_english_model_reads_new_comments(english_model: SentimentModel) -> None:
    classifier: Classifier = english_model  # the bot holds it as a Classifier
    assert english_model.classes == SENTIMENT_CLASSES
    rude = classifier.classify("Rude staff and cold food")
    assert rude.label is NEG
    assert rude.score < 0
    assert rude.language == "en"
    great = english_model.classify("Great coffee, lovely staff!")
    assert great.label is POS
    assert great.score > 0
    assert english_model.predict(["rude staff and cold food", "great coffee, lovely staff"]) == [
        NEG,
        POS,
    ]


def test_slang_and_emoticons_no_training_text_had_lean_the_right_way(
    english_model: SentimentModel,
) -> None:
    # The social-media lexicon knows them before the business's customers have used them.
    for text in ("ugh :(", "flight delayed again, stuck"):
        assert english_model.classify(text).label is NEG, text
    for text in ("yay :)", "thx, appreciated"):
        assert english_model.classify(text).label is POS, text


def test_a_chinese_model_has_two_classes_and_reads_chinese(chinese_model: SentimentModel) -> None:
    assert chinese_model.classes == (NEG, POS)
    slow = chinese_model.classify("等了一个小时，太慢了")
    assert (slow.label, slow.language) == (NEG, "zh")
    assert -1.0 <= slow.score < 0
    good = chinese_model.classify("很好吃，下次还点")
    assert (good.label, good.language) == (POS, "zh")
    assert chinese_model.predict([]) == []


def test_training_refuses_too_few_examples_or_one_class() -> None:
    texts, labels = synthetic(ENGLISH, 20)
    with pytest.raises(ValueError, match=f"at least {MIN_EXAMPLES}"):
        train_sentiment(texts[: MIN_EXAMPLES - 1], labels[: MIN_EXAMPLES - 1])
    with pytest.raises(ValueError, match="two sentiments"):
        train_sentiment(texts[:25], [NEG] * 25)
    with pytest.raises(ValueError, match="cannot learn"):
        train_sentiment(texts[:25], [SentimentLabel.MIXED] * 25)
    with pytest.raises(ValueError, match="labels"):
        train_sentiment(texts, labels[:-1])


def test_a_model_without_positives_still_scores_in_range() -> None:
    texts, labels = synthetic({NEG: ENGLISH[NEG], NEU: ENGLISH[NEU]}, 15)
    model = train_sentiment(texts, labels)
    result = model.classify("rude staff, never again")
    assert result.label is NEG
    assert -1.0 <= result.score < 0


@pytest.mark.parametrize(
    "text",
    [
        "😡😡😡",
        "👍",
        "x" * 10_000,
        "terrible " * 2_000,
        "השירות היה גרוע מאוד",
        "الخدمة سيئة جدا",
        "\u200f\u202e reversed \u202c",
        "\x00\x01\x02",
        "!!!???",
        "12345",
        "\ufeff",
        "𝐠𝐫𝐞𝐚𝐭 𝐬𝐞𝐫𝐯𝐢𝐜𝐞",
    ],
)
def test_odd_text_gets_an_answer(english_model: SentimentModel, text: str) -> None:
    result = english_model.classify(text)
    assert result.label in SENTIMENT_CLASSES
    assert -1.0 <= result.score <= 1.0
    assert english_model.predict([text])[0] in SENTIMENT_CLASSES


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000"])
def test_empty_text_is_unknown(english_model: SentimentModel, text: str) -> None:
    result = english_model.classify(text)
    assert (result.label, result.score, result.language) == (UNK, 0.0, None)


def test_language_is_none_without_letters(english_model: SentimentModel) -> None:
    assert english_model.classify("😡😡").language is None
    assert english_model.classify("השירות היה גרוע").language == "he"


def test_one_comment_is_scored_exactly_as_in_a_batch(
    english_model: SentimentModel, chinese_model: SentimentModel
) -> None:
    # classify() skips sklearn's per-call machinery for speed; it must still be the same model.
    texts = [text for phrases in ENGLISH.values() for text in phrases]
    texts += [text for phrases in CHINESE.values() for text in phrases]
    texts += ["Rude staff and cold food!!", "great 👍 https://x.y", "wasn’t great", "zzz", "😡"]
    texts += ["ugh :(", "not :) at all", "LOL!!!", "meh...", "<3"]
    texts += ["unseen words only", "12345", "𝐠𝐫𝐞𝐚𝐭 𝐬𝐞𝐫𝐯𝐢𝐜𝐞", "x" * 6_000]
    from bot.learning import _clean

    for model in (english_model, chinese_model):
        assert model._one_text is not None  # the fast path serves this model's shape
        batch = model._pipeline.predict_proba([_clean(t) for t in texts])
        assert model.predict(texts) == [model.classes[int(row.argmax())] for row in batch]
        for text, row in zip(texts, batch, strict=True):
            result = model.classify(text)
            assert result.label is model.classes[int(row.argmax())], text
            positive, negative = model.classes.index(POS), model.classes.index(NEG)
            assert result.score == pytest.approx(row[positive] - row[negative], abs=1e-6), text


# --- Storage ------------------------------------------------------------------------------------


def test_a_stored_model_answers_the_same(english_model: SentimentModel) -> None:
    texts = ["rude staff", "great coffee", "came in on tuesday", "太慢了"]
    restored = SentimentModel.from_bytes(english_model.to_bytes())
    assert restored.classes == english_model.classes
    assert restored.predict(texts) == english_model.predict(texts)
    assert restored.classify("rude staff") == english_model.classify("rude staff")


def _old_pipeline(shape: str) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    from bot.learning import LexiconFeatures, NBLogisticBlend, _ngrams

    union = FeatureUnion([*_ngrams(), ("lexicon", LexiconFeatures())])
    if shape == "plain logistic":
        return make_pipeline(
            union, LogisticRegression(C=3.0, class_weight="balanced", max_iter=3000)
        )
    return make_pipeline(union, NBLogisticBlend(random_state=0))


# Until the NB-weighted blend the pipeline ended in a plain logistic regression, and until the
# social-media lexicon it had one lexicon; models of both shapes stay in the database until the
# next training replaces them.
@pytest.mark.parametrize("shape", ["plain logistic", "blend with one lexicon"])
def test_a_model_stored_in_an_earlier_shape_still_loads_and_reads(shape: str) -> None:
    from bot.learning import _clean

    texts, labels = synthetic(ENGLISH, 20)
    pipeline = _old_pipeline(shape)
    pipeline.fit([_clean(t) for t in texts], [SENTIMENT_CLASSES.index(label) for label in labels])
    restored = SentimentModel.from_bytes(SentimentModel(pipeline, SENTIMENT_CLASSES).to_bytes())
    assert restored._one_text is not None
    sample = ["rude staff and cold food", "great coffee, lovely staff", "came in on tuesday"]
    every = [*sample, "太慢了", "😡", "ugh :(", ""]
    batch = pipeline.predict_proba([_clean(t) for t in every])
    for text, row in zip(every, batch, strict=True):
        assert restored.probabilities(text) == pytest.approx(row, abs=1e-6), text
    assert restored.predict(sample) == [NEG, POS, NEU]
    assert restored.classify("Rude staff and cold food").label is NEG


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x80\x04\x95",
        b'{"format": "something else"}\n' + pickle.dumps({"pipeline": 1}),
        b'{"format": "hearback-model", "version": 99, "kind": "sentiment"}\n',
        b"[1, 2]\n",
    ],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        SentimentModel.from_bytes(data)


def test_other_versions_and_kinds_are_refused(english_model: SentimentModel) -> None:
    data = english_model.to_bytes()
    head, body = data.split(b"\n", 1)
    with pytest.raises(ValueError, match=r"scikit-learn 0\.1"):
        SentimentModel.from_bytes(head.replace(b'"sklearn": "', b'"sklearn": "0.1-') + b"\n" + body)
    with pytest.raises(ValueError, match="not a reasons model"):
        ReasonModel.from_bytes(data)
    with pytest.raises(ValueError, match="damaged"):
        SentimentModel.from_bytes(head + b"\n" + body[: len(body) // 2])


# --- Validation ---------------------------------------------------------------------------------


def test_validation_compares_with_the_baseline_on_held_out_texts() -> None:
    texts, labels = synthetic(CHINESE, 30)
    model, validation = validate_sentiment(texts, labels, holdout=0.2, seed=3)
    assert (validation.examples, validation.train, validation.test) == (60, 48, 12)
    # The baseline reads English only: every Chinese comment is UNKNOWN, so wrong.
    assert validation.baseline.accuracy == 0.0
    assert validation.learned.accuracy > 0.8
    assert validation.learned_wins
    assert set(validation.by_language) == {"zh"}
    assert validation.by_language["zh"][1].n == 12
    assert model.classes == (NEG, POS)


def test_validation_is_stratified_and_seeded() -> None:
    texts, labels = synthetic(ENGLISH, 10)
    _, first = validate_sentiment(texts, labels, seed=7)
    _, again = validate_sentiment(texts, labels, seed=7)
    for attribute in ("accuracy", "macro_f1", "n"):  # texts/s differ from run to run
        assert getattr(first.learned, attribute) == getattr(again.learned, attribute)
        assert getattr(first.baseline, attribute) == getattr(again.baseline, attribute)
    assert first.test == 6  # two of each class's ten


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_on_real_chinese_reviews_the_learned_model_beats_the_baseline() -> None:
    with (SHARED_DATA / "waimai_10k.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    random.Random(0).shuffle(rows)
    rows = rows[:400]
    labels = [POS if row["label"] == "1" else NEG for row in rows]
    _, validation = validate_sentiment([row["review"] for row in rows], labels, holdout=0.25)
    assert validation.learned_wins
    assert validation.learned.macro_f1 > 0.7


# --- Reasons ------------------------------------------------------------------------------------

REASON_PHRASES = {
    "wait": ["waited forever", "so slow", "took an hour", "long queue"],
    "staff": ["rude waiter", "unfriendly staff", "ignored by the staff", "the cashier was rude"],
    "food": ["cold food", "the soup was bland", "burnt pizza", "stale bread"],
}


def reason_data(per_code: int = 12) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(2)
    texts: list[str] = []
    codes: list[list[str]] = []
    for code, phrases in REASON_PHRASES.items():
        for _ in range(per_code):
            texts.append(rng.choice(phrases))
            codes.append([code])
    for _ in range(6):
        texts.append(
            f"{rng.choice(REASON_PHRASES['wait'])} and {rng.choice(REASON_PHRASES['food'])}"
        )
        codes.append(["wait", "food"])
    for _ in range(6):
        texts.append(rng.choice(["we came on monday", "I paid by card", "it was my birthday"]))
        codes.append([])
    return texts, codes


@pytest.fixture(scope="module")
def reason_model() -> ReasonModel:
    model = train_reasons(*reason_data())
    assert model is not None
    return model


def test_reasons_are_suggested_from_words(reason_model: ReasonModel) -> None:
    assert reason_model.codes == ("food", "staff", "wait")
    assert reason_model.suggest("we waited forever") == ["wait"]
    assert reason_model.suggest("the waiter was rude") == ["staff"]
    assert reason_model.suggest("the food was cold", limit=1) == ["food"]
    assert reason_model.suggest("rude waiter", limit=0) == []


@pytest.mark.parametrize("text", ["", "   ", "zzzz qqqq", "😀"])
def test_nothing_is_suggested_for_empty_or_meaningless_text(
    reason_model: ReasonModel, text: str
) -> None:
    assert reason_model.suggest(text) == []


def test_a_stored_reason_model_suggests_the_same(reason_model: ReasonModel) -> None:
    restored = ReasonModel.from_bytes(reason_model.to_bytes())
    assert restored.codes == reason_model.codes
    assert restored.threshold == reason_model.threshold
    assert restored.suggest("so slow, cold food") == reason_model.suggest("so slow, cold food")
    with pytest.raises(ValueError, match="not a sentiment model"):
        SentimentModel.from_bytes(reason_model.to_bytes())
    with pytest.raises(ValueError):
        ReasonModel.from_bytes(b"nonsense")


def test_no_reason_model_from_too_little() -> None:
    texts, codes = reason_data()
    assert train_reasons(texts[: MIN_EXAMPLES - 1], codes[: MIN_EXAMPLES - 1]) is None
    # Every code tapped fewer than five times.
    assert (
        train_reasons([f"text {i}" for i in range(30)], [[f"code{i % 10}"] for i in range(30)])
        is None
    )
    assert train_reasons(texts, [[] for _ in texts]) is None


def test_reason_validation_reports_held_out_figures() -> None:
    model, figures = validate_reasons(*reason_data(20), seed=1)
    assert model is not None
    assert figures["micro_precision"] >= 0.8
    assert figures["top1_accuracy"] >= 0.8
    assert 0.0 < figures["suggested_share"] <= 1.0
    assert validate_reasons(["a"] * 5, [["x"]] * 5) == (None, {})
