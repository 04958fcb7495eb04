"""Matplotlib figures. Each function takes prepared data and returns a Figure; none computes
statistics. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state). Every figure of
a report colours a model the same way (``model_colors``): a hue per family (ViTp orange, ViTc blue,
RegNetY green, any other model grey-purple), a shade per size."""

from __future__ import annotations

import re

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")
HP_AXES = (("lr", "learning rate"), ("wd", "weight decay"), ("lr*wd", "lr · wd"))
FAMILY_MAPS = {"vitp": "Oranges", "vitc": "Blues", "regnety": "Greens"}
EPOCH_STYLES = ("-", "--", ":", "-.")


def size_key(model: str) -> tuple:
    """Order models within a family by size: 1mf < mini = 4mf < 18mf, 1gf < ... < 36gf, stems after."""
    m = re.search(r"_(\d+)([mg])f", model)
    size = 4.0 if "mini" in model else float(m.group(1)) if m else 0.0
    scale = 1e3 if (m and m.group(2) == "g") else 1.0
    stem = re.search(r"_s(\d)$", model)
    return (size * scale, int(stem.group(1)) if stem else 0, model)


def family_of(model: str) -> str:
    return next((f for f in FAMILY_MAPS if str(model).startswith(f + "_")), "other")


def model_colors(models) -> dict:
    """One colour per model, fixed for every figure of a report."""
    out, by_family = {}, {}
    for m in sorted(set(map(str, models)), key=size_key):
        by_family.setdefault(family_of(m), []).append(m)
    others = sns.color_palette("tab10", 10)[4:]
    for fam, ms in by_family.items():
        if fam == "other":
            out.update({m: others[i % len(others)] for i, m in enumerate(ms)})
            continue
        shades = sns.color_palette(FAMILY_MAPS[fam], len(ms) + 2)[2:] if len(ms) > 1 else [sns.color_palette(FAMILY_MAPS[fam], 5)[3]]
        out.update(dict(zip(ms, shades)))
    return out


def _color(colors: dict | None, model, i: int):
    return (colors or {}).get(str(model)) or sns.color_palette("tab10", 10)[i % 10]


def edf_figure(curves: list[dict], xlabel: str, title: str = "", xmax: float | None = None,
               colors: dict | None = None) -> Figure:
    """Step EDFs, one per curve dict (key, label, x, F, optional grid/band); ``xmax`` crops the x axis."""
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, c in enumerate(curves):
        color = _color(colors, c.get("key", {}).get("model"), i)
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


def scatter_figure(panels: list[dict], chance: float | None = None, colors: dict | None = None) -> Figure:
    """Error vs lr, wd and lr·wd. Each panel dict (label, row, model, frame with lr/wd/error/diverged,
    ranges = {hp: Interval}) is one colour; panels sharing ``row`` share a row of axes. Good ranges are
    bars (median dot) in a band of their own at the bottom of each axis, below the runs."""
    rows = list(dict.fromkeys(p["row"] for p in panels)) or [""]
    height = 2.8 * len(rows) + 0.7
    fig = Figure(figsize=(11, height))
    fig.subplots_adjust(left=0.08, right=0.8, bottom=0.5 / height, top=1 - 0.45 / height, hspace=0.5, wspace=0.18)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    slot = {r: 0 for r in rows}
    for i, p in enumerate(panels):
        row, d = axes[rows.index(p["row"])], p["frame"]
        div = d["diverged"].astype(float) > 0
        color, y = _color(colors, p.get("model"), i), 0.05 + 0.05 * slot[p["row"]]
        slot[p["row"]] += 1
        for ax, (hp, name) in zip(row, HP_AXES):
            v = d["lr"] * d["wd"] if hp == "lr*wd" else d[hp]
            ax.scatter(v[~div], d["error"][~div], s=22, color=color, alpha=0.75, lw=0, label=p["label"])
            ax.scatter(v[div], d["error"][div], s=30, marker="x", color=color, lw=1.0)
            r = p.get("ranges", {}).get(hp)
            if r is not None and np.isfinite(r.lo):
                ax.plot([r.lo, r.hi], [y, y], color=color, lw=3, transform=ax.get_xaxis_transform(), solid_capstyle="butt")
                ax.plot([r.value], [y], "o", ms=4, color="k", transform=ax.get_xaxis_transform())
        row[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), markerscale=1.2, frameon=False)
    for row, name in zip(axes, rows):
        for ax in row:  # room at the bottom for the good-range band
            lo, hi = ax.get_ylim()
            band = 0.05 * (slot.get(name, 0) + 1.5)
            ax.set_ylim(lo - (hi - lo) * band / (1 - band), hi)
        row[0].set_ylabel(f"{name}\nerror (%)", fontsize=9)
        for ax, (_, label) in zip(row, HP_AXES):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(numticks=4))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(_PLAIN)
            ax.set_xlabel(label, fontsize=9, labelpad=1)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
    if chance:
        fig.suptitle(f"× = diverged (at chance {chance:g}%); bars at the bottom = bootstrap good range, dot = median",
                     fontsize=9)
    return fig


def _view_means(ax, means) -> None:
    """Y limits that show every mean (and zero) with a margin; interval bars beyond them are cut at
    the panel's edge, so two-seed t intervals (one degree of freedom) do not flatten the means."""
    v = np.append(np.asarray(means, dtype=float), 0.0)
    v = v[np.isfinite(v)]
    lo, hi = v.min(), v.max()
    pad = max(5.0, 0.25 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)


