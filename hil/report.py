"""A run's report: ``report.json``, ``report.md`` and ``plot.png``; and the policy comparison.

The plot (matplotlib, Agg backend: no display needed) has three panels on
one time axis: site current per phase against the current limit (with the
margin, and the controller's hold/fail-safe time shaded), site power against
the power limit with the EV power delivered and available, and per connector
the controller's setpoint (dashed) and the EV's draw (solid). Timeline
events are vertical lines across all three, labelled on top.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from hil.kpis import KPI_NAMES
from hil.results import ScenarioResult, finite

PHASE_COLORS = ("#8c564b", "#111111", "#7f7f7f")  # L1 brown, L2 black, L3 grey (IEC 60446)
MODE_COLORS = {"hold": "#fff3b0", "failsafe": "#ffc9c9"}


def write_report(result: ScenarioResult, folder: Path) -> dict[str, Path]:
    """Write the three report files into ``folder`` (created if needed); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "report.json",
        "markdown": folder / "report.md",
        "plot": folder / "plot.png",
    }
    text = json.dumps(finite(result.to_json()), indent=1, allow_nan=False) + "\n"
    paths["json"].write_text(text, encoding="utf-8")
    plot(result, paths["plot"])
    paths["markdown"].write_text(markdown(result), encoding="utf-8")
    return paths


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "-"
    return str(value)


def markdown(result: ScenarioResult) -> str:
    """The human-readable report."""
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [
        f"# {result.scenario} · {result.policy}: {verdict}",
        "",
        result.description.strip(),
        "",
        f"Duration {result.duration_s:g} s, real time. ![plot](plot.png)",
        "",
        "## Assertions",
        "",
        "| result | assertion | measured |",
        "| --- | --- | --- |",
    ]
    for a in result.assertions:
        lines.append(f"| {'pass' if a.passed else '**FAIL**'} | `{a.text}` | {_fmt(a.actual)} |")
    lines += ["", "## KPIs", "", "| KPI | value |", "| --- | --- |"]
    for name in (*KPI_NAMES, "fairness_by_priority", "peak_over_limit_a_per_phase"):
        if name in result.kpis:
            lines.append(f"| {name} | {_fmt(result.kpis[name])} |")
    lines += ["", "## Controller", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in result.controller.items()]
    lines += ["", "## Events and recovery", "", "| t (s) | event |", "| --- | --- |"]
    lines += [f"| {e['t']:.1f} | {e['label']} |" for e in result.series["events"]]
    recovery = result.kpis.get("recovery", [])
    late = [r for r in recovery if r["recover_s"] is None or r["recover_s"] > 0]
    lines += ["", f"{len(recovery)} disturbances; over the limit after {len(late)} of them:"]
    lines += [f"- at {r['at_s']:.1f} s: back under after {_fmt(r['recover_s'])} s" for r in late]
    return "\n".join(lines) + "\n"


def _events(ax: Axes, events: Sequence[dict[str, Any]], label: bool) -> None:
    """Vertical lines at the events; labels (merged when closer than 1 s) on the top panel."""
    merged: list[tuple[float, str, int]] = []
    for e in events:
        if merged and e["t"] - merged[-1][0] < 1.0:
            t, text, n = merged[-1]
            merged[-1] = (t, text, n + 1)
        else:
            merged.append((e["t"], e["label"], 1))
    for t, text, n in merged:
        ax.axvline(t, color="#1f77b4", linestyle=":", linewidth=0.8, alpha=0.7)
        if label:
            more = f" (+{n - 1})" if n > 1 else ""
            ax.text(
                t, 1.01, text + more, transform=ax.get_xaxis_transform(), rotation=60,
                fontsize=6.5, ha="left", va="bottom", color="#1f4e79",
            )  # fmt: skip


def _modes(ax: Axes, t: Sequence[float], modes: Sequence[str], dt_s: float) -> None:
    for i, mode in enumerate(modes):
        if mode in MODE_COLORS:
            ax.axvspan(t[i], t[i] + dt_s, color=MODE_COLORS[mode], linewidth=0, zorder=0)


def _limit_over_time(series: dict[str, Any], key: str) -> list[float]:
    """The limit ``key`` (``limit_a``, ``limit_kw``) at each sample, after the run's changes.

    NaN where there is no such limit (matplotlib leaves a gap).
    """
    value, changes, i, values = series[key], series.get("limit_changes", []), 0, []
    for t in series["t"]:
        while i < len(changes) and changes[i]["t"] <= t:
            value, i = changes[i][key], i + 1
        values.append(math.nan if value is None else float(value))
    return values


def _current_panel(ax: Axes, series: dict[str, Any]) -> None:
    t = series["t"]
    _modes(ax, t, series["mode"], series["dt_s"])
    for p in range(3):
        color = PHASE_COLORS[p]
        ax.plot(t, [a[p] for a in series["site_a"]], color=color, lw=1.4, label=f"site L{p + 1}")
        ax.plot(t, [a[p] for a in series["base_a"]], color=color, lw=0.8, ls=":", alpha=0.8)
    limit_a = _limit_over_time(series, "limit_a")
    if not all(math.isnan(a) for a in limit_a):
        ax.plot(t, limit_a, color="red", lw=1.6, drawstyle="steps-post", label="current limit")
        margin_a = [a - series["margin_a"] for a in limit_a]
        ax.plot(
            t,
            margin_a,
            color="red",
            lw=0.8,
            ls="--",
            drawstyle="steps-post",
            label="limit − margin",
        )
    ax.set_ylabel("site current per phase (A)\n(dotted: base load)")
    ax.legend(loc="lower right", fontsize=7, ncol=5)


def _power_panel(ax: Axes, series: dict[str, Any]) -> None:
    t, v = series["t"], series["voltage_v"]
    ax.plot(t, [sum(a) * v / 1000 for a in series["site_a"]], color="black", lw=1.4, label="site")
    ax.plot(t, [w / 1000 for w in series["ev_power_w"]], color="tab:green", lw=1.1, label="EVs")
    available = [w / 1000 for w in series["available_w"]]
    ax.plot(t, available, color="tab:green", lw=0.9, ls="--", label="EVs could take")
    limit_kw = _limit_over_time(series, "limit_kw")
    if not all(math.isnan(kw) for kw in limit_kw):
        ax.plot(t, limit_kw, color="red", lw=1.6, drawstyle="steps-post", label="power limit")
    ax.set_ylabel("power (kW)")
    ax.legend(loc="lower right", fontsize=7, ncol=4)


def _connector_panel(ax: Axes, series: dict[str, Any]) -> None:
    connectors = series["connectors"]
    cmap = plt.get_cmap("tab20" if len(connectors) > 10 else "tab10")
    for i, (key, c) in enumerate(connectors.items()):
        color = cmap(i % cmap.N)
        ax.plot(c["t"], c["draw_a"], color=color, lw=1.2, label=key)
        setpoints = [float("nan") if s is None else s for s in c["setpoint_a"]]
        ax.step(c["t"], setpoints, where="post", color=color, lw=0.9, ls="--", alpha=0.9)
        ax.step(c["t"], c["offered_a"], where="post", color=color, lw=0.8, ls=":", alpha=0.9)
    ax.set_ylabel("per connector (A per phase)\nsolid: draw, dashed: setpoint,\ndotted: offered")
    ax.set_xlabel("scenario time (s)")
    if connectors:
        ncol = 1 if len(connectors) <= 12 else 2
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=6.5, ncol=ncol)


def plot(result: ScenarioResult, path: Path) -> None:
    """Write the three-panel PNG."""
    series = result.series
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(13, 10), height_ratios=(3, 2, 3))
    try:
        _current_panel(axes[0], series)
        _power_panel(axes[1], series)
        _connector_panel(axes[2], series)
        for i, ax in enumerate(axes):
            _events(ax, series["events"], label=i == 0)
            ax.grid(True, alpha=0.3)
        verdict = "PASSED" if result.passed else "FAILED"
        fig.suptitle(f"{result.scenario} · policy {result.policy} · {verdict}", fontsize=12)
        axes[0].set_xlim(0, result.duration_s)
        fig.tight_layout(rect=(0, 0, 0.92, 0.97))
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def compare_table(results: Sequence[ScenarioResult]) -> str:
    """A Markdown table: one row per KPI, one column per policy."""
    header = "| KPI | " + " | ".join(r.policy for r in results) + " |"
    lines = [header, "| --- |" + " --- |" * len(results)]
    for name in KPI_NAMES:
        lines.append(f"| {name} | " + " | ".join(_fmt(r.kpis.get(name)) for r in results) + " |")
    verdicts = " | ".join("PASSED" if r.passed else "FAILED" for r in results)
    lines.append(f"| assertions | {verdicts} |")
    return "\n".join(lines)


def write_compare(results: Sequence[ScenarioResult], folder: Path) -> None:
    """``compare.md`` and ``compare.json`` beside the per-policy folders."""
    folder.mkdir(parents=True, exist_ok=True)
    title = f"# {results[0].scenario}: policies compared\n\n" if results else ""
    (folder / "compare.md").write_text(title + compare_table(results) + "\n", encoding="utf-8")
    data = {r.policy: {k: r.kpis.get(k) for k in KPI_NAMES} for r in results}
    (folder / "compare.json").write_text(
        json.dumps(finite(data), indent=1) + "\n", encoding="utf-8"
    )
