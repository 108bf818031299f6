"""The /stats chart: a real PNG of the promised size, and no figure left behind between calls."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from bot.charts import HEIGHT_PX, WIDTH_PX, stats_chart
from bot.periods import parse_period
from bot.stats import Figures, Scope, Week

NOW = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)


def figures(**values: object) -> Figures:
    weeks = [Week(NOW - timedelta(weeks=3 - n), 100, 60 + n, 0.7 + n / 100, None) for n in range(4)]
    base: dict[str, object] = {
        "period": parse_period("4w", NOW, UTC),
        "scope": Scope.everything(),
        "scope_label": "all locations",
        "now": NOW,
        "surveys_sent": 400,
        "surveys_answered": 250,
        "csat_answers": 250,
        "csat_satisfied": 180,
        "reasons": [("Long wait", 12), ("Rude staff", 5)],
        "weeks": weeks,
    }
    return Figures(**{**base, **values})  # type: ignore[arg-type]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_phone_sized_png() -> None:
    assert png_size(stats_chart(figures())) == (WIDTH_PX, HEIGHT_PX)


def test_nps_only_and_no_reasons_still_draw() -> None:
    weeks = [Week(NOW - timedelta(weeks=1), 10, 5, None, 20.0), Week(NOW, 0, 0, None, None)]
    data = stats_chart(figures(weeks=weeks, reasons=[], csat_answers=0, nps_answers=5))
    assert png_size(data) == (WIDTH_PX, HEIGHT_PX)


def test_no_figure_is_kept_between_calls() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for _ in range(3):
        stats_chart(figures())
    assert plt.get_fignums() == before
