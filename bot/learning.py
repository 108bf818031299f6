"""Models learned from the business's own customers: sentiment from words, reasons from words.

Every comment given with a score is a labelled example (`label_from_score`), and reason chips a
customer tapped label their words with reasons. From these, `train_sentiment` and
`train_reasons` fit small linear models; `validate_sentiment` scores a model against the
baseline (bot.sentiment) on a held-out part, so the model is used only while it reads this
business's customers better than the lexicon does. Everything here is pure: no database, no
clock; bot.training decides when to train and stores the bytes.

Design
------
* Features. Three kinds, joined:
  - character n-grams of 1–5 within word boundaries (TF-IDF, sublinear tf, n-grams seen at
    least twice). They catch spelling variants, hashtags run together, inflections and emoji,
    and they are what makes the model work in any language without a tokenizer: Chinese,
    written without spaces, is a run of characters whose 1–5-grams cover its words.
  - word unigrams and bigrams where each CJK character is a token of its own (a tokenizer like
    jieba would be a new dependency; character bigrams get most of its benefit), so "not good"
    and "不好" are features.
  - four numbers from TextBlob's English polarity lexicon (positive and negative mean polarity,
    how many positive and negative words), and the same four from VADER's social-media lexicon
    (slang, emoticons, verbs such as "delayed" or "appreciate"), both copied into the model when
    it is trained. With a few hundred or thousand labels the n-grams have not yet seen most
    opinion words, or not often enough to weigh them; the lexicons have.
* Classifier (`NBLogisticBlend`). The mean of two linear models' probabilities: logistic
  regression on these features (C=3, balanced class weights so the minority classes count for
  macro-F1, multinomial over the classes the labels contain, 2 or 3), and an NB-weighted one
  in the manner of Wang & Manning's NBSVM (which features a text has, each scaled by its naive
  Bayes log-count ratio, one class against the rest, C=0.1). Linear models on sparse n-grams
  are the strongest thing that trains in seconds on a CPU from a few thousand labels; the two
  make different mistakes. The score is P(positive) − P(negative). Models stored before the
  blend end in a plain LogisticRegression and still load and score (`_OneText` reads both).
* What was measured (bench/sentiment.py; settings chosen on a development part of the data,
  rows 5,000–8,000 after the seeded shuffle, never on the test part, with training on the first
  200 / 1,000 / 3,000 rows; macro-F1 airline tweets 3-class / waimai reviews 2-class):
  - the lead's first try (char_wb 2–5 + default word tokens): at 1,000 labels 0.657 / 0.810;
  - single CJK characters as word tokens and char 1–5 instead of 2–5: 0.664 / 0.851, the
    whole gain on Chinese, where the default word pattern sees a clause as one "word";
  - n-grams seen at least twice: 0.670 / 0.859 and a smaller, faster model;
  - the lexicon numbers: 0.618 instead of 0.546 on the airline tweets at 200 labels, about the
    same at 1,000 and 3,000 (the n-grams have learned the words by then);
  - C from 1 to 30 changed macro-F1 by under 0.01; NB-weighted features (NBSVM) and a blend with
    complement naive Bayes were worse on both sets (0.603 / 0.844 and 0.637 / 0.849 at 1,000).
  - tried later, none of them better on the airline tweets at 3,000 labels (development
    macro-F1 0.716 / waimai 0.859 at 1,000 as it stands): @handles as one token and elongated
    words shortened 0.710; negation scope marked on the next words 0.706; VADER's four scores
    as features 0.712 (and slower); calibrated LinearSVC 0.702; char instead of char_wb
    n-grams 0.713; word 1–3-grams 0.714; C=10 0.720 but waimai down to 0.854.
  - the NB-weighted blend, judged on three development splits of the rows outside the test
    part (airline: train rows 0–3,000 / test 5,000–8,000, 3,000–6,000 / 8,000–11,000,
    6,000–9,000 / 0–3,000; waimai the same idea with 1,000 training rows), mean macro-F1
    plain logistic regression → blend: airline 0.619 → 0.621 at 200, 0.703 → 0.719 at 1,000,
    0.736 → 0.744 at 3,000 (better on each split); waimai 0.810 → 0.816 at 200, 0.861 → 0.865
    at 1,000. The earlier NBSVM try above used NB weights on tf-idf values
    alone; presence features and averaging with the plain model are what help. Its settings
    are flat: NB C 0.05–0.1, Laplace α 0.5–1, LR C 3–10, NB share 0.4–0.6 all within 0.004.
    Also tried there, no gain: "?", "!" and emoticons as word tokens (+0.000 in the blend),
    separate char and word models averaged (0.715 on the first split), block weights between
    char, word and lexicon features (±0.005), class-prior offsets for macro-F1 (at most
    +0.005 even when fitted on the development part itself).
  - VADER's lexicon as a second set of four lexicon numbers (`SocialLexiconFeatures`), on the
    same three development splits (bench/sentiment_dev.py prints them), mean macro-F1 before
    → after: airline 0.621 → 0.641 at 200, 0.719 → 0.728 at 1,000, 0.744 → 0.752 at 3,000
    (better on every split: 0.722 → 0.730, 0.762 → 0.768, 0.747 → 0.759); waimai unchanged
    (0.817 at 200, 0.864 at 1,000: no English words). VADER's lexicon instead of TextBlob's
    0.749 at 3,000, so both stay. Its emoji lexicon (emoji read as their names) on top 0.753
    (+0.0005, one split lower): not kept. Tried on the same splits before it, all within
    ±0.002 of 0.744 (noise): NB share 0.4 or 0.6, LR C 1 (airline +0.002, waimai −0.001) or
    10, NB C 0.3 (−0.003), word min_df 2, word 1–3-grams, char 1–6-grams, char min_df 3,
    max_df 0.5, TextBlob's subjectivity as two more numbers (+0.000); unbalanced class
    weights in the logistic part −0.007; no lexicon at all −0.006. So C chosen by
    cross-validation inside the labels was not added: C is flat and it would triple training.
* Cost. On one core a model classifies a few thousand texts a second in batch (`predict`) and
  one comment in about 0.2 ms (`classify`: the pipeline's arithmetic repeated for one text,
  `_OneText`, because asking sklearn about a single text costs 3–4 ms of per-call checks);
  training on 3,000 texts takes about five seconds; a stored model of 3,000 tweets is about
  4 MB (the NB part adds a coefficient row per class).
  sklearn and numpy load with this module: import it only when a model exists.
* Reasons. One-vs-rest logistic regression on the same n-grams, a code suggested only when its
  probability reaches REASON_THRESHOLD: suggestions staff see on a card should be right when
  they appear, and no suggestion costs nothing.
* Storage. `to_bytes` writes one JSON header line (format, version, kind, scikit-learn version)
  and a pickle of the fitted pipeline. `from_bytes` checks the header before unpickling and
  refuses anything else with ValueError, including a model pickled by another scikit-learn
  version (retraining is cheap; a half-compatible pickle is not). Pickle runs code when loaded,
  which is safe only because the payloads come from our own database table.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from bot import sentiment as baseline_sentiment
from bot.sentiment import MAX_CHARS, BaselineClassifier, Sentiment, detect_language
from storage.models import SentimentLabel, SurveyScale

__all__ = [
    "MIN_EXAMPLES",
    "MIN_REASON_EXAMPLES",
    "REASON_THRESHOLD",
    "SENTIMENT_CLASSES",
    "ReasonModel",
    "Scores",
    "SentimentModel",
    "Validation",
    "label_from_score",
    "parse_label",
    "parse_labels",
    "score_predictions",
    "train_reasons",
    "train_sentiment",
    "validate_reasons",
    "validate_sentiment",
]

SENTIMENT_CLASSES = (SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL, SentimentLabel.POSITIVE)
# Below this a model has seen too few comments to be worth validating at all.
MIN_EXAMPLES = 20
# A reason is learned only once it was tapped this often.
MIN_REASON_EXAMPLES = 5
# Probability a reason needs before it is suggested: precise rather than many.
REASON_THRESHOLD = 0.5
LOGISTIC_C = 3.0
# The NB-weighted part of the sentiment model (NBLogisticBlend): its regularization and share.
NB_C = 0.1
NB_WEIGHT = 0.5


# --- Labels -------------------------------------------------------------------------------------


def label_from_score(scale: SurveyScale, score: int) -> SentimentLabel:
    """The label a customer's own score gives their comment: CSAT 1–2 negative, 3 neutral, 4–5
    positive; NPS 0–6 negative (detractors), 7–8 neutral (passives), 9–10 positive."""
    if scale is SurveyScale.CSAT:
        if not 1 <= score <= 5:
            raise ValueError(f"a CSAT score is 1-5, not {score}")
        low, high = 2, 4
    else:
        if not 0 <= score <= 10:
            raise ValueError(f"an NPS score is 0-10, not {score}")
        low, high = 6, 9
    if score <= low:
        return SentimentLabel.NEGATIVE
    if score >= high:
        return SentimentLabel.POSITIVE
    return SentimentLabel.NEUTRAL


_WORD_LABELS = {
    "negative": SentimentLabel.NEGATIVE,
    "neg": SentimentLabel.NEGATIVE,
    "neutral": SentimentLabel.NEUTRAL,
    "neu": SentimentLabel.NEUTRAL,
    "positive": SentimentLabel.POSITIVE,
    "pos": SentimentLabel.POSITIVE,
}
_BINARY = {0: SentimentLabel.NEGATIVE, 1: SentimentLabel.POSITIVE}
LABELS_ACCEPTED = "negative/neutral/positive (or neg/neu/pos), 0/1, or scores 1-5"


def _number(raw: str) -> int | None:
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def parse_label(raw: str, *, binary: bool = True) -> SentimentLabel:
    """A label as written in a data file: a word (negative/neutral/positive, any case; also
    neg/neu/pos) or a number. Numbers are 0/1 (0 negative, 1 positive) when `binary`, otherwise
    scores 1–5 in CSAT bands; a column's numbers decide which (`parse_labels`), since "1" is
    positive in one and negative in the other. ValueError with the value in it otherwise."""
    word = raw.strip().lower()
    if word in _WORD_LABELS:
        return _WORD_LABELS[word]
    number = _number(word)
    if binary and number in _BINARY:
        return _BINARY[number]
    if not binary and number is not None and 1 <= number <= 5:
        return label_from_score(SurveyScale.CSAT, number)
    raise ValueError(f"cannot read {raw!r} as a label: use {LABELS_ACCEPTED}")


def parse_labels(raws: Sequence[str]) -> list[SentimentLabel]:
    """Labels of a whole column: numbers are 0/1 when no other number appears, else 1–5.
    ValueError names the first value that cannot be read and its position (0-based)."""
    numbers = {_number(r) for r in raws} - {None}
    binary = numbers <= {0, 1}
    labels = []
    for position, raw in enumerate(raws):
        try:
            labels.append(parse_label(raw, binary=binary))
        except ValueError as error:
            raise LabelError(position, raw, str(error)) from None
    return labels


class LabelError(ValueError):
    """A label that cannot be read, with its position in the column."""

    def __init__(self, position: int, raw: str, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.raw = raw


# --- Scores -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """Accuracy, macro-F1 and throughput of one classifier on `n` texts."""

    accuracy: float
    macro_f1: float
    texts_per_s: float
    n: int


def score_predictions(
    truth: Sequence[SentimentLabel], predicted: Sequence[SentimentLabel], seconds: float
) -> Scores:
    """Scores of `predicted` against `truth`; macro-F1 over the classes present in `truth`, so a
    prediction outside them (UNKNOWN, or neutral for a 2-class set) is simply wrong."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    n = len(truth)
    if not n:
        return Scores(0.0, 0.0, 0.0, 0)
    pairs = Counter(zip(truth, predicted, strict=True))
    true_counts = Counter(truth)
    predicted_counts = Counter(predicted)
    f1s = []
    for label in true_counts:
        hits = pairs[(label, label)]
        f1s.append(2 * hits / (true_counts[label] + predicted_counts[label]))
    correct = sum(count for (t, p), count in pairs.items() if t == p)
    rate = n / seconds if seconds > 0 else 0.0
    return Scores(correct / n, math.fsum(f1s) / len(f1s), rate, n)


