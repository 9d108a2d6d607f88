#!/usr/bin/env python3
"""The chart of bench/compare (matplotlib, from the virtual environment run.sh makes):
  chart.py CHART_JSON OUT_PNG
Left: PiCloud / peer for every workload that has a peer (rates: PiCloud / peer; times: peer /
PiCloud; above 1 PiCloud did better), with the goal of issue 8 as a mark where there is one.
Right: PiCloud against the issue's absolute goals, as goal-normalised scores (value / goal for
rates, goal / value for times and memory): a bar reaching the line at 1 meets the goal."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402


def plain(axis):
    """Log-scale ticks as plain numbers (0.5, 1, 2), no minor labels."""
    axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.xaxis.set_minor_formatter(NullFormatter())


def main():
    data = json.load(open(sys.argv[1]))
    rows = data["rows"]
    ratios = [r for r in rows if r.get("ratio")]
    absolute = [a for r in rows for a in r.get("absolute", [])]

    height = max(len(ratios), len(absolute), 4) * 0.42 + 1.6
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, height), gridspec_kw={"width_ratios": [1, 1]})

    def colour(ok):
        return "#2e7d32" if ok else "#c62828"

    # Left: ratios against the peers.
    names = [r["name"] for r in ratios][::-1]
    values = [r["ratio"] for r in ratios][::-1]
    goals = [r.get("ratio_goal") for r in ratios][::-1]
    colours = [colour(g is None or v >= g) if g is not None else "#607d8b" for v, g in zip(values, goals)]
    bars = left.barh(names, values, color=colours)
    left.set_xscale("log")
    left.axvline(1.0, color="black", linewidth=0.8)
    for i, goal in enumerate(goals):
        if goal is not None:
            left.plot([goal, goal], [i - 0.42, i + 0.42], color="#1565c0", linewidth=2.5)
    for bar, value in zip(bars, values):
        left.text(bar.get_width() * 1.04, bar.get_y() + bar.get_height() / 2, f"{value:.2f}", va="center", fontsize=8)
    left.set_xlim(min(values + [0.5]) / 2, max(values + [2]) * 3)
    left.set_title("PiCloud / peer (log scale; >1: PiCloud better)\nblue mark: goal of issue 8, grey: no goal", fontsize=10)
    left.tick_params(axis="y", labelsize=8)
    plain(left)

    # Right: absolute goals.
    if absolute:
        labels = [a["label"] for a in absolute][::-1]
        scores = [a["score"] for a in absolute][::-1]
        bars = right.barh(labels, scores, color=[colour(s >= 1) for s in scores])
        right.set_xscale("log")
        right.axvline(1.0, color="#1565c0", linewidth=2, label="goal")
        for bar, a in zip(bars, absolute[::-1]):
            right.text(bar.get_width() * 1.04, bar.get_y() + bar.get_height() / 2, a["value"], va="center", fontsize=8)
        right.set_xlim(min(scores + [0.5]) / 2, max(scores + [2]) * 4)
        right.set_title("PiCloud against absolute goals (log scale)\nvalue/goal for rates, goal/value for times and memory: ≥1 meets", fontsize=10)
        right.tick_params(axis="y", labelsize=8)
        plain(right)
    else:
        right.axis("off")

    fig.suptitle(f"bench/compare {data.get('date', '')} (run {data.get('run', '')}): green met, red not met", fontsize=11)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
