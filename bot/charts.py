"""The /stats chart: weekly CSAT (or NPS) and response rate, and the top reasons, as one PNG.

Drawn for a phone: 1080 px wide, large type, two panels one above the other. matplotlib is
imported on first use (it takes about a second) with the Agg backend, which needs no display.
Each call builds its own `Figure` object (not pyplot's global state) and drops it, so calls from
several threads at once neither share nor leak figures. Callers run it in a worker thread
(`asyncio.to_thread`) so the event loop keeps serving while it draws.
"""

from __future__ import annotations

import io

from bot.stats import Figures, headline

__all__ = ["HEIGHT_PX", "WIDTH_PX", "stats_chart"]

WIDTH_PX = 1080
HEIGHT_PX = 1350
_DPI = 120
_BLUE, _ORANGE, _RED = "#1f6feb", "#f28c28", "#d1495b"


def stats_chart(figures: Figures) -> bytes:
    """The PNG for ``figures`` (which must have data: an empty chart is never drawn)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    chart = Figure(figsize=(WIDTH_PX / _DPI, HEIGHT_PX / _DPI), dpi=_DPI)
    trend, reasons = chart.subplots(2, 1, gridspec_kw={"height_ratios": (3, 2)})
    chart.suptitle(f"{headline(figures.period.label)} · {figures.scope_label}", fontsize=22)

    weeks = figures.weeks
    labels = [f"{week.start:%d %b}" for week in weeks]
    xs = range(len(weeks))
    nps_only = not any(week.csat is not None for week in weeks) and any(
        week.nps is not None for week in weeks
    )
    if nps_only:
        values = [week.nps for week in weeks]
        trend.plot(xs, _gaps(values), marker="o", lw=3, color=_BLUE, label="NPS")
        trend.set_ylim(-100, 100)
    else:
        values = [None if week.csat is None else 100 * week.csat for week in weeks]
        trend.plot(xs, _gaps(values), marker="o", lw=3, color=_BLUE, label="CSAT % (4–5)")
        trend.set_ylim(0, 100)
    rates = [None if week.response_rate is None else 100 * week.response_rate for week in weeks]
    trend.plot(xs, _gaps(rates), marker="s", lw=3, color=_ORANGE, label="Response rate %")
    trend.set_title("Week by week", fontsize=20, loc="left")
    step = max(1, len(weeks) // 6)
    trend.set_xticks(list(xs)[::step], labels[::step])
    trend.tick_params(labelsize=15)
    trend.grid(alpha=0.3)
    trend.legend(fontsize=15, loc="lower left")

    if figures.reasons:
        names = [name for name, _ in figures.reasons][::-1]
        counts = [count for _, count in figures.reasons][::-1]
        reasons.barh(names, counts, color=_RED)
        for y, count in enumerate(counts):
            reasons.text(count, y, f" {count}", va="center", fontsize=16)
        reasons.set_xlim(0, max(counts) * 1.2)
        reasons.set_title("Top reasons", fontsize=20, loc="left")
        reasons.tick_params(labelsize=16)
        reasons.set_xticks([])
    else:
        reasons.axis("off")
        reasons.text(0.5, 0.5, "No reasons tapped", ha="center", va="center", fontsize=18)
    for side in ("top", "right"):
        trend.spines[side].set_visible(False)
        reasons.spines[side].set_visible(False)
    chart.tight_layout()
    out = io.BytesIO()
    chart.savefig(out, format="png", dpi=_DPI)
    return out.getvalue()


def _gaps(values: list[float | None]) -> list[float]:
    """None as NaN, so a week with nothing to show is a gap in the line rather than a zero."""
    return [float("nan") if value is None else value for value in values]
