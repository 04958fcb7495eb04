"""Matplotlib figures. Each function takes prepared data and returns a Figure; none computes
statistics. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state) in ``STYLE`` (text
of 9 pt or more at the size the report shows them). A model has one colour in every figure of every
report (``model_color``): a hue per family (ViTp orange, ViTc blue, the Table 3 stems S1-S4 purple,
RegNetY green), a shade per rung of the size ladder, any other model a fixed colour of its name."""

from __future__ import annotations

import zlib

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

from .names import FAMILIES, LADDER, family_of, flops_text, size_key, size_of, stem_of

STYLE = {"font.size": 9, "legend.fontsize": 9, "axes.labelsize": 10, "axes.titlesize": 10, "xtick.labelsize": 9,
         "ytick.labelsize": 9, "figure.titlesize": 10, "svg.hashsalt": "hpbench", "svg.fonttype": "none"}  # text as text
_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")
HP_AXES = (("lr", "learning rate"), ("wd", "weight decay"), ("lr*wd", "lr · wd"))
FAMILY_MAPS = {"vitp": "Oranges", "vitc": "Blues", "regnety": "Greens"}  # the stems S1-S4: Purples
SHADES = {"1mf": 0.45, "4mf": 0.7, "18mf": 0.92, "1gf": 0.45, "4gf": 0.7, "16gf": 0.85, "18gf": 0.85, "32gf": 0.95,
          "36gf": 0.95}  # each rung's shade of its family's colour map
OTHERS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728", "#6b3d9a", "#5a5a2e")
OPT_STYLES = {"adamw": "-", "sgd": "--"}
MANY = 2000  # points (or steps) in a figure beyond which its data are drawn as pixels inside the SVG
STEMS = ("C", "S1", "S2", "S3", "S4", "P")


def styled(fn):
    """Build the figure under STYLE (the report saves it under STYLE too)."""
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def model_color(model: str) -> tuple:
    """The model's one colour, the same in every report."""
    fam, rung = family_of(model), size_of(model)
    if fam == "vitc" and stem_of(model).startswith("S"):
        return tuple(matplotlib.colormaps["Purples"](0.35 + 0.15 * int(stem_of(model)[1])))
    if fam == "other" or rung not in SHADES:
        return matplotlib.colors.to_rgba(OTHERS[zlib.crc32(str(model).encode()) % len(OTHERS)])
    return tuple(matplotlib.colormaps[FAMILY_MAPS[fam]](SHADES[rung]))


def model_colors(models) -> dict:
    """``model_color`` of each model."""
    return {str(m): model_color(m) for m in models}


def _color(colors: dict | None, model, i: int = 0):
    return (colors or {}).get(str(model)) or model_color(str(model))


def flops_axis(ax, gflops) -> None:
    """A log multiply-adds axis spanning at least one rung either side of the data, ticks at the
    ladder's rungs ('1 M, 4 M, 18 M'), so that models a few percent apart sit together."""
    g = np.asarray(gflops, float)
    lo, hi = g.min() / 2.5, g.max() * 2.5
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ticks = sorted({v for v in LADDER.values() if lo <= v <= hi})
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [flops_text(t) for t in ticks])
    ax.set_xlabel("multiply-adds (log scale; ticks at the ladder's sizes)")


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**{"frameon": False, **kw})


@styled
def edf_figure(curves: list[dict], xlabel: str, title: str = "", xmax: float | None = None,
               colors: dict | None = None) -> Figure:
    """Step EDFs, one per curve dict (key, label, x, F, optional grid/band); ``xmax`` crops the x axis."""
    fig = Figure(figsize=(3.9, 3.1), layout="constrained")
    ax = fig.subplots()
    many = sum(len(c["x"]) for c in curves) > MANY
    for i, c in enumerate(curves):
        color = _color(colors, c.get("key", {}).get("model"), i)
        x, F = c["x"], c["F"]
        if not len(x):
            continue
        ax.step(np.r_[x[0], x], np.r_[0.0, F], where="post", color=color, label=f"{c['label']} (n={len(x)})",
                rasterized=many)
        if "band" in c:
            ax.fill_between(c["grid"], *c["band"], step="post", color=color, alpha=0.18, lw=0, rasterized=many)
    ax.set(xlabel=xlabel, ylabel="fraction of runs", ylim=(0, 1.02))
    ax.set_title(title)
    if xmax is not None:
        ax.set_xlim(right=xmax)
    ax.grid(alpha=0.3)
    _legend(ax, loc="lower right")
    return fig