# --- Text and features --------------------------------------------------------------------------

# One token per CJK character (there are no spaces to split on), words elsewhere, and emoji.
_TOKEN = (
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"
    r"|[^\W\d_]+(?:'[^\W\d_]+)*|\d+"
    r"|[\U0001f000-\U0001faff\u2600-\u27bf]"
)
_URL = re.compile(r"https?://\S+|www\.\S+")
_LEXICON_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# Words that reverse the lexicon word after them ("not good").
_NEGATORS = frozenset(
    re.findall(
        r"\S+",
        "not no never nothing nobody don't didn't doesn't isn't wasn't aren't weren't can't"
        " won't couldn't wouldn't shouldn't haven't hasn't hadn't cannot",
    )
)


def _clean(text: str) -> str:
    # NFKC folds look-alike letters (full-width, "font" sites); links say nothing but their host.
    folded = unicodedata.normalize("NFKC", text[:MAX_CHARS])[:MAX_CHARS].lower()
    return _URL.sub(" http ", folded.replace("’", "'"))


def _english_lexicon() -> dict[str, float]:
    """Word -> polarity from TextBlob's pattern lexicon (single words with a non-zero score)."""
    lexicon = {}
    for word, senses in baseline_sentiment._pattern_sentiment().items():
        if not isinstance(word, str) or not _LEXICON_WORD.fullmatch(word):
            continue
        polarity = (senses.get(None) or next(iter(senses.values()), [0.0]))[0]
        if polarity:
            lexicon[word.lower()] = float(polarity)
    return lexicon


class LexiconFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Four numbers per text from a polarity lexicon: mean positive and mean negative polarity
    of the words found (a word after a negator counts reversed and halved, as in TextBlob) and
    the number of positive and negative words over √length. The lexicon is copied in at `fit`,
    so a stored model does not depend on TextBlob's files."""

    def fit(self, texts: Iterable[str], y: Any = None) -> LexiconFeatures:
        self.lexicon_ = _english_lexicon()
        return self

    def transform(self, texts: Iterable[str]) -> Any:
        rows = [self.row(text) for text in texts]
        return sparse.csr_matrix(np.asarray(rows, dtype=np.float64).reshape(-1, 4))

    def row(self, text: str) -> tuple[float, float, float, float]:
        """The four numbers of one (cleaned) text."""
        return _polarity_numbers(_LEXICON_WORD.findall(text), self.lexicon_)


def _polarity_numbers(
    words: Sequence[str], lexicon: dict[str, float]
) -> tuple[float, float, float, float]:
    """LexiconFeatures' four numbers of a text's words under a word -> polarity lexicon."""
    found = []
    for i, word in enumerate(words):
        polarity = lexicon.get(word)
        if polarity is not None:
            if i and words[i - 1] in _NEGATORS:
                polarity = -0.5 * polarity
            found.append(polarity)
    mean = math.fsum(found) / len(found) if found else 0.0
    norm = math.sqrt(1 + len(words))
    return (
        max(mean, 0.0),
        max(-mean, 0.0),
        sum(1 for p in found if p > 0) / norm,
        sum(1 for p in found if p < 0) / norm,
    )


def _social_lexicon() -> dict[str, float]:
    """Token -> polarity (−1..1) from VADER's lexicon (Hutto & Gilbert, 2014), read from the
    vaderSentiment package's data file without importing its analyzer."""
    from importlib.resources import files

    lexicon = {}
    text = files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        token, _, rest = line.partition("\t")
        valence = rest.partition("\t")[0]
        try:
            polarity = float(valence) / 4.0  # VADER's valences run from −4 to 4
        except ValueError:
            continue
        if token and polarity:
            lexicon[token.lower()] = polarity
    return lexicon


# Punctuation around a token that is not in the social lexicon as it stands ("great!" is
# "great", while ":)" and "</3" are entries of their own).
_SOCIAL_STRIP = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


class SocialLexiconFeatures(LexiconFeatures):
    """The same four numbers from VADER's lexicon, which was built for social media: about
    7,500 entries against TextBlob's 2,200 single words, with slang ("ugh", "meh", "wtf"),
    emoticons (":)", ":-(") and verbs TextBlob's adjective lexicon lacks ("delayed",
    "cancelled", "stuck", "appreciate", "thank"). Tokens are split on white space, so
    emoticons survive; a token not in the lexicon is looked up again without the punctuation
    around it. Copied in at `fit` like TextBlob's, so a stored model does not depend on the
    package's files."""

    def fit(self, texts: Iterable[str], y: Any = None) -> SocialLexiconFeatures:
        self.lexicon_ = _social_lexicon()
        return self

    def row(self, text: str) -> tuple[float, float, float, float]:
        lexicon = self.lexicon_
        words = []
        for token in text.split():
            word = token if token in lexicon else token.strip(_SOCIAL_STRIP)
            if word:
                words.append(word)
        return _polarity_numbers(words, lexicon)


