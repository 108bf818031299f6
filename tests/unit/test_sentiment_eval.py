"""`hearback sentiment eval` on small files: the table, the JSON line, and every bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bot import cli
from bot.sentiment_eval import main

POSITIVE = ["great coffee", "lovely staff", "fast and friendly", "excellent cake", "thank you"]
NEGATIVE = ["rude staff", "cold food", "waited forever", "dirty tables", "never again"]
NEUTRAL = ["came on monday", "paid by card", "sat by the window", "ordered tea", "with my son"]


def comments(count: int, labels: dict[str, list[str]], seed: int = 4) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = list(labels)[i % len(labels)]
        rows.append((" and ".join(rng.sample(labels[label], 2)), label))
    return rows


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def last_json(out: str) -> dict[str, object]:
    return json.loads(out.strip().splitlines()[-1])


def test_csv_with_word_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = comments(60, {"negative": NEGATIVE, "neutral": NEUTRAL, "positive": POSITIVE})
    data = write(
        tmp_path / "c.csv",
        ["id,comment,sentiment"] + [f'{i},"{t}",{s}' for i, (t, s) in enumerate(rows)],
    )
    assert main(["--data", str(data), "--text", "comment", "--label", "sentiment"]) == 0
    out = capsys.readouterr().out
    figures = last_json(out)
    assert list(figures) == ["train", "test", "baseline", "learned"]
    assert (figures["train"], figures["test"]) == (48, 12)
    for name in ("baseline", "learned"):
        scores = figures[name]
        assert isinstance(scores, dict)
        assert list(scores) == ["accuracy", "macro_f1", "texts_per_s"]
        assert 0.0 <= scores["accuracy"] <= 1.0
        assert scores["texts_per_s"] > 0
    learned = figures["learned"]
    assert isinstance(learned, dict)
    assert learned["accuracy"] >= 0.8
    assert "baseline" in out.splitlines()[-3] and "learned" in out.splitlines()[-2]
    assert "60 rows" in out


def test_tsv_with_scores_and_train_and_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = comments(40, {"1": NEGATIVE, "5": POSITIVE, "4": POSITIVE, "2": NEGATIVE})
    data = write(tmp_path / "s.tsv", ["text\tscore"] + [f"{t}\t{s}" for t, s in rows])
    argv = [
        "--data",
        str(data),
        "--text",
        "text",
        "--label",
        "score",
        "--train",
        "30",
        "--seed",
        "5",
    ]
    assert main(argv) == 0
    first = last_json(capsys.readouterr().out)
    assert (first["train"], first["test"]) == (30, 10)
    assert main(argv) == 0
    again = last_json(capsys.readouterr().out)
    assert first["learned"]["accuracy"] == again["learned"]["accuracy"]  # type: ignore[index]


def test_headerless_txt_with_column_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = comments(30, {"0": NEGATIVE, "1": POSITIVE})
    # Quotes in a tab-separated sentence are text, not CSV quoting.
    data = write(tmp_path / "uci.txt", [f'the "{t}"\t{s}' for t, s in rows])
    assert main(["--data", str(data), "--text", "0", "--label", "1"]) == 0
    figures = last_json(capsys.readouterr().out)
    assert (figures["train"], figures["test"]) == (24, 6)


def test_through_the_hearback_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here: defaults only
    rows = comments(30, {"0": NEGATIVE, "1": POSITIVE})
    data = write(tmp_path / "uci.txt", [f"{t}\t{s}" for t, s in rows])
    assert cli.main(["sentiment", "eval", "--data", str(data), "--text", "0", "--label", "1"]) == 0
    assert last_json(capsys.readouterr().out)["test"] == 6


def run_bad(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    rows = comments(30, {"negative": NEGATIVE, "positive": POSITIVE})
    return write(tmp_path / "good.csv", ["comment,label"] + [f"{t},{s}" for t, s in rows])


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    error = run_bad(["--data", str(tmp_path / "nope.csv"), "--text", "a", "--label", "b"], capsys)
    assert "nope.csv: no such file" in error


def test_unknown_column_lists_the_columns(
    good_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = run_bad(["--data", str(good_csv), "--text", "review", "--label", "label"], capsys)
    assert "no column 'review'" in error
    assert "'comment', 'label'" in error


def test_column_number_beyond_the_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path / "x.txt", ["a\t1"] * 30)
    error = run_bad(["--data", str(data), "--text", "0", "--label", "4"], capsys)
    assert "no column 4" in error and "0-1" in error


def test_unreadable_label_names_the_line_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"{t},{s}" for t, s in comments(30, {"negative": NEGATIVE, "positive": POSITIVE})]
    rows[6] = "so-so,meh"
    data = write(tmp_path / "bad.csv", ["comment,label", *rows])
    error = run_bad(["--data", str(data), "--text", "comment", "--label", "label"], capsys)
    assert "line 8" in error and "'meh'" in error


def test_too_few_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = comments(10, {"negative": NEGATIVE, "positive": POSITIVE})
    data = write(tmp_path / "few.csv", ["comment,label"] + [f"{t},{s}" for t, s in rows])
    error = run_bad(["--data", str(data), "--text", "comment", "--label", "label"], capsys)
    assert "too few rows: 10" in error


def test_only_one_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = comments(30, {"positive": POSITIVE})
    data = write(tmp_path / "one.csv", ["comment,label"] + [f"{t},{s}" for t, s in rows])
    error = run_bad(["--data", str(data), "--text", "comment", "--label", "label"], capsys)
    assert "every row is labelled positive" in error


@pytest.mark.parametrize("train", ["30", "31"])
def test_train_must_leave_rows_to_test(
    good_csv: Path, capsys: pytest.CaptureFixture[str], train: str
) -> None:
    error = run_bad(
        ["--data", str(good_csv), "--text", "comment", "--label", "label", "--train", train], capsys
    )
    assert f"--train {train} leaves nothing to test" in error


def test_train_too_small(good_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    error = run_bad(
        ["--data", str(good_csv), "--text", "comment", "--label", "label", "--train", "5"], capsys
    )
    assert "too few" in error


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("data.json", b"{}", "use a .csv, .tsv or .txt"),
        ("empty.csv", b"", "the file is empty"),
        ("latin1.csv", "comment,label\ncaf\xe9,positive\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_unusable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    error = run_bad(["--data", str(path), "--text", "comment", "--label", "label"], capsys)
    assert expected in error


def test_mixed_column_names_and_numbers(good_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    error = run_bad(["--data", str(good_csv), "--text", "0", "--label", "label"], capsys)
    assert "both" in error


def test_short_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [f"{t}\t{s}" for t, s in comments(30, {"0": NEGATIVE, "1": POSITIVE})]
    lines[3] = "no label here"
    data = write(tmp_path / "short.tsv", lines)
    error = run_bad(["--data", str(data), "--text", "0", "--label", "1"], capsys)
    assert "line 4 has 1 column" in error


def test_help_says_how_to_use_column_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["sentiment", "eval", "--help"])
    assert "0-based" in capsys.readouterr().out