@styled
def scatter_figure(panels: list[dict], chance: float | None = None, colors: dict | None = None) -> Figure:
    """Error vs lr, wd and lr·wd. Each panel dict (label, row, model, frame with lr/wd/error/diverged,
    ranges = {hp: Interval}) is one colour; panels sharing ``row`` share a row of axes, and every axis
    shares one y axis. Good ranges are bars (median dot) in a band of their own at the bottom of each axis."""
    rows = list(dict.fromkeys(p["row"] for p in panels)) or [""]
    height = 2.7 * len(rows) + 0.8
    fig = Figure(figsize=(11.5, height))
    fig.subplots_adjust(left=0.08, right=0.79, bottom=0.55 / height, top=1 - 0.5 / height, hspace=0.55, wspace=0.08)
    axes = fig.subplots(len(rows), 3, squeeze=False, sharey=True)
    slot = {r: 0 for r in rows}
    many = sum(len(p["frame"]) for p in panels) > MANY
    for i, p in enumerate(panels):
        row, d = axes[rows.index(p["row"])], p["frame"]
        div = d["diverged"].astype(float) > 0
        color, y = _color(colors, p.get("model"), i), 0.05 + 0.05 * slot[p["row"]]
        slot[p["row"]] += 1
        for ax, (hp, name) in zip(row, HP_AXES):
            v = d["lr"] * d["wd"] if hp == "lr*wd" else d[hp]
            ax.scatter(v[~div], d["error"][~div], s=22, color=color, alpha=0.75, lw=0, label=p["label"], rasterized=many)
            ax.scatter(v[div], d["error"][div], s=30, marker="x", color=color, lw=1.0, rasterized=many)
            r = p.get("ranges", {}).get(hp)
            if r is not None and np.isfinite(r.lo):
                ax.plot([r.lo, r.hi], [y, y], color=color, lw=3, transform=ax.get_xaxis_transform(), solid_capstyle="butt")
                ax.plot([r.value], [y], "o", ms=4, color="k", transform=ax.get_xaxis_transform())
        row[-1].legend(loc="upper left", bbox_to_anchor=(1.03, 1), markerscale=1.2, frameon=False)
    lo, hi = axes[0][0].get_ylim()  # one y axis: room at the bottom for the good-range band
    band = 0.05 * (max(slot.values(), default=0) + 1.5)
    axes[0][0].set_ylim(lo - (hi - lo) * band / (1 - band), hi)
    for row, name in zip(axes, rows):
        row[0].set_ylabel(f"{name}\nerror (%)")
        for ax, (_, label) in zip(row, HP_AXES):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(numticks=4))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(_PLAIN)
            ax.set_xlabel(label, labelpad=1)
            ax.grid(alpha=0.3)
    if chance:
        fig.suptitle(f"× = diverged (at chance, {chance:g}%); bars at the bottom: bootstrap good range, dot: its median")
    return fig


