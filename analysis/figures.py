"""Matplotlib figures. Each function takes prepared data and returns a Figure; none computes
statistics. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state)."""

from __future__ import annotations

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, FuncFormatter, LogLocator, MaxNLocator, NullLocator

_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")
HP_AXES = (("lr", "learning rate"), ("wd", "weight decay"), ("lr*wd", "lr · wd"))


def _palette(n: int):
    return sns.color_palette("tab10" if n <= 10 else "husl", max(n, 1))


def edf_figure(curves: list[dict], xlabel: str, title: str = "", xmax: float | None = None) -> Figure:
    """Step EDFs, one per curve dict (label, x, F, optional grid/band); ``xmax`` crops the x axis."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for c, color in zip(curves, _palette(len(curves))):
        x, F = c["x"], c["F"]
        if not len(x):
            continue
        ax.step(np.r_[x[0], x], np.r_[0.0, F], where="post", color=color, label=f"{c['label']} (n={len(x)})")
        if "band" in c:
            ax.fill_between(c["grid"], *c["band"], step="post", color=color, alpha=0.18, lw=0)
    ax.set(xlabel=xlabel, ylabel="cumulative prob.", ylim=(0, 1.02))
    ax.set_title(title, fontsize=9)
    if xmax is not None:
        ax.set_xlim(right=xmax)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    return fig


def scatter_figure(panels: list[dict], chance: float | None = None) -> Figure:
    """Error vs lr, wd and lr·wd. Each panel dict (label, row, frame with lr/wd/error/diverged,
    ranges = {hp: Interval}) is one colour; panels sharing ``row`` share a row of axes. Good
    ranges are drawn as bars (median dot) along the top of each axis."""
    rows = list(dict.fromkeys(p["row"] for p in panels)) or [""]
    height = 2.4 * len(rows) + 0.7
    fig = Figure(figsize=(10, height))
    fig.subplots_adjust(left=0.08, right=0.8, bottom=0.5 / height, top=1 - 0.45 / height, hspace=0.45, wspace=0.18)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    slot = {r: 0 for r in rows}
    colors = _palette(max([sum(q["row"] == r for q in panels) for r in rows] + [1]))
    for p in panels:
        row, d = axes[rows.index(p["row"])], p["frame"]
        div = d["diverged"].astype(float) > 0
        color, y = colors[slot[p["row"]]], 0.97 - 0.04 * slot[p["row"]]
        slot[p["row"]] += 1
        for ax, (hp, name) in zip(row, HP_AXES):
            v = d["lr"] * d["wd"] if hp == "lr*wd" else d[hp]
            ax.scatter(v[~div], d["error"][~div], s=6, color=color, alpha=0.6, lw=0, label=p["label"])
            ax.scatter(v[div], d["error"][div], s=14, marker="x", color=color, lw=0.8)
            r = p.get("ranges", {}).get(hp)
            if r is not None and np.isfinite(r.lo):
                ax.plot([r.lo, r.hi], [y, y], color=color, lw=2.5, transform=ax.get_xaxis_transform())
                ax.plot([r.value], [y], "o", ms=3, color="k", transform=ax.get_xaxis_transform())
        row[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), markerscale=2, frameon=False)
    for row, name in zip(axes, rows):
        for ax in row:
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi + (hi - lo) * 0.05 * (slot.get(name, 0) + 1))
        row[0].set_ylabel(f"{name}\nerror (%)", fontsize=8)
        for ax, (_, label) in zip(row, HP_AXES):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(numticks=4))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(_PLAIN)
            ax.set_xlabel(label, fontsize=8, labelpad=1)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    if chance:
        fig.suptitle(f"× = diverged (at chance {chance:g}%); bars at top = bootstrap good range, dot = median", fontsize=8)
    return fig


def gap_figure(table, a: str = "adamw", b: str = "sgd") -> Figure:
    """Best-error gap (b - a) per model against gflops with CI bars, one line per family."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    fams = sorted(table["family"].unique())
    for fam, color in zip(fams, _palette(len(fams))):
        t = table[table["family"].eq(fam)].sort_values("gflops")
        yerr = np.vstack([t["gap"] - t["lo"], t["hi"] - t["gap"]]).clip(0)
        ax.errorbar(t["gflops"], t["gap"], yerr=yerr, marker="o", capsize=3, color=color, label=fam)
        for _, r in t.iterrows():
            ax.annotate(r["model"], (r["gflops"], r["gap"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set(xlabel="GFLOPs", ylabel=f"best error {b} − {a} (points)")
    if table["gflops"].max() > 10 * table["gflops"].min():  # the paper's 1-36 GF: log axis
        ax.set_xscale("log")
    else:  # flops close together (the minis): a linear axis with a few well-spaced ticks
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.margins(x=0.15)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def schedule_figure(table) -> Figure:
    """Error minus the longest schedule's error against epochs, one line per model."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    models = sorted(table["model"].unique())
    for m, color in zip(models, _palette(len(models))):
        t = table[table["model"].eq(m)].sort_values("epochs")
        ax.plot(t["epochs"], t["delta"], marker="o", color=color, label=m)
    ax.set(xscale="log", xlabel="epochs", ylabel="error − longest-schedule error (points)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def budget_figure(curves: list[dict]) -> Figure:
    """Expected best error after n trials with ±1 std shading, one line per curve."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for c, color in zip(curves, _palette(len(curves))):
        ax.plot(c["n"], c["mean"], color=color, label=c["label"])
        ax.fill_between(c["n"], c["mean"] - c["std"], c["mean"] + c["std"], color=color, alpha=0.15, lw=0)
    ax.set(xscale="log", xlabel="trials n", ylabel="expected best error (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig
