"""`hearback sentiment eval`: how well the learned model and the baseline read a labelled file.

The rows are shuffled with a seed, the learned model is trained on the first N and both
classifiers label the rest; accuracy, macro-F1 and texts per second are printed as a table and,
last, as one JSON line, so a business can check on its own past comments whether learning is
worth it before it has any in Hearback. No database and no settings are needed.

Files: .csv (comma-separated) or .tsv / .txt (tab-separated), UTF-8 (a BOM is fine). Columns are
named from the header row, or given as 0-based numbers when the file has no header row (the UCI
sentence files are "sentence TAB label"). Labels: see `bot.learning.parse_labels`.

Texts per second are measured on one thread (numpy's and scipy's thread pools limited to 1):
the baseline one text at a time, as the bot reads comments, the learned model in one batch.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.models import SentimentLabel

DEFAULT_TRAIN_SHARE = 0.8
DEFAULT_SEED = 0
DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}

DESCRIPTION = (
    "Shuffle the rows of a labelled file (seeded), train the learned sentiment model on the "
    "first N and test it and the baseline (TextBlob with service cues, English only; what it "
    "cannot read counts as wrong) on the rest. Prints accuracy, macro-F1 and texts/s, then one "
    "JSON line. Files: .csv, .tsv or .txt (tab-separated), UTF-8. Labels: negative/neutral/"
    "positive, 0/1 (0 negative) or scores 1-5 (1-2 negative, 3 neutral, 4-5 positive). "
    "Exit status 2 when the file cannot be used."
)


class EvalError(Exception):
    """Input the evaluation cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class LabelledRows:
    texts: list[str]
    labels: list[SentimentLabel]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, metavar="FILE", help="the labelled file (.csv, .tsv or .txt)"
    )
    parser.add_argument(
        "--text",
        required=True,
        metavar="COLUMN",
        help="the column with the texts: its name in the header row, or a 0-based number for a "
        "file without a header row (then every line is a row, e.g. --text 0 --label 1)",
    )
    parser.add_argument(
        "--label",
        required=True,
        metavar="COLUMN",
        help="the column with the labels, named or numbered like --text",
    )
    parser.add_argument(
        "--train",
        type=int,
        metavar="N",
        help=f"rows to train on (default {DEFAULT_TRAIN_SHARE * 100:.0f}%% of them); "
        "the rest are tested",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"shuffle seed (default {DEFAULT_SEED})"
    )


def _column(wanted: str, header: list[str] | None, width: int, option: str) -> tuple[int, str]:
    """Index and display name of a column."""
    if header is None:
        index = int(wanted)
        if index >= width:
            raise EvalError(
                f"there is no column {index} ({option}): the first row has {width} column"
                f"{'s' if width != 1 else ''}, numbered 0-{width - 1}"
            )
        return index, f"column {index}"
    names = [name.strip() for name in header]
    if wanted in names:
        return names.index(wanted), wanted
    lowered = [name.lower() for name in names]
    if wanted.strip().lower() in lowered:
        return lowered.index(wanted.strip().lower()), names[lowered.index(wanted.strip().lower())]
    listed = ", ".join(repr(name) for name in names)
    raise EvalError(
        f"no column {wanted!r} ({option}); the columns are: {listed} "
        "(for a file without a header row, give 0-based column numbers)"
    )


def read_rows(path: Path, text_column: str, label_column: str) -> LabelledRows:
    """Texts and labels from a .csv/.tsv/.txt file; EvalError on anything unusable."""
    from bot.learning import LabelError, parse_labels

    delimiter = DELIMITERS.get(path.suffix.lower())
    if delimiter is None:
        raise EvalError(f"{path}: use a .csv, .tsv or .txt (tab-separated) file")
    numbered = [c.strip().isdigit() for c in (text_column, label_column)]
    if any(numbered) and not all(numbered):
        raise EvalError(
            "give both --text and --label as column names (file with a header row) "
            "or both as 0-based numbers (file without one)"
        )
    headerless = all(numbered)
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            # Tab-separated sentences contain quotes that are not CSV quoting.
            quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
            reader = csv.reader(file, delimiter=delimiter, quoting=quoting)
            rows = [(reader.line_num, row) for row in reader if any(f.strip() for f in row)]
    except FileNotFoundError:
        raise EvalError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise EvalError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError as error:
        raise EvalError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (OSError, csv.Error) as error:
        raise EvalError(f"{path}: cannot be read ({error})") from None
    if not rows:
        raise EvalError(f"{path}: the file is empty")
    header = None if headerless else rows.pop(0)[1]
    width = len(rows[0][1]) if headerless else len(header or [])
    text_index, text_name = _column(text_column, header, width, "--text")
    label_index, label_name = _column(label_column, header, width, "--label")
    texts: list[str] = []
    raw_labels: list[str] = []
    for line, row in rows:
        needed = max(text_index, label_index) + 1
        if len(row) < needed:
            raise EvalError(
                f"{path}: line {line} has {len(row)} column{'s' if len(row) != 1 else ''}, "
                f"{text_name!r} and {label_name!r} need {needed}"
            )
        texts.append(row[text_index])
        raw_labels.append(row[label_index])
    try:
        labels = parse_labels(raw_labels)
    except LabelError as error:
        line = rows[error.position][0]
        raise EvalError(f"{path}: line {line}, {label_name!r}: {error}") from None
    return LabelledRows(texts, labels)


