"""Which classifier reads a comment once a learned model is in use (AdaptiveClassifier).

Each comment is read by one classifier: the learned model where it beat the baseline, and where
the baseline could only say "unknown"; the baseline everywhere else."""

from __future__ import annotations

import pytest

from bot.sentiment import BaselineClassifier, Sentiment
from bot.training import AdaptiveClassifier, LearnedModels
from storage.models import SentimentLabel


class Counting:
    """A classifier that answers like `inner` (or with a fixed verdict) and counts the texts."""

    def __init__(self, inner: BaselineClassifier | None = None) -> None:
        self.inner = inner
        self.read: list[str] = []

    def classify(self, text: str) -> Sentiment:
        self.read.append(text)
        if self.inner is not None:
            return self.inner.classify(text)
        return Sentiment(SentimentLabel.NEGATIVE, -0.7, "learned")


def adaptive(languages: set[str], *, unread: bool) -> tuple[AdaptiveClassifier, Counting, Counting]:
    baseline, model = Counting(BaselineClassifier()), Counting()
    classifier = AdaptiveClassifier(baseline)
    classifier.models = LearnedModels(
        sentiment=model,  # type: ignore[arg-type]
        languages=frozenset(languages),
        unread=unread,
    )
    return classifier, baseline, model


@pytest.mark.parametrize(
    ("text", "reader"),
    [
        ("We waited 40 minutes and nobody came", "baseline"),  # English: the model never won
        ("等了一个小时，菜都凉了", "model"),  # won on Chinese
        ("Der Service war schrecklich", "model"),  # the baseline cannot read German
        ("Очень плохо", "model"),
        ("Muy mal 😡😡", "baseline"),  # the baseline reads the emoji
        ("😡😡", "baseline"),  # no letters: the baseline reads the emoji
        ("123", "model"),  # nothing the baseline can read
    ],
)
def test_each_comment_is_read_by_one_classifier(text: str, reader: str) -> None:
    classifier, baseline, model = adaptive({"zh"}, unread=True)
    result = classifier.classify(text)
    readers = {"baseline": baseline.read, "model": model.read}
    assert readers[reader] == [text]
    assert [t for name, read in readers.items() if name != reader for t in read] == []
    if reader == "model":
        assert result.language == "learned"


def test_without_the_unread_rule_the_baseline_keeps_other_languages() -> None:
    classifier, baseline, model = adaptive({"zh"}, unread=False)
    result = classifier.classify("Der Service war schrecklich")
    assert result == Sentiment(SentimentLabel.UNKNOWN, 0.0, "de")
    assert (baseline.read, model.read) == (["Der Service war schrecklich"], [])
    assert classifier.classify("等了一个小时").language == "learned"


def test_where_the_model_won_english_the_baseline_is_not_run() -> None:
    classifier, baseline, model = adaptive({"en", "zh"}, unread=True)
    classifier.classify("We waited 40 minutes and nobody came")
    assert (baseline.read, model.read) == ([], ["We waited 40 minutes and nobody came"])


def test_a_failing_model_leaves_the_comment_to_the_baseline() -> None:
    classifier, baseline, model = adaptive({"zh"}, unread=True)

    def broken(text: str) -> Sentiment:
        raise RuntimeError("model bug")

    model.classify = broken  # type: ignore[method-assign]
    assert classifier.classify("服务太差了") == Sentiment(SentimentLabel.UNKNOWN, 0.0, "zh")
    assert baseline.read == ["服务太差了"]


def test_without_a_model_the_baseline_reads_everything() -> None:
    baseline = Counting(BaselineClassifier())
    classifier = AdaptiveClassifier(baseline)
    assert classifier.classify("rude staff").label is SentimentLabel.NEGATIVE
    assert classifier.classify("服务太差了").label is SentimentLabel.UNKNOWN
    assert baseline.read == ["rude staff", "服务太差了"]