def gap_figure(table, colors: dict | None = None) -> Figure:
    """The SGD − AdamW gap per model against gflops with interval bars, one line per family (and
    training length, when the table has several: ``epochs``), markers in each model's colour."""
    fig = Figure(figsize=(6.8, 4.4), layout="constrained")
    ax = fig.subplots()
    budgets = sorted(table["epochs"].unique()) if "epochs" in table else [None]
    many = len(budgets) > 1  # several lines per family: dodge them apart, name them in the legend only
    slots = len(budgets) * table["model"].map(family_of).nunique()
    for k, fam in enumerate(sorted(table["model"].map(family_of).unique())):
        rows = table[table["model"].map(family_of).eq(fam)]
        for j, ep in enumerate(budgets):
            t = (rows if ep is None else rows[rows["epochs"].eq(ep)]).sort_values("gflops")
            if t.empty:
                continue
            x = t["gflops"] * (1.04 ** (k * len(budgets) + j - (slots - 1) / 2) if many else 1.0)
            line = _color(colors, t["model"].iloc[len(t) // 2], 0)
            yerr = np.vstack([t["gap"] - t["lo"], t["hi"] - t["gap"]]).clip(0)
            label = fam + (f", {ep:g} epochs" if many else "")
            ax.errorbar(x, t["gap"], yerr=np.nan_to_num(yerr), color=line, ls=EPOCH_STYLES[j % 4], capsize=3,
                        lw=1.5, label=label)
            dots = [_color(colors, m, 0) for m in t["model"]]
            hollow = t["near chance"] if "near chance" in t else [False] * len(t)
            ax.scatter(x, t["gap"], s=36, zorder=3, edgecolors=dots,
                       facecolors=["white" if h else d for d, h in zip(dots, hollow)])
            if not many:
                for xi, (_, r) in zip(x, t.iterrows()):
                    ax.annotate(r["model"], (xi, r["gap"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    if many:
        _view_means(ax, table["gap"])
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("multiply-adds (G)" if table["gflops"].max() >= 0.1 else "multiply-adds (G; the laptop ladder: 1-18 M)",
                  fontsize=10)
    ax.set_ylabel("SGD − AdamW error (points)", fontsize=10)
    if table["gflops"].max() > 3 * table["gflops"].min():  # a ladder of sizes: log axis, ticks at the sizes
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        if many:  # one tick per size of the ladder: its models' median flops
            ticks = sorted(table.groupby(table["model"].map(lambda m: size_key(m)[0]))["gflops"].median())
        else:
            ticks = sorted(table["gflops"].round(6).unique())
        if len(ticks) <= 8:
            ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        else:
            ax.xaxis.set_major_formatter(_PLAIN)
    else:  # flops close together: a linear axis with a few well-spaced ticks
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.margins(x=0.15)
    ax.tick_params(labelsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def convergence_figure(table, colors: dict | None = None) -> Figure:
    """Error minus the longest budget's error against epochs (paper Fig. 2): a panel per size, a line
    per model at its better optimizer, bars over seeds (``table``: size, model, epochs, delta, lo, hi)."""
    sizes = list(dict.fromkeys(table.sort_values("gflops")["size"]))
    fig = Figure(figsize=(3.6 * len(sizes) + 0.6, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(sizes), sharey=True))
    for ax, size in zip(axes, sizes):
        for i, (model, t) in enumerate(table[table["size"].eq(size)].groupby("model", sort=False)):
            t = t.sort_values("epochs")
            yerr = np.nan_to_num(np.vstack([t["delta"] - t["lo"], t["hi"] - t["delta"]]).clip(0))
            ax.errorbar(t["epochs"], t["delta"], yerr=yerr, marker="o", capsize=3, color=_color(colors, model, i),
                        label=f"{model} ({t['optimizer'].iloc[0]})")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(_PLAIN)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(sorted(table["epochs"].unique()))
        ax.set_title(size, fontsize=10)
        ax.set_xlabel("epochs", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _view_means(axes[0], table["delta"])  # shared y
    axes[0].set_ylabel("error − longest-budget error (points)", fontsize=9)
    return fig


def schedule_figure(table, colors: dict | None = None) -> Figure:
    """Error minus the longest schedule's error against epochs, one line per model."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, m in enumerate(sorted(table["model"].unique(), key=size_key)):
        t = table[table["model"].eq(m)].sort_values("epochs")
        ax.plot(t["epochs"], t["delta"], marker="o", color=_color(colors, m, i), label=m)
    ax.set(xscale="log", xlabel="epochs", ylabel="error − longest-schedule error (points)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def budget_figure(curves: list[dict], colors: dict | None = None) -> Figure:
    """Expected best error after n trials with ±1 std shading, one line per curve (solid AdamW,
    dashed SGD, in each model's colour)."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, c in enumerate(curves):
        color = _color(colors, c.get("key", {}).get("model"), i)
        ls = "--" if c.get("key", {}).get("optimizer") == "sgd" else "-"
        ax.plot(c["n"], c["mean"], color=color, ls=ls, label=c["label"])
        ax.fill_between(c["n"], c["mean"] - c["std"], c["mean"] + c["std"], color=color, alpha=0.12, lw=0)
    ax.set(xscale="log", xlabel="trials n", ylabel="expected best error (%)")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(_PLAIN)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig
