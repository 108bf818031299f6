"""Development figures of the learned sentiment model: how settings are chosen without the test.

bench/sentiment.py keeps the last 3,000 rows of each shuffled set as its one fixed test part.
Changes to bot.learning are judged here instead, on three development splits drawn from the rows
before that test part (same files, same seed-0 shuffle), and the test part is run once at the
end. Each split trains on one block of rows and tests on another, never overlapping:

- airline tweets (3 classes): train from row 0, 3,000, 6,000; test rows 5,000–8,000,
  8,000–11,000, 0–3,000; trained on 200, 1,000 and 3,000 rows from each start;
- waimai reviews (2 classes): train from row 0, 3,000, 6,000; test rows 5,000–8,000,
  0–3,000, 3,000–6,000; trained on 200 and 1,000 rows.

Macro-F1 of each split and their mean. One core, as in bench/sentiment.py.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sentiment_dev.py [--data ../shared/data]

Takes about a minute and a half. Last line: {"airline_tweets": {"200": {"mean": …,
"splits": […]}, …}, "waimai": {…}}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sentiment import DATA, TEST_ROWS, load_airline, load_waimai  # bench/sentiment.py, beside
from threadpoolctl import threadpool_limits

from bot.learning import score_predictions, train_sentiment

# (first training row, (first test row, end of test rows)) of each development split.
SPLITS = {
    "airline_tweets": [(0, (5_000, 8_000)), (3_000, (8_000, 11_000)), (6_000, (0, 3_000))],
    "waimai": [(0, (5_000, 8_000)), (3_000, (0, 3_000)), (6_000, (3_000, 6_000))],
}
SIZES = {"airline_tweets": (200, 1_000, 3_000), "waimai": (200, 1_000)}


def development(name: str, rows: list[tuple[str, Any, str]]) -> dict[str, Any]:
    pool = rows[:-TEST_ROWS]  # the test part is never read here
    figures: dict[str, Any] = {}
    for size in SIZES[name]:
        splits = []
        for start, (first, end) in SPLITS[name]:
            train, test = pool[start : start + size], pool[first:end]
            assert start + size <= first or end <= start, "a split's training and test overlap"
            model = train_sentiment([t for t, _, _ in train], [lab for _, lab, _ in train], seed=0)
            predicted = model.predict([t for t, _, _ in test])
            truth = [lab for _, lab, _ in test]
            splits.append(round(score_predictions(truth, predicted, 1.0).macro_f1, 4))
        figures[str(size)] = {"mean": round(sum(splits) / len(splits), 4), "splits": splits}
        print(f"{name:<16}{size:>6} labels  mean {figures[str(size)]['mean']:.4f}  {splits}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"default {DATA}")
    args = parser.parse_args()
    print(f"{'set':<16}{'train':>6}         macro-F1 on the three development splits")
    with threadpool_limits(1):
        results = {
            "airline_tweets": development("airline_tweets", load_airline(args.data)),
            "waimai": development("waimai", load_waimai(args.data)),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