def _check_sizes(rows: LabelledRows, train: int) -> None:
    from bot.learning import MIN_EXAMPLES

    total = len(rows.texts)
    if total < MIN_EXAMPLES + 1:
        raise EvalError(
            f"too few rows: {total}, need at least {MIN_EXAMPLES + 1} "
            f"({MIN_EXAMPLES} to train on and one to test)"
        )
    classes = Counter(rows.labels)
    if len(classes) < 2:
        only = next(iter(classes))
        raise EvalError(f"every row is labelled {only}: need at least two different labels")
    if train >= total:
        raise EvalError(f"--train {train} leaves nothing to test: the file has {total} rows")
    if train < MIN_EXAMPLES:
        raise EvalError(f"--train {train} is too few: train on at least {MIN_EXAMPLES} rows")


def evaluate(rows: LabelledRows, train: int, seed: int) -> dict[str, object]:
    """Train on the first `train` rows after a seeded shuffle, score both on the rest."""
    from threadpoolctl import threadpool_limits

    from bot.learning import score_predictions, train_sentiment
    from bot.sentiment import BaselineClassifier

    order = list(range(len(rows.texts)))
    random.Random(seed).shuffle(order)
    train_part, test_part = order[:train], order[train:]
    train_labels = [rows.labels[i] for i in train_part]
    if len(set(train_labels)) < 2:
        raise EvalError(
            f"the first {train} rows after shuffling all have one label: use a larger --train "
            "or another --seed"
        )
    test_texts = [rows.texts[i] for i in test_part]
    truth = [rows.labels[i] for i in test_part]
    with threadpool_limits(1):
        try:
            model = train_sentiment([rows.texts[i] for i in train_part], train_labels, seed=seed)
        except ValueError as error:
            raise EvalError(f"cannot train: {error}") from None
        baseline = BaselineClassifier()
        baseline.classify("warm up")
        started = time.perf_counter()
        baseline_labels = [baseline.classify(t).label for t in test_texts]
        baseline_seconds = time.perf_counter() - started
        started = time.perf_counter()
        learned_labels = model.predict(test_texts)
        learned_seconds = time.perf_counter() - started
    figures: dict[str, object] = {"train": len(train_part), "test": len(test_part)}
    for name, predicted, seconds in (
        ("baseline", baseline_labels, baseline_seconds),
        ("learned", learned_labels, learned_seconds),
    ):
        scores = score_predictions(truth, predicted, seconds)
        figures[name] = {
            "accuracy": round(scores.accuracy, 4),
            "macro_f1": round(scores.macro_f1, 4),
            "texts_per_s": round(scores.texts_per_s, 1),
        }
    return figures


def print_report(figures: dict[str, object], rows: LabelledRows) -> None:
    counts = Counter(rows.labels)
    split = ", ".join(f"{label} {counts[label]}" for label in sorted(counts))
    print(
        f"{len(rows.texts)} rows ({split}); trained on {figures['train']}, "
        f"tested on {figures['test']}"
    )
    header = f"{'classifier':<12}{'accuracy':>10}{'macro-F1':>10}{'texts/s':>12}"
    print(header)
    print("-" * len(header))
    for name in ("baseline", "learned"):
        scores = figures[name]
        assert isinstance(scores, dict)
        print(
            f"{name:<12}{scores['accuracy']:>10.3f}{scores['macro_f1']:>10.3f}"
            f"{scores['texts_per_s']:>12,.0f}"
        )
    print(json.dumps(figures))


def run(args: argparse.Namespace) -> int:
    """The command itself: 0 when it ran, 2 (and one line on stderr) on unusable input."""
    try:
        rows = read_rows(Path(args.data), args.text, args.label)
        train = args.train if args.train is not None else int(len(rows.texts) * DEFAULT_TRAIN_SHARE)
        _check_sizes(rows, train)
        figures = evaluate(rows, train, args.seed)
    except EvalError as error:
        print(f"hearback sentiment eval: {error}", file=sys.stderr)
        return 2
    print_report(figures, rows)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hearback sentiment eval", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