def _bars(ax, x, y, lo, hi, **kw) -> None:
    """Error bars from (lo, hi), none where they are missing (NaN)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    yerr = np.vstack([np.asarray(y) - lo, hi - np.asarray(y)])
    ax.errorbar(x, y, yerr=np.where(np.isfinite(yerr), yerr, 0).clip(0), capsize=3, **kw)


@styled
def gap_figure(table, colors: dict | None = None) -> Figure:
    """The SGD − AdamW gap per model against multiply-adds (log, ladder ticks) with interval bars, one
    line per family (and training length, when the table has several: ``epochs``)."""
    budgets = sorted(table["epochs"].unique()) if "epochs" in table else [None]
    fig = Figure(figsize=(7.2, 4.2), layout="constrained")
    ax = fig.subplots()
    many = len(budgets) > 1
    fams = sorted(table["model"].map(family_of).unique())
    slots = len(budgets) * len(fams)
    for k, fam in enumerate(fams):
        rows = table[table["model"].map(family_of).eq(fam)]
        for j, ep in enumerate(budgets):
            t = (rows if ep is None else rows[rows["epochs"].eq(ep)]).sort_values("gflops")
            if t.empty:
                continue
            x = t["gflops"] * 1.06 ** (k * len(budgets) + j - (slots - 1) / 2)  # set apart to be read
            label = FAMILIES.get(fam, fam) + (f", {ep:g} epochs" if many else "")
            _bars(ax, x, t["gap"], t["lo"], t["hi"], color=_color(colors, t["model"].iloc[-1]),
                  ls=["-", "--", ":", "-."][j % 4], lw=1.5, label=label)
            dots = [_color(colors, m) for m in t["model"]]
            hollow = t["near chance"] if "near chance" in t else [False] * len(t)
            ax.scatter(x, t["gap"], s=36, zorder=3, edgecolors=dots,
                       facecolors=["white" if h else d for d, h in zip(dots, hollow)])
            if not many:
                for xi, (_, r) in zip(x, t.iterrows()):
                    ax.annotate(r["model"], (xi, r["gap"]), xytext=(5, 4), textcoords="offset points")
    ax.axhline(0, color="0.5", lw=0.8)
    flops_axis(ax, table["gflops"])
    ax.set_ylabel("SGD − AdamW error (points)")
    ax.grid(alpha=0.3)
    _legend(ax, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


@styled
def convergence_figure(table, colors: dict | None = None) -> Figure:
    """Paper Fig. 2, a row per optimizer and a panel per size: each model's error minus its error at
    the longest budget, at the shorter budgets (the longest is 0 by construction: its error is in the
    legend), bars from ``lo``/``hi`` (``table``: optimizer, size, model, epochs, delta, lo, hi, longest,
    error_longest, gflops). y is shared by every panel."""
    sizes = list(dict.fromkeys(table.sort_values("gflops")["size"]))
    opts = sorted(table["optimizer"].unique())
    width = min(3.5, 11.2 / len(sizes))  # the figure stays within the page at its own size
    fig = Figure(figsize=(width * len(sizes) + 0.8, 2.9 * len(opts) + 0.3), layout="constrained")
    axes = fig.subplots(len(opts), len(sizes), squeeze=False, sharey=True, sharex=True)
    for row, opt in zip(axes, opts):
        for ax, size in zip(row, sizes):
            t = table[table["optimizer"].eq(opt) & table["size"].eq(size)]
            for model, m in sorted(t.groupby("model"), key=lambda kv: size_key(kv[0])):
                m = m.sort_values("epochs")
                label = f"{model} ({m['longest'].iloc[0]:g} ep: {m['error_longest'].iloc[0]:.1f}%)"
                _bars(ax, m["epochs"], m["delta"], m["lo"], m["hi"], marker="o", color=_color(colors, model), label=label)
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(_PLAIN)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(sorted(table["epochs"].unique()))
            ax.set_title(f"{size}, {opt}")
            ax.grid(alpha=0.3)
            _legend(ax, loc="upper right", fontsize=8.5 if len(t["model"].unique()) > 2 else 9)
        row[0].set_ylabel("error − error at the\nlongest budget (points)")
    for ax in axes[-1]:
        ax.set_xlabel("epochs")
    return fig


@styled
def stem_figure(table, paper: dict | None = None, colors: dict | None = None) -> Figure:
    """Table 3 as a figure: the error of each stem (C, S1…S4, P) with AdamW and with SGD, seed means
    with bars from ``lo``/``hi``, and SGD − AdamW per stem beside it, the paper's (ImageNet, 4GF) as
    hollow diamonds. ``table``: stem, optimizer, error, lo, hi, and gap rows (optimizer 'sgd − adamw')."""
    fig = Figure(figsize=(9.6, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    x = {s: i for i, s in enumerate(STEMS)}
    for opt in ("adamw", "sgd"):
        t = table[table["optimizer"].eq(opt)].sort_values("stem", key=lambda s: s.map(x))
        _bars(left, t["stem"].map(x), t["error"], t["lo"], t["hi"], marker="o", color="0.25" if opt == "sgd" else "0.6",
              ls=OPT_STYLES[opt], label=opt)
        left.scatter(t["stem"].map(x), t["error"], s=40, zorder=3, color=[_color(colors, m) for m in t["model"]])
    g = table[table["optimizer"].eq("sgd − adamw")].sort_values("stem", key=lambda s: s.map(x))
    _bars(right, g["stem"].map(x), g["error"], g["lo"], g["hi"], marker="o", color="0.3", label="this study")
    right.scatter(g["stem"].map(x), g["error"], s=40, zorder=3, color=[_color(colors, m) for m in g["model"]])
    if paper:
        right.scatter([x[s] for s in paper], list(paper.values()), marker="D", s=36, facecolors="white",
                      edgecolors="k", zorder=4, label="paper (ImageNet, 4GF, 50 ep)")
    right.axhline(0, color="0.5", lw=0.8)
    for ax, ylabel in ((left, "error (%)"), (right, "SGD − AdamW (points)")):
        ax.set_xticks(range(len(STEMS)), STEMS)
        ax.set_xlabel("stem: conv (C) → S1…S4 → patchify (P)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        _legend(ax, loc="best")
    return fig


@styled
def heatmap_figure(panels: list[dict], chance: float, colors: dict | None = None) -> Figure:
    """Error over the (lr, wd) plane, a panel per model (rows) and optimizer (columns): the error
    interpolated between the runs (linear in log lr, log wd; one colour scale for every panel), the
    runs as dots (× diverged), the bootstrap good range of lr and of wd as a dashed box. Each panel
    dict: optimizer, model, frame (lr, wd, error, diverged), ranges {hp: Interval}."""
    from matplotlib.tri import Triangulation

    opts = list(dict.fromkeys(p["optimizer"] for p in panels))
    models = sorted(dict.fromkeys(p["model"] for p in panels), key=size_key)
    fig = Figure(figsize=(3.4 * len(opts) + 1.3, 2.7 * len(models) + 0.3), layout="constrained")
    axes = fig.subplots(len(models), len(opts), squeeze=False, sharex="col", sharey="col")
    lo = min(float(p["frame"]["error"].min()) for p in panels)
    levels = MaxNLocator(12).tick_values(lo, chance)
    filled, many = None, sum(len(p["frame"]) for p in panels) > MANY
    for p in panels:
        ax = axes[models.index(p["model"])][opts.index(p["optimizer"])]
        d = p["frame"].dropna(subset=["lr", "wd", "error"])
        x, y, e = np.log10(d["lr"].to_numpy(float)), np.log10(d["wd"].to_numpy(float)), d["error"].to_numpy(float)
        if len(d) >= 4 and np.ptp(x) > 0 and np.ptp(y) > 0:
            filled = ax.tricontourf(Triangulation(x, y), e.clip(max=chance), levels=levels, cmap="viridis_r")
            filled.set_rasterized(True)
        div = d["diverged"].astype(float).to_numpy() > 0
        ax.scatter(x[~div], y[~div], s=9, c="k", lw=0, rasterized=many)
        ax.scatter(x[div], y[div], s=22, marker="x", c="r", lw=1, rasterized=many)
        r = p.get("ranges", {})
        if r.get("lr") is not None and r.get("wd") is not None and np.isfinite(r["lr"].lo) and np.isfinite(r["wd"].lo):
            bx, by = np.log10([r["lr"].lo, r["lr"].hi]), np.log10([r["wd"].lo, r["wd"].hi])
            ax.plot(bx[[0, 1, 1, 0, 0]], by[[0, 0, 1, 1, 0]], ls="--", color="w", lw=1.6)
            ax.plot(bx[[0, 1, 1, 0, 0]], by[[0, 0, 1, 1, 0]], ls="--", color=_color(colors, p["model"]), lw=1.0)
        ax.set_title(f"{p['model']}, {p['optimizer']}")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{10 ** v:.2g}"))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{10 ** v:.2g}"))
        ax.set_ylabel("weight decay (log)")
    for ax in axes[-1]:
        ax.set_xlabel("learning rate (log)")
    if filled is not None:
        fig.colorbar(filled, ax=axes, shrink=0.9, label="error (%)")
    return fig


@styled
def importance_figure(table, colors: dict | None = None) -> Figure:
    """fANOVA importance of lr and wd per model and optimizer, as horizontal bars (``table``: model,
    optimizer, lr, wd)."""
    t = table.sort_values(["optimizer", "model"], key=lambda s: s.map(size_key) if s.name == "model" else s)
    labels = [f"{m}, {o}" for m, o in zip(t["model"], t["optimizer"])]
    fig = Figure(figsize=(6.4, 0.45 * len(t) + 1.2), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(t))
    ax.barh(y - 0.2, t["lr"], height=0.38, color=[_color(colors, m) for m in t["model"]], label="learning rate")
    ax.barh(y + 0.2, t["wd"], height=0.38, color=[_color(colors, m) for m in t["model"]], hatch="///",
            edgecolor="w", label="weight decay")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set(xlabel="share of the error's variance (fANOVA)", xlim=(0, 1))
    ax.grid(alpha=0.3, axis="x")
    _legend(ax, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    return fig


@styled
def curves_figure(curves: list[dict], chance: float, colors: dict | None = None) -> Figure:
    """Learning curves (error per epoch) of chosen trials, a panel per optimizer: each curve dict has
    model, optimizer, label, epoch, error (and ``ls``: its line style)."""
    opts = list(dict.fromkeys(c["optimizer"] for c in curves))
    fig = Figure(figsize=(5.2 * len(opts) + 0.4, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(opts), sharey=True))
    for ax, opt in zip(axes, opts):
        for c in (c for c in curves if c["optimizer"] == opt):
            ax.plot(c["epoch"], c["error"], marker="o", ms=3, ls=c.get("ls", "-"), color=_color(colors, c["model"]),
                    label=c["label"])
        ax.axhline(chance, color="0.5", lw=0.8, ls=":")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=opt, xlabel="epoch")
        ax.grid(alpha=0.3)
        _legend(ax, loc="upper right", fontsize=8.5)
    axes[0].set_ylabel("validation error (%)")
    return fig


@styled
def schedule_figure(table, colors: dict | None = None) -> Figure:
    """Error minus the longest schedule's error against epochs, one line per model (``bench plot schedule``)."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for m in sorted(table["model"].unique(), key=size_key):
        t = table[table["model"].eq(m)].sort_values("epochs")
        ax.plot(t["epochs"], t["delta"], marker="o", color=_color(colors, m), label=m)
    ax.set(xscale="log", xlabel="epochs", ylabel="error − longest-schedule error (points)")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


@styled
def budget_figure(curves: list[dict], colors: dict | None = None) -> Figure:
    """Expected best error after n trials with ±1 std shading, one line per curve (solid AdamW,
    dashed SGD, in each model's colour)."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    for i, c in enumerate(curves):
        color = _color(colors, c.get("key", {}).get("model"), i)
        ls = OPT_STYLES.get(c.get("key", {}).get("optimizer"), "-")
        ax.plot(c["n"], c["mean"], color=color, ls=ls, label=c["label"])
        ax.fill_between(c["n"], c["mean"] - c["std"], c["mean"] + c["std"], color=color, alpha=0.12, lw=0)
    ax.set(xscale="log", xlabel="trials n", ylabel="expected best error (%)")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(_PLAIN)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3)
    _legend(ax, loc="upper right")
    return fig