def _ngrams() -> list[tuple[str, Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return [
        (
            "chars",
            TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=(1, 5),
                min_df=2,
                sublinear_tf=True,
                lowercase=False,
                dtype=np.float32,
            ),
        ),
        (
            "words",
            TfidfVectorizer(
                token_pattern=_TOKEN,
                ngram_range=(1, 2),
                sublinear_tf=True,
                lowercase=False,
                dtype=np.float32,
            ),
        ),
    ]


def _presence(features: Any) -> Any:
    """1.0 wherever a feature is non-zero (CSR, float64)."""
    present = sparse.csr_matrix(features, dtype=np.float64, copy=True)
    present.eliminate_zeros()
    present.data[:] = 1.0
    return present


class NBLogisticBlend(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Logistic regression on the features, averaged with an NB-weighted one (Wang & Manning's
    NBSVM with a logistic loss).

    The NB part sees only which features a text has (presence, no tf-idf) and, one class against
    the rest, scales each by its naive Bayes log-count ratio, how much likelier it is in that
    class's texts than in the others'; a strongly regularized logistic regression (`nb_C`)
    then only corrects those ratios. Rare words with a clear lean thus count from the start,
    where plain logistic regression on tf-idf weights every feature from zero; the two make
    different mistakes, and their mean probabilities (`nb_weight` of the NB part) beat either.
    The ratios are folded into the coefficients at `fit` (`nb_coef_`, `nb_intercept_`), so a
    text's NB decision is one sparse product. Classes must be 0..k−1 (train_sentiment's)."""

    def __init__(
        self,
        C: float = LOGISTIC_C,
        nb_C: float = NB_C,
        nb_weight: float = NB_WEIGHT,
        nb_alpha: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.nb_C = nb_C
        self.nb_weight = nb_weight
        self.nb_alpha = nb_alpha
        self.random_state = random_state

    def fit(self, features: Any, y: Any) -> NBLogisticBlend:
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y)
        self.logistic_ = LogisticRegression(
            C=self.C, class_weight="balanced", max_iter=3000, random_state=self.random_state
        ).fit(features, y)
        self.classes_ = self.logistic_.classes_
        present = _presence(features)
        # Two classes need one model (the second class against the first), as sklearn's own.
        targets = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        coefs, intercepts = [], []
        for target in targets:
            inside = y == target
            ratio = self._log_count_ratio(present, inside)
            model = LogisticRegression(
                C=self.nb_C,
                class_weight="balanced",
                max_iter=3000,
                random_state=self.random_state,
            ).fit(present.multiply(ratio).tocsr(), inside.astype(np.int8))
            coefs.append(model.coef_[0] * ratio)
            intercepts.append(model.intercept_[0])
        self.nb_coef_ = np.vstack(coefs)
        self.nb_intercept_ = np.asarray(intercepts)
        return self

    def _log_count_ratio(self, present: Any, inside: Any) -> Any:
        alpha = self.nb_alpha
        p = alpha + np.asarray(present[inside].sum(axis=0)).ravel()
        q = alpha + np.asarray(present[~inside].sum(axis=0)).ravel()
        return np.log(p / p.sum()) - np.log(q / q.sum())

    def nb_probabilities(self, decisions: Any) -> Any:
        """P(class) from the NB part's decision values (texts × models): each model's sigmoid,
        normalised over the classes (one-vs-rest), or [1 − p, p] for two classes."""
        decisions = np.atleast_2d(decisions)
        inside = 1.0 / (1.0 + np.exp(-decisions))
        if len(self.classes_) == 2:
            return np.hstack([1.0 - inside, inside])
        return inside / inside.sum(axis=1, keepdims=True)

    def blend(self, logistic: Any, decisions: Any) -> Any:
        """The mean of the two parts' probabilities, weighted."""
        weight = self.nb_weight
        return (1.0 - weight) * logistic + weight * self.nb_probabilities(decisions)

    def predict_proba(self, features: Any) -> Any:
        decisions = _presence(features) @ self.nb_coef_.T + self.nb_intercept_
        return self.blend(self.logistic_.predict_proba(features), decisions)

    def predict(self, features: Any) -> Any:
        return self.classes_[self.predict_proba(features).argmax(axis=1)]


def _sentiment_pipeline(seed: int) -> Any:
    from sklearn.pipeline import FeatureUnion, make_pipeline

    features = FeatureUnion(
        [*_ngrams(), ("lexicon", LexiconFeatures()), ("social", SocialLexiconFeatures())]
    )
    return make_pipeline(features, NBLogisticBlend(random_state=seed))


# --- Storage ------------------------------------------------------------------------------------

_FORMAT = "hearback-model"
_FORMAT_VERSION = 1


def _pack(kind: str, content: dict[str, Any]) -> bytes:
    import sklearn

    header = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "kind": kind,
        "sklearn": sklearn.__version__,
    }
    return json.dumps(header).encode() + b"\n" + pickle.dumps(content, pickle.HIGHEST_PROTOCOL)


def _unpack(kind: str, data: bytes) -> dict[str, Any]:
    import sklearn

    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"a stored model is bytes, not {type(data).__name__}")
    head, newline, body = bytes(data).partition(b"\n")
    try:
        header = json.loads(head) if newline and head.startswith(b"{") else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError("not a stored Hearback model")
    if header.get("kind") != kind:
        raise ValueError(f"a stored {header.get('kind')} model, not a {kind} model")
    if header.get("version") != _FORMAT_VERSION:
        raise ValueError(f"model format {header.get('version')}, this version reads only 1")
    if header.get("sklearn") != sklearn.__version__:
        raise ValueError(
            f"model trained with scikit-learn {header.get('sklearn')}, "
            f"this is {sklearn.__version__}: retrain it"
        )
    try:
        content = pickle.loads(body)
    except Exception as error:
        raise ValueError(f"damaged model: {error}") from error
    if not isinstance(content, dict) or "pipeline" not in content:
        raise ValueError("damaged model: no pipeline in it")
    return content


# --- Sentiment ----------------------------------------------------------------------------------

_UNKNOWN = Sentiment(SentimentLabel.UNKNOWN, 0.0, None)


class _OneText:
    """The fitted pipeline's arithmetic for a single text, without sklearn's per-call machinery.

    Asking the pipeline about one comment costs about 3 ms, nearly all of it input checks,
    sparse-matrix assembly and FeatureUnion bookkeeping around a few hundred multiplications.
    This repeats the same steps (n-gram counts, sublinear tf × idf, l2 norm per vectorizer,
    each lexicon's four numbers, then the logistic model and, for a blend, the NB part's sum
    over the present features) on the non-zero features only, in about a tenth of the time.
    `of()` returns None for a pipeline of another shape, which then answers by itself; a unit
    test holds the two to the same probabilities.
    """

    def __init__(
        self,
        vectorizers: list[tuple[Any, dict[str, int], Any, bool, int]],
        lexicons: list[tuple[LexiconFeatures, int]],
        coef: Any,
        intercept: Any,
        blend: NBLogisticBlend | None = None,
    ) -> None:
        self._vectorizers = vectorizers
        self._lexicons = lexicons
        self._coef = coef
        self._intercept = intercept
        self._blend = blend

    @classmethod
    def of(cls, pipeline: Any) -> _OneText | None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion

        steps = getattr(pipeline, "steps", None)
        if not steps or len(steps) != 2:
            return None
        union, classifier = steps[0][1], steps[1][1]
        # Models stored before NBLogisticBlend end in a plain LogisticRegression.
        blend = classifier if isinstance(classifier, NBLogisticBlend) else None
        if blend is not None:
            classifier = blend.logistic_
        if not isinstance(union, FeatureUnion) or not isinstance(classifier, LogisticRegression):
            return None
        if union.transformer_weights or list(classifier.classes_) != list(
            range(len(classifier.classes_))
        ):
            return None
        vectorizers = []
        lexicons = []
        offset = 0
        for _, transformer in union.transformer_list:
            if isinstance(transformer, TfidfVectorizer):
                if transformer.norm != "l2" or not transformer.use_idf or transformer.binary:
                    return None
                vocabulary = transformer.vocabulary_
                vectorizers.append(
                    (
                        transformer.build_analyzer(),
                        vocabulary,
                        transformer.idf_,
                        transformer.sublinear_tf,
                        offset,
                    )
                )
                offset += len(vocabulary)
            elif isinstance(transformer, LexiconFeatures):  # SocialLexiconFeatures too
                lexicons.append((transformer, offset))
                offset += 4
            else:
                return None
        if offset != classifier.coef_.shape[1]:
            return None
        if blend is not None and blend.nb_coef_.shape[1] != offset:
            return None
        return cls(vectorizers, lexicons, classifier.coef_, classifier.intercept_, blend)

    def probabilities(self, text: str) -> Any:
        columns: list[Any] = []
        values: list[Any] = []
        for analyzer, vocabulary, idf, sublinear, offset in self._vectorizers:
            counts = Counter(j for j in map(vocabulary.get, analyzer(text)) if j is not None)
            if not counts:
                continue
            found = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if sublinear:
                tf = np.log(tf) + 1.0
            weights = tf * idf[found]
            weights /= np.sqrt(np.dot(weights, weights))
            columns.append(found + offset)
            values.append(weights)
        for lexicon, offset in self._lexicons:
            row = np.asarray(lexicon.row(text), dtype=np.float64)
            nonzero = np.flatnonzero(row)
            columns.append(nonzero + offset)
            values.append(row[nonzero])
        found = np.concatenate(columns) if columns else np.zeros(0, dtype=np.intp)
        decision = self._intercept.astype(np.float64)
        if columns:
            decision = decision + self._coef[:, found] @ np.concatenate(values)
        if decision.shape[0] == 1:  # two classes: sklearn's binary logistic
            positive = 1.0 / (1.0 + math.exp(-float(decision[0])))
            probabilities = np.asarray([1.0 - positive, positive])
        else:
            exp = np.exp(decision - decision.max())
            probabilities = exp / exp.sum()
        if self._blend is None:
            return probabilities
        blend = self._blend
        # The NB part sees presence only: its decision is the sum of the present columns.
        nb_decision = blend.nb_intercept_ + blend.nb_coef_[:, found].sum(axis=1)
        return blend.blend(probabilities[np.newaxis], nb_decision[np.newaxis])[0]


class SentimentModel:
    """A learned sentiment classifier (implements bot.sentiment.Classifier)."""

    def __init__(self, pipeline: Any, classes: tuple[SentimentLabel, ...]) -> None:
        self._pipeline = pipeline
        self._one_text = _OneText.of(pipeline)
        self.classes = classes
        # The score's two ends; a model trained without one of them gives it probability 0.
        self._positive = (
            classes.index(SentimentLabel.POSITIVE) if SentimentLabel.POSITIVE in classes else None
        )
        self._negative = (
            classes.index(SentimentLabel.NEGATIVE) if SentimentLabel.NEGATIVE in classes else None
        )

    def classify(self, text: str) -> Sentiment:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        if not text or text.isspace():
            return _UNKNOWN
        try:
            probabilities = self.probabilities(text)
            language = detect_language(text)
        except Exception:
            # Like the baseline: a model bug must never lose the customer's answer.
            baseline_sentiment.logger.exception("learned sentiment classification failed")
            return _UNKNOWN
        label = self.classes[int(probabilities.argmax())]
        positive = probabilities[self._positive] if self._positive is not None else 0.0
        negative = probabilities[self._negative] if self._negative is not None else 0.0
        score = float(positive - negative)
        return Sentiment(label, max(-1.0, min(1.0, score)), language)

    def probabilities(self, text: str) -> Any:
        """P(class) of one text, in the order of `classes`."""
        if self._one_text is not None:
            return self._one_text.probabilities(_clean(text))
        return self._pipeline.predict_proba([_clean(text)])[0]

    def predict(self, texts: Sequence[str]) -> list[SentimentLabel]:
        """Labels of many texts at once: the fast path (no language, no scores)."""
        if not texts:
            return []
        indices = self._pipeline.predict([_clean(t) for t in texts])
        return [self.classes[int(i)] for i in indices]

    def to_bytes(self) -> bytes:
        return _pack("sentiment", {"pipeline": self._pipeline, "classes": list(self.classes)})

    @classmethod
    def from_bytes(cls, data: bytes) -> SentimentModel:
        content = _unpack("sentiment", data)
        try:
            classes = tuple(SentimentLabel(c) for c in content["classes"])
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"damaged model: {error}") from error
        return cls(content["pipeline"], classes)


def train_sentiment(
    texts: Sequence[str], labels: Sequence[SentimentLabel], *, seed: int = 0
) -> SentimentModel:
    """A model fitted on all of `texts`. Labels outside negative/neutral/positive are refused;
    ValueError when fewer than MIN_EXAMPLES texts or fewer than two classes."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    unusable = set(labels) - set(SENTIMENT_CLASSES)
    if unusable:
        raise ValueError(f"cannot learn from labels {sorted(unusable)}")
    if len(texts) < MIN_EXAMPLES:
        raise ValueError(f"need at least {MIN_EXAMPLES} labelled texts, got {len(texts)}")
    present = set(labels)
    classes = tuple(c for c in SENTIMENT_CLASSES if c in present)
    if len(classes) < 2:
        raise ValueError("need labelled texts of at least two sentiments")
    index = {c: i for i, c in enumerate(classes)}
    pipeline = _sentiment_pipeline(seed)
    pipeline.fit([_clean(t) for t in texts], np.asarray([index[label] for label in labels]))
    return SentimentModel(pipeline, classes)


@dataclass(frozen=True)
class Validation:
    """How a model trained on `train` texts did on `test` held-out ones, next to the baseline."""

    examples: int
    train: int
    test: int
    baseline: Scores
    learned: Scores
    by_language: dict[str, tuple[Scores, Scores]]

    @property
    def learned_wins(self) -> bool:
        return self.learned.macro_f1 > self.baseline.macro_f1


def _stratified_split(
    labels: Sequence[Any], holdout: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices (train, test): about `holdout` of each label's examples held out, at least one
    of each label kept for training, the choice seeded."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout is a fraction between 0 and 1, not {holdout}")
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(str(label), []).append(i)
    train: list[int] = []
    test: list[int] = []
    for key in sorted(by_label):
        indices = by_label[key]
        rng.shuffle(indices)
        cut = min(round(len(indices) * holdout), len(indices) - 1)
        test += indices[:cut]
        train += indices[cut:]
    return sorted(train), sorted(test)


def _timed_baseline(texts: Sequence[str]) -> tuple[list[Sentiment], float]:
    classifier = BaselineClassifier()
    started = time.perf_counter()
    sentiments = [classifier.classify(t) for t in texts]
    return sentiments, time.perf_counter() - started


def validate_sentiment(
    texts: Sequence[str],
    labels: Sequence[SentimentLabel],
    *,
    holdout: float = 0.2,
    seed: int = 0,
) -> tuple[SentimentModel, Validation]:
    """Train on a stratified seeded part, score the baseline and the model on the rest.

    The baseline's UNKNOWN counts as wrong: a comment it cannot read is one the learned model
    should. Scores are also split by the language the baseline detects ("none" for text
    without letters). Returns the model trained on the training part."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    train, test = _stratified_split(labels, holdout, seed)
    if not test:
        raise ValueError(f"too few labelled texts to hold any out ({len(texts)})")
    model = train_sentiment([texts[i] for i in train], [labels[i] for i in train], seed=seed)
    test_texts = [texts[i] for i in test]
    truth = [labels[i] for i in test]
    baseline_sentiments, baseline_seconds = _timed_baseline(test_texts)
    started = time.perf_counter()
    learned = model.predict(test_texts)
    learned_seconds = time.perf_counter() - started
    baseline = [s.label for s in baseline_sentiments]
    languages = [s.language or "none" for s in baseline_sentiments]
    by_language: dict[str, tuple[Scores, Scores]] = {}
    for language, _ in Counter(languages).most_common():
        picked = [i for i, lang in enumerate(languages) if lang == language]
        picked_truth = [truth[i] for i in picked]
        by_language[language] = (
            score_predictions(picked_truth, [baseline[i] for i in picked], 0.0),
            score_predictions(picked_truth, [learned[i] for i in picked], 0.0),
        )
    validation = Validation(
        examples=len(texts),
        train=len(train),
        test=len(test),
        baseline=score_predictions(truth, baseline, baseline_seconds),
        learned=score_predictions(truth, learned, learned_seconds),
        by_language=by_language,
    )
    return model, validation


# --- Reasons ------------------------------------------------------------------------------------


class ReasonModel:
    """Suggests reason codes for free text, learned from the chips customers tapped."""

    def __init__(self, pipeline: Any, codes: tuple[str, ...], threshold: float) -> None:
        self._pipeline = pipeline
        self.codes = codes
        self.threshold = threshold

    def probabilities(self, texts: Sequence[str]) -> Any:
        """Array (texts × codes) of each code's probability."""
        return self._pipeline.predict_proba([_clean(t) for t in texts])

    def suggest(self, text: str, *, limit: int = 3) -> list[str]:
        """Up to `limit` codes, likeliest first, each at least `threshold` likely."""
        if not isinstance(text, str) or not text or text.isspace() or limit <= 0:
            return []
        try:
            row = self.probabilities([text])[0]
        except Exception:
            baseline_sentiment.logger.exception("reason suggestion failed")
            return []
        ranked = sorted(zip(row, self.codes, strict=True), key=lambda pc: -pc[0])
        return [code for p, code in ranked[:limit] if p >= self.threshold]

    def to_bytes(self) -> bytes:
        content = {
            "pipeline": self._pipeline,
            "codes": list(self.codes),
            "threshold": self.threshold,
        }
        return _pack("reasons", content)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReasonModel:
        content = _unpack("reasons", data)
        try:
            return cls(
                content["pipeline"],
                tuple(str(c) for c in content["codes"]),
                float(content["threshold"]),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"damaged model: {error}") from error


def train_reasons(
    texts: Sequence[str], codes: Sequence[Sequence[str]], *, seed: int = 0
) -> ReasonModel | None:
    """A model of the codes tapped at least MIN_REASON_EXAMPLES times, or None when there are
    fewer than MIN_EXAMPLES texts or no such code. A text may have several codes, or none
    (a comment whose customer tapped no chip teaches what no reason looks like)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, make_pipeline

    if len(texts) != len(codes):
        raise ValueError(f"{len(texts)} texts but {len(codes)} code lists")
    counts = Counter(code for row in codes for code in set(row))
    kept = tuple(sorted(c for c, n in counts.items() if n >= MIN_REASON_EXAMPLES))
    if len(texts) < MIN_EXAMPLES or not kept:
        return None
    column = {code: j for j, code in enumerate(kept)}
    y = np.zeros((len(texts), len(kept)), dtype=np.int8)
    for i, row in enumerate(codes):
        for code in row:
            if code in column:
                y[i, column[code]] = 1
    if (y.sum(axis=0) == len(texts)).any():
        # A code on every text cannot be told from its absence; nothing to learn.
        return None
    pipeline = make_pipeline(
        FeatureUnion(_ngrams()),
        OneVsRestClassifier(LogisticRegression(C=LOGISTIC_C, max_iter=3000, random_state=seed)),
    )
    pipeline.fit([_clean(t) for t in texts], y)
    return ReasonModel(pipeline, kept, REASON_THRESHOLD)


def reason_figures(
    model: ReasonModel, texts: Sequence[str], codes: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Held-out figures of a reason model: micro precision, recall and F1 of its suggestions
    (at its threshold, up to 3), top-1 accuracy (its likeliest code, whatever the threshold,
    is one of the text's codes; over texts with a known code) and how often it suggests
    anything."""
    if not texts:
        return {"texts": 0.0}
    probabilities = model.probabilities(texts)
    suggested = hits = wanted = top_hits = top_total = any_suggested = 0
    for row, true_codes in zip(probabilities, codes, strict=True):
        truth = {c for c in true_codes if c in model.codes}
        ranked = sorted(zip(row, model.codes, strict=True), key=lambda pc: -pc[0])
        picks = {code for p, code in ranked[:3] if p >= model.threshold}
        suggested += len(picks)
        hits += len(picks & truth)
        wanted += len(truth)
        any_suggested += bool(picks)
        if truth:
            top_total += 1
            top_hits += ranked[0][1] in truth
    precision = hits / suggested if suggested else 0.0
    recall = hits / wanted if wanted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "texts": float(len(texts)),
        "micro_precision": precision,
        "micro_recall": recall,
        "micro_f1": f1,
        "top1_accuracy": top_hits / top_total if top_total else 0.0,
        "suggested_share": any_suggested / len(texts),
    }


def validate_reasons(
    texts: Sequence[str],
    codes: Sequence[Sequence[str]],
    *,
    holdout: float = 0.2,
    seed: int = 0,
) -> tuple[ReasonModel | None, dict[str, float]]:
    """Train on a seeded part, and figures (`reason_figures`) on the held-out rest; (None, {})
    when there is too little to learn from."""
    if len(texts) != len(codes):
        raise ValueError(f"{len(texts)} texts but {len(codes)} code lists")
    # Stratified by first code (or none), so rare reasons appear on both sides.
    strata = [min(row) if row else "" for row in codes]
    train, test = _stratified_split(strata, holdout, seed)
    model = train_reasons([texts[i] for i in train], [codes[i] for i in train], seed=seed)
    if model is None or not test:
        return model, {}
    figures = reason_figures(model, [texts[i] for i in test], [codes[i] for i in test])
    return model, figures
