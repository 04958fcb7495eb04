"""Build the single self-contained HTML report: a jinja2 template, figures as inline SVG, the trial
table as an embedded CSV download, and the Findings (analysis.verdict) as embedded JSON, the object
the first screen, ``bench verdict`` and the README blocks all render."""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import io
import json
import math
import platform
import sys
from importlib import metadata
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from bench.core import dataspec, paper
from bench.core.identity import parse_study_name

from . import answer, figures, reference as reference_study, stats, summary, tuned, verdict
from .names import FAMILIES, flops_text, size_key

TRIAL_ROWS = 2000
CSV_GZIP = 1 << 20  # bytes of CSV beyond which the download is gzipped (pandas reads trials.csv.gz as it is)
DELTA_XMAX = 20.0
TRIAL_COLS = ["trial_number", "study", "model", "optimizer", "budget", "epochs", "seed", "point", "lr", "wd", "error",
              "raw_error", "diverged", "state", "data", "resolution", "num_classes", "gflops", "seconds", "host"]  # fmt: skip
PACKAGES = ("numpy", "pandas", "scipy", "matplotlib", "seaborn", "optuna", "jinja2", "scikit-learn", "torch", "timm")
PROVENANCE = ("suite", "commit", "dirty", "python", "torch", "torchvision", "timm", "data")
SECTIONS = {"reference": "Against the reference", "answer": "The answer", "findings": "Runs and claims in full",
            "edf": "Error distributions", "scatter": "Error over lr and wd",
            "gap": "AdamW vs SGD", "schedule": "Training length", "stems": "Stems (Table 3)",
            "budget": "Expected best after n", "importance": "Importance", "curves": "Learning curves",
            "paper": "The paper's numbers", "trials": "Trials", "studies": "Study definitions",
            "environment": "Environment"}  # fmt: skip
SEARCH_ONLY = "needs sampled (lr, wd) points: this study trains one tuned point per model and optimizer"
# words for the column keys of the report's tables
WORDS = {"n": "runs", "points": "points", "failed": "failed", "diverged": "diverged", "best": "lowest error",
         "ref": "Δ taken against", "median": "median error", "chance": "chance error", "p_above": "p (above)",
         "p_below": "p (below)", "above": "EDF above by", "below": "EDF below by", "pairs": "paired points",
         "median_diff": "median difference", "p_vs_higher": "p (vs higher)", "p_vs_lower": "p (vs lower)",
         "hp": "hyperparameter", "lo": "2.5%", "hi": "97.5%", "vs": "against", "seconds": "seconds per run",
         "best_ref": "reference's lowest", "lower_at": "lower at", "p_lower": "p (lower)", "p_higher": "p (higher)",
         "within_4": "within 4 of best", "within_4_ref": "reference within 4", "ks_above": "Δ-EDF above by",
         "ks_below": "Δ-EDF below by", "p_more_robust": "p (more robust)", "p_less_robust": "p (less robust)",
         "error": "error", "robustness": "robustness", "model": "model", "optimizer": "optimizer", "epochs": "epochs",
         "reference": "reference model", **{f"within_{k}": f"share within {k} points of best" for k in summary.WITHIN},
         f"auc_{summary.AUC_CUTOFF:g}": f"area under the Δ-EDF to {summary.AUC_CUTOFF:g} points (÷ {summary.AUC_CUTOFF:g})"}  # fmt: skip
QUESTIONS = {
    "reference": "How does {mine} compare with the reference's models at the same (lr, wd) draws?",
    "stems": "Does a ViT's error rise as its stem gets less convolutional, from the conv stem C through S1…S4 to "
             "patchify P?",
    "tuned": "Does a convolutional stem make ViTs converge faster and train as well with SGD as with AdamW, across sizes?",
    "search": "Is a ViT with a convolutional stem (ViTc) easier to optimise than one with a patchify stem (ViTp): "
              "more robust to learning rate and weight decay, and as good with SGD as with AdamW?",
    "other": "How robust are {models} to learning rate and weight decay?",
}  # fmt: skip


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if (abs(v) < 1e-2 or abs(v) >= 1e4) and v != 0 else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values (NaN -> None, bool -> 'yes'/'no')."""

    def conv(v):
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v) if math.isfinite(v) else None
        return None if v is pd.NA or v is None else v

    return [{k: conv(v) for k, v in r.items()} for r in df.to_dict("records")]


def _svg(fig) -> str:
    """The figure as a base64 SVG (vector; interpolated surfaces rasterised at 150 dpi)."""
    buf = io.BytesIO()
    with matplotlib.rc_context(figures.STYLE):
        fig.savefig(buf, format="svg", dpi=150, metadata={"Date": None, "Creator": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def level(value, lo, hi, seeds=None, sign: str = "", none: str = "") -> str:
    """'54.5 [49.5, 59.6]', or the value and why it has no interval ('2 seeds: no interval', or ``none``)."""
    if value is None or not np.isfinite(value):
        return "–"
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        why = f"{seeds} seed{'s' * (seeds != 1)}: no interval" if seeds else none
        return f"{value:{sign}.1f}" + (f" ({why})" if why else "")
    return f"{value:{sign}.1f} [{lo:{sign}.1f}, {hi:{sign}.1f}]"


def environment() -> list[dict]:
    """Python, platform and package versions of the analysis, as table rows."""
    rows = [{"item": "python", "value": sys.version.split()[0]}, {"item": "platform", "value": platform.platform()}]
    for p in PACKAGES:
        try:
            rows.append({"item": p, "value": metadata.version(p)})
        except metadata.PackageNotFoundError:
            rows.append({"item": p, "value": "not installed"})
    return rows


def provenance(df: pd.DataFrame, extras: pd.DataFrame | None) -> list[dict]:
    """Per study: its data in words and, where its trials recorded it (bench/provenance.py), the suite's
    version and commit, whether the tree was dirty, and the Python/torch/torchvision/timm versions,
    each value with its count of trials; hosts from the table."""
    out = []
    for study, g in df.groupby(df["study"].astype(str), sort=True):
        rows = [dict(item="data", value="; ".join(f"{dataspec.describe(d)['name']} ({d}): {n} trials"
                                                 for d, n in g["data"].dropna().value_counts().items()) or "not recorded"),
                dict(item="hosts", value=", ".join(f"{h} ({n})" for h, n in g["host"].dropna().value_counts().items())
                     or "not recorded")]
        prov = extras[extras["study"].astype(str).eq(study)]["provenance"].dropna() if extras is not None and len(extras) else []
        if len(prov) == 0:
            rows.append(dict(item="code and libraries", value="not recorded: these trials carry no provenance (trials "
                             "run since bench/provenance.py record it in result.json)"))
        for key in PROVENANCE if len(prov) else ():
            vals = pd.Series([str(p.get(key)) if isinstance(p, dict) and p.get(key) is not None else "not recorded"
                              for p in prov]).value_counts()
            rows.append(dict(item=key, value=", ".join(f"{v} ({n} trials)" for v, n in vals.items())
                             + (" — mixed: these trials ran on different code" if len(vals) > 1 and key != "data" else "")))
        out.append(dict(study=study, rows=rows))
    return out


def study_definitions(studies, kept: dict, attrs: dict) -> list[tuple[str, dict]]:
    """Each study's definition as its trials ran with it: the study file its last `bench run` kept
    (``kept[study]``: ``<results>/<study>/study.toml``, or beside a committed table), else the optuna
    user attrs; never today's study file, which may say something else."""
    out = []
    for s in studies:
        path = kept.get(s)
        if path and Path(path).is_file():
            text = Path(path).read_text(errors="replace")
            out.append((s, {"origin": f"{path} (as the trials ran with it)", "text": text}))
            continue
        own = {k: v for k, v in attrs.items() if parse_study_name(k)["study"] == s}
        if own:
            text = "\n".join(f"{k}: {v}" for k, v in sorted(own.items()))
            out.append((s, {"origin": "optuna study user attrs", "text": text}))
    return out


def kind(df: pd.DataFrame, reference: dict | None) -> str:
    """What the study holds: 'reference' (a user's models beside a reference), 'stems', 'tuned'
    (one point per model at several lengths), 'search' (ViTp/ViTc pairs at sampled points), 'other'."""
    res = summary.results(df)
    if reference:
        return "reference"
    if len(summary.stem_cells(res)):
        return "stems"
    pts = res.groupby(["model", "optimizer"])["point"].nunique()
    if len(pts) and pts.max() <= 1:
        return "tuned"
    models = set(res["model"].astype(str))
    return "search" if any(m.startswith("vitp_") and "vitc_" + m[5:] in models for m in models) else "other"


def header(df: pd.DataFrame, study_kind: str, reference: dict | None, studies) -> dict:
    """The question and the scale: models, multiply-adds, resolution, data, epochs, points, trials."""
    res = summary.results(df)
    models = sorted(res["model"].dropna().astype(str).unique(), key=size_key)
    mine = sorted(set(models) - set(reference["models"]), key=size_key) if reference else models
    question = QUESTIONS[study_kind].format(mine=", ".join(mine) or "your models", models=", ".join(models) or "the models")
    flops = res.groupby("model")["gflops"].max().dropna()
    scale = []
    if len(models):
        span = (flops_text(flops.min()) if np.isclose(flops.min(), flops.max(), rtol=0.005) else
                f"{flops_text(flops.min())}–{flops_text(flops.max())}") if len(flops) else "unknown"
        scale.append(("models", f"{', '.join(models)} ({span} multiply-adds)"))
    res_px = sorted(res["resolution"].dropna().astype(int).unique())
    if res_px:
        scale.append(("resolution", " / ".join(f"{r} px" for r in res_px)))
    epochs = sorted(res["epochs"].dropna().astype(int).unique())
    if epochs:
        scale.append(("training", ", ".join(map(str, epochs)) + f" epoch{'s' * (epochs != [1])}"))
    search = res[res["seed"].fillna(0) < summary.CONFIRM_SEED0]
    pts = search.groupby(["model", "optimizer"])["point"].nunique()
    seeds = search.groupby(["model", "optimizer", "epochs", "point"])["seed"].nunique()
    opts = ", ".join({"adamw": "AdamW", "sgd": "SGD"}.get(o, o) for o in sorted(res["optimizer"].dropna().unique()))
    if len(pts) and pts.max() > 1:
        n = f"{pts.min()}" if pts.min() == pts.max() else f"{pts.min()}–{pts.max()}"
        scale.append(("points", f"{n} random (lr, wd) draws per model and optimizer ({opts}), paired across models"))
    elif len(pts):
        scale.append(("points", f"one tuned (lr, wd) per model and optimizer ({opts}), {seeds.max()} seeds each"))
    confirm = int((res["seed"].fillna(0) >= summary.CONFIRM_SEED0).sum())
    scale.append(("trials", f"{len(df)} finished" + (f" ({len(df) - confirm} search, {confirm} confirm reruns)" if confirm
                                                     else "") + f", {int(res['diverged'].sum())} diverged, "
                  f"{int(df['state'].eq('FAIL').sum())} failed"))
    return dict(question=question, studies=studies, scale=scale, data=data_statement(res))


def data_statement(res: pd.DataFrame) -> dict:
    """What the images are, in words (bench.core.dataspec.describe), with their counts and classes."""
    specs = sorted(res["data"].dropna().astype(str).unique()) if len(res) else []
    if not specs:
        return dict(name="not recorded in these trials", detail="", natural=None)
    parts, names = [], []
    for s in specs:
        d = dataspec.describe(s)
        names.append(d["name"])
        counts = (f"{d['train']:,} train / {d['val']:,} validation images" if d["train"] else "counts not recorded")
        parts.append(f"{s}: {counts}")
    classes = sorted(res["num_classes"].dropna().astype(int).unique())
    detail = "; ".join(parts) + (f"; {', '.join(map(str, classes))} classes" if classes else "")
    synthetic = all(s.startswith("synthetic") for s in specs)
    return dict(name="; ".join(dict.fromkeys(names)), detail=detail, natural=not synthetic)


def build(df: pd.DataFrame, *, title: str | None = None, source: str = "", studies=None, definitions=(),
          ref: str = "min", seed: int = 0, importance_max: int = 64, reference: dict | None = None,
          design=None, extras: pd.DataFrame | None = None) -> str:  # fmt: skip
    """Render the report HTML for the tidy trial table ``df`` (``title``: default the study's question;
    ``studies``: names to list, default those in ``df``; ``definitions``: (name, {origin, text}) pairs;
    ``reference``: {name, table, models, notes} when ``df`` holds a reference study's trials beside the
    user's; ``design``: the claims' test design (analysis.claims.Design); ``extras``: the trials' curves
    and provenance, analysis.load.Loaded.extras)."""
    res = summary.results(df)
    studies = sorted(df["study"].dropna().astype(str).unique()) if studies is None else studies
    study_kind = kind(df, reference)
    head = header(df, study_kind, reference, studies)
    ctx = dict(head=head, title=title or head["question"], source=source, definitions=list(definitions),
               notes=_notes(df, res), generated=_dt.datetime.now().isoformat(timespec="seconds"),
               words=WORDS, kind=study_kind, best_of=stats.BEST_OF)  # fmt: skip
    f = verdict.findings(df, design=design, seed=seed)
    ctx.update(_findings(f, df))
    ctx["against"] = _against(df, reference, seed) if reference else None
    shown: dict[str, str | None] = {}  # section -> None (drawn) or why it is not
    if len(res):
        ctx.update(_analysis(df, ref, seed, importance_max, extras, shown))
    else:
        shown.update({s: "no finished results" for s in ("edf", "scatter", "gap", "schedule", "stems",
                                                          "budget", "importance", "curves")})
    ctx.update(**_trials(df), **_paper(df), environment=environment(), provenance=provenance(df, extras))
    if reference:
        ctx["trials_caption"] += (f" The trials of {', '.join(reference['models'])} are the reference study's "
                                  f"({reference['name']}), not retrained.")
    if not ctx["definitions"]:
        shown["studies"] = "no study file was kept beside these trials"
    order = (["reference"] if reference else []) + [s for s in SECTIONS if s != "reference"]
    ctx["sections"] = [dict(id=s, title=SECTIONS[s] if not (s == "answer" and reference) else "The reference's claims",
                            why=shown.get(s)) for s in order]
    ctx["missing"] = _missing(ctx["sections"])
    ctx["verdict_json"] = _script_json(dict(source=source, reference=reference["name"] if reference else None,
                                            findings=verdict.to_json(f),
                                            against=ctx["against"]["rows"] if reference else None))
    env = Environment(loader=PackageLoader("analysis", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["fmt"] = _fmt
    env.filters["word"] = lambda c: WORDS.get(c, str(c).replace("_", " "))
    return env.get_template("report.html").render(**ctx)


def _missing(sections: list[dict]) -> list[dict]:
    """The sections a study cannot draw, one entry per reason: [{titles, why}]."""
    by_why: dict[str, list[str]] = {}
    for s in sections:
        if s["why"]:
            by_why.setdefault(s["why"], []).append(s["title"])
    return [dict(titles=", ".join(t), why=w) for w, t in by_why.items()]


def _script_json(obj) -> str:
    """JSON for a <script type="application/json"> element: <, > and & as \\u escapes, so no text
    inside can close the element or open another."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _notes(df: pd.DataFrame, res: pd.DataFrame) -> list[str]:
    notes = []
    if res.empty:
        notes.append("This study has no finished results yet: nothing to plot." + (" All trials failed." if len(df) else ""))
        return notes
    if res["model"].nunique() < 2:
        notes.append(f"Only one model ({res['model'].iloc[0]}): model comparisons are not available.")
    if res["diverged"].all():
        notes.append("Every trial diverged: all errors sit at chance, so the EDFs are a single step.")
    return notes


def _findings(f: dict, df: pd.DataFrame) -> dict:
    """The verdict on the paper's claims: the first screen's lines and the tables below them."""
    lines = [answer.line(c) for c in f["claims"]]
    cells = f["cells"]
    cell_rows = _cell_rows(cells)
    return dict(answer=lines, noise=f["noise"], rule=f["design"].describe(), lines=f["lines"], near_cells=_near_cells(cells, df),
                groups=_groups_rows(f["groups"]), cells=cell_rows,
                cells_cols=list(dict.fromkeys(k for r in cell_rows for k in r)))


def _near_cells(cells: pd.DataFrame, df: pd.DataFrame) -> str:
    """Which tuned cells end near noise (mean error above half of chance), in one sentence, or ''."""
    if cells.empty:
        return ""
    chance = summary.results(df).groupby("model")["chance"].max()
    hot = cells[cells["error"] > cells["model"].map(chance) / 2]
    if hot.empty:
        return ""
    parts = []
    for opt, g in hot.groupby("optimizer"):
        every = len(g) == int(cells["optimizer"].eq(opt).sum())
        parts.append(f"{opt}: " + ("every cell" if every else ", ".join(
            f"{r['model']} {r['epochs']} ep {r['error']:.1f}%" for r in summary.by_size(g).to_dict("records"))))
    half = ", ".join(f"{c / 2:g}%" for c in sorted(set(chance)))
    return (f"{len(hot)} of {len(cells)} cells end near noise, their mean error above half of chance ({half}) — "
            + "; ".join(parts) + ". The gap tests leave such cells out; the other claims use every cell, so read "
            "their verdicts with that in mind.")


def _groups_rows(g: pd.DataFrame) -> list[dict]:
    """The random search's groups in words: each statistic with its interval in one cell."""
    rows = []
    for r in summary.by_size(g).to_dict("records"):
        row = {"model": r["model"], "optimizer": r["optimizer"], "points": r["points"],
               "lowest error": f"{r['best']:.1f}", "median error": f"{r['median']:.1f}",
               f"expected best of {stats.BEST_OF} [95% CI]": level(r["best_of_k"], r["best_of_k_lo"], r["best_of_k_hi"],
                                                                  none=f"no interval below {stats.MIN_POINTS} points")}
        for k in verdict.WITHIN:
            row[f"within {k} of best [95% CI]"] = (f"{r[f'within_{k}']:.2f} [{r[f'within_{k}_lo']:.2f}, "
                                                                f"{r[f'within_{k}_hi']:.2f}]")
        row.update({"diverged": r["diverged"], "seconds per run": f"{r['seconds']:.0f}"})
        rows.append(row)
    return rows


def _cell_rows(cells: pd.DataFrame) -> list[dict]:
    """Tuned cells in words, a row per model and optimizer, a column per budget: the seed mean with its
    interval cut to [0, 100] (summary.seed_interval), or why it has none."""
    rows = []
    if cells.empty:
        return rows
    for (model, opt), g in summary.by_size(cells).groupby(["model", "optimizer"], sort=False):
        row = {"model": model, "optimizer": opt, "seeds": int(g["seeds"].min())}
        for r in g.sort_values("epochs").to_dict("records"):
            ok = r["seeds"] >= summary.MIN_SEEDS
            row[f"error (%) at {r['epochs']} epochs"] = level(r["error"], max(0.0, r["lo"]) if ok else None,
                                                             min(100.0, r["hi"]) if ok else None, int(r["seeds"]))
        rows.append(row)
    return rows


def _against(df: pd.DataFrame, reference: dict, seed: int) -> dict:
    """Each of the user's models against each reference model, paired by draw (analysis.reference)."""
    mine = sorted(set(df["model"]) - set(reference["models"]), key=size_key)
    table = reference_study.compare(df, mine, reference["models"], seed=seed)
    lines = []
    for r, text in zip(table.to_dict("records"), reference_study.lines(table)):
        best = level(r["best_diff"], r["best_lo"], r["best_hi"], sign="+",
                     none=f"no interval below {stats.MIN_POINTS} points")
        lines.append(dict(where=f"{r['model']} vs {r['reference']}, {r['optimizer']}, {r['points']} paired points",
                          error=r["error"], robustness=r["robustness"], badge_error=_word_badge(r["error"]),
                          badge_robust=_word_badge(r["robustness"]), effect=f"median {r['median_diff']:+.1f} points; "
                          f"expected best of {stats.BEST_OF}: {best}", text=text))
    return dict(reference, mine=mine, lines=lines, rows=_records(table), cols=reference_study.COMPARE_COLS)


def _word_badge(word: str) -> str:
    return {"lower": "v-reproduced", "more robust": "v-reproduced", "higher": "v-not-reproduced",
            "less robust": "v-not-reproduced"}.get(word, "v-inconclusive")


def _analysis(df, ref, seed, importance_max, extras, shown: dict) -> dict:
    """Statistics, figures (inline SVG) and fANOVA importance; one colour per model throughout.
    ``shown`` gets why each section this study cannot draw is left out."""
    colors = figures.model_colors(df["model"].dropna().unique())

    def fig(name, *args, caption):
        return {"svg": _svg(getattr(figures, name)(*args, colors=colors)), "caption": caption}

    pm = summary.point_means(df)  # seed replicates averaged once, reused below
    ctx = dict(ref_label=summary.reference_label(df, ref))
    for part in (_gap(pm, df, fig, shown), _schedule(pm, df, fig, shown), _stems(df, fig, shown),
                 _curves(df, extras, fig, shown)):
        ctx.update(part)
    ctx["confirm"] = _confirm(df)
    if pm.groupby(["model", "optimizer"])["point"].nunique().max() <= 1:  # tuned points only (optimizer, stem)
        shown.update({s: SEARCH_ONLY for s in ("edf", "scatter", "budget", "importance")})
        return ctx
    rob = summary.robustness(df, ref=ref, seed=seed)
    ctx.update(summary=_records(rob), summary_cols=list(rob.columns))

    def edfs(opt, g):
        out, label = [], summary.reference_label(df[df["optimizer"].eq(opt)], ref)
        for mode, xl, what in (("plain", "error (%)", "error"), ("delta", "error − lowest (points)", "Δ to the lowest"),
                               ("scaled", "(error − lowest) / (chance − lowest)", "Δ scaled by headroom")):  # fmt: skip
            curves = summary.edf_curves(g, mode=mode, ref=ref, band=mode != "scaled", seed=seed)
            cap = f"{opt}: EDF of {what}" + ("." if mode == "scaled" else "; 95% bootstrap bands (1000 resamples).")
            cap += "" if mode == "plain" else f" Reference: {label}."
            xmax = DELTA_XMAX if mode == "delta" else None
            if xmax:
                cap += " " + _beyond(g, ref, seed)
            out.append(fig("edf_figure", curves, xl, f"{opt}: {what}", xmax, caption=cap))
        return out

    ctx["edf_rows"] = [edfs(opt, g) for opt, g in pm.groupby("optimizer", sort=True)]
    tests = summary.ks_table(pm, seed=seed)
    ctx.update(tests=_records(summary.by_size(tests)), tests_cols=list(tests.columns))
    if pm[["lr", "wd"]].notna().all(axis=1).any():
        ctx.update(_scatter(pm, seed, fig))
    else:
        shown["scatter"] = "the trials carry no lr and wd"
    curves = summary.budget_curves(pm)
    ctx["budget_fig"] = fig("budget_figure", curves, caption="Expected best error after n random trials "
                             "(drawn without replacement from the study's) ±1 std, from per-point errors; "
                             "solid AdamW, dashed SGD.")  # fmt: skip
    try:
        imp = summary.by_size(summary.importance(pm, max_trials=importance_max, seed=seed))
        if imp.empty:
            shown["importance"] = "too few distinct (lr, wd) runs with varying error for fANOVA"
        else:
            ctx.update(importance=_records(imp), importance_cols=list(imp.columns),
                       importance_fig=fig("importance_figure", imp, caption=f"fANOVA importance (optuna's evaluator, 16 "
                                          f"trees of depth 4) of lr and wd on per-point errors, at most {importance_max} "
                                          "runs per group: the share of the error's variance each explains."))
    except ImportError:
        shown["importance"] = "fANOVA needs scikit-learn, which is not installed"
    return ctx


def _scatter(pm, seed, fig) -> dict:
    panels = summary.scatter_panels(pm, seed=seed)
    chance = float(pm["chance"].max())
    opt_of = [str(p["frame"]["optimizer"].iloc[0]) for p in panels]
    out = {"scatter_figs": [fig("scatter_figure", [p for p, o in zip(panels, opt_of) if o == opt], chance,
                                caption=f"{opt}: per-point error (seed replicates averaged) vs hyperparameters; "
                                        "one y axis per row.")
                            for opt in sorted(pm["optimizer"].unique())]}
    heat = [dict(p, optimizer=o) for p, o in zip(panels, opt_of)]
    out["heatmap_fig"] = fig("heatmap_figure", heat, chance, caption="Error over the (lr, wd) plane: a panel per model "
                             "(rows) and optimizer (columns), the error interpolated between the runs (linear in log lr "
                             "and log wd; one colour scale, chance at the top), runs as dots (red × diverged), the "
                             "bootstrap good range of lr and of wd as a dashed box.")
    ranges = summary.by_size(summary.good_ranges(pm, seed=seed))
    out.update(ranges=_records(ranges), ranges_cols=list(ranges.columns))
    return out


def _beyond(g: pd.DataFrame, ref: str, seed: int) -> str:
    """What the Δ-EDF's crop leaves out, per model: runs beyond DELTA_XMAX, and how many of them diverged."""
    parts = []
    for model, m in sorted(g.groupby("model"), key=lambda kv: size_key(kv[0])):
        e = m["error"].to_numpy(float)
        d = stats.delta(e, summary.reference(e, ref, seed))
        far = d > DELTA_XMAX
        div = int(np.sum(far & (m["diverged"].to_numpy(float) > 0)))
        parts.append(f"{model} {int(far.sum())} of {len(e)}" + (f" ({div} diverged)" if div else ""))
    return f"Axis cropped at {DELTA_XMAX:g} points; beyond it lie: " + ", ".join(parts) + "."


def _gap(pm, df, fig, shown) -> dict:
    """AdamW vs SGD against model size (paper Fig. 3): per model and budget with seed intervals for
    tuned studies, the expected best of k for a random search. The stem study's is Table 3's figure."""
    if len(summary.stem_cells(df)):
        shown["gap"] = "the stems' SGD − AdamW is drawn with Table 3, under Stems"
        return {}
    tuned_gap = tuned.gap_table(df)
    if len(tuned_gap):
        seeds = int(tuned_gap["seeds"].min())
        bars = ("bars: 95% t intervals over seeds, cut to ±100" if seeds >= summary.MIN_SEEDS else
                f"{seeds} seeds per cell: no interval (a t interval on {seeds - 1} degree of freedom is wider than the "
                "scale); the bars are the seeds' range")
        t = _seed_bars(tuned_gap, df)
        cap = ("SGD − AdamW per model against multiply-adds (paper Fig. 3): one line per family and budget, seed means; "
               f"{bars}. Families are set a little apart at each size. Hollow: a cell near chance (mean error above half "
               "of it), left out of the gap tests.")
        rows = []
        for (model, flops), g in summary.by_size(t).groupby(["model", "gflops"], sort=False):
            row = {"model": model, "multiply-adds": flops_text(flops), "seeds": int(g["seeds"].min())}
            for r in g.sort_values("epochs").to_dict("records"):
                v = (level(r["gap"], r["lo_iv"], r["hi_iv"], sign="+") if np.isfinite(r["lo_iv"]) else
                     f"{r['gap']:+.1f} (seeds {r['min']:+.1f} to {r['max']:+.1f})")
                row[f"SGD − AdamW at {r['epochs']} epochs"] = v + (", near chance" if r["near chance"] else "")
            rows.append(row)
        cols = list(dict.fromkeys(k for r in rows for k in r))
        return dict(gap_fig=fig("gap_figure", t, caption=cap), gap=rows, gap_cols=cols)
    gap = summary.optimizer_gap(pm)
    if gap.empty:
        shown["gap"] = "needs AdamW and SGD results for the same model"
        return {}
    cap = (f"SGD − AdamW per model against multiply-adds (paper Fig. 3): the expected best of {stats.BEST_OF} runs under "
           "each optimizer; bars: 95% jackknife intervals over the paired points.")
    show = gap.rename(columns={"gap": f"SGD − AdamW (expected best of {stats.BEST_OF})", "lo": "95% lo", "hi": "95% hi"})
    return dict(gap_fig=fig("gap_figure", gap, caption=cap), gap=_records(summary.by_size(show.drop(columns=["family"]))),
                gap_cols=[c for c in show.columns if c != "family"])


def _seed_bars(table: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3's rows with bars a reader can trust: the t interval cut to ±100 from MIN_SEEDS seeds on,
    else the seeds' range (min, max), in ``lo``/``hi``; the interval itself in ``lo_iv``/``hi_iv``."""
    c = summary.tuned_cells(df)
    g = tuned.gaps(c[c["stem"].eq("")])
    spread = g.groupby(["model", "epochs"])["gap"].agg(["min", "max"]).reset_index()
    t = table.merge(spread, on=["model", "epochs"], how="left")
    few = t["seeds"] < summary.MIN_SEEDS
    t["lo_iv"] = np.where(few, np.nan, t["lo"].clip(lower=-100))
    t["hi_iv"] = np.where(few, np.nan, t["hi"].clip(upper=100))
    return t.assign(lo=np.where(few, t["min"], t["lo_iv"]), hi=np.where(few, t["max"], t["hi_iv"]))


def _schedule(pm, df, fig, shown) -> dict:
    """Training length (paper Fig. 2), or why this study cannot draw it."""
    conv = summary.convergence_cells(df)
    if len(conv):
        seeds = int(conv["seeds"].min())
        bars = ("bars: 95% t intervals over seeds" if seeds >= summary.MIN_SEEDS else
                f"{seeds} seeds: no interval; the bars are the seeds' range")
        conv = _conv_bars(conv, df)
        cap = ("Error minus the same model's error at its longest budget, at the shorter budgets (paper Fig. 2): a row "
               f"per optimizer, a panel per size; seed means, {bars}. The longest budget is 0 by construction and not "
               "drawn: its error is in the legend. One y axis for every panel.")
        return dict(schedule_fig=fig("convergence_figure", conv, caption=cap))
    old = summary.convergence(pm)
    if len(old):
        return dict(schedule_fig=fig("schedule_figure", old, caption="Best error at each schedule minus the longest "
                                     "schedule's best error (paper Fig. 2)."))
    shown["schedule"] = "this study trains each model at one length (paper Fig. 2 compares several)"
    return {}


def _conv_bars(conv: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 2's rows with the seeds' range as bars where the cell has no interval."""
    c = summary.tuned_cells(df)
    c = c[c["stem"].eq("")]
    longest = c.groupby(["model", "optimizer"])["epochs"].transform("max")
    ref = c[c["epochs"].eq(longest)][["model", "optimizer", "seed", "error"]]
    d = c[c["epochs"] < longest].merge(ref, on=["model", "optimizer", "seed"], suffixes=("", "_l"))
    d = d.assign(delta=d["error"] - d["error_l"]).groupby(["model", "optimizer", "epochs"])["delta"].agg(["min", "max"])
    t = conv.merge(d.reset_index(), on=["model", "optimizer", "epochs"], how="left")
    few = t["seeds"] < summary.MIN_SEEDS
    return t.assign(lo=np.where(few, t["min"], t["lo"]), hi=np.where(few, t["max"], t["hi"]))


def _stems(df, fig, shown) -> dict:
    """Table 3: one row per stem (C, S1..S4, P), AdamW, SGD and SGD − AdamW side by side as seed means
    with seed intervals, beside the paper's 4GF errors (ImageNet, 50 epochs: a different scale)."""
    t = summary.stem_cells(df)
    if t.empty:
        shown["stems"] = "no Table 3 stems in this study (the stem study trains them)"
        return {}
    rows = []
    for model, g in sorted(t.groupby("model"), key=lambda kv: figures.STEMS.index(kv[1]["stem"].iloc[0])):
        row = {"stem": g["stem"].iloc[0], "model": model, "seeds": int(g["seeds"].min())}
        for opt, label in (("adamw", "AdamW error (%)"), ("sgd", "SGD error (%)"), ("sgd − adamw", "SGD − AdamW")):
            r = g[g["optimizer"].eq(opt)]
            row[label] = level(r["error"].iloc[0], r["lo"].iloc[0], r["hi"].iloc[0], int(r["seeds"].iloc[0]),
                               sign="+" if opt == "sgd − adamw" else "") if len(r) else "–"
        pub = paper.TABLE3.get(model.replace("mf", "gf").replace("_mini", "_4gf"))
        row["paper AdamW / SGD (4GF, ImageNet)"] = f"{pub[0]} / {pub[1]}" if pub else "–"
        rows.append(row)
    by_stem = dict(zip(["C", "S1", "S2", "S3", "S4", "P"], ["vitc_4gf", *(f"vitc_4gf_s{k}" for k in range(1, 5)), "vitp_4gf"]))
    paper_gap = {s: paper.TABLE3[m][1] - paper.TABLE3[m][0] for s, m in by_stem.items()}
    cap = ("Table 3 as a figure: left, each stem's error with AdamW (light, solid) and SGD (dark, dashed); right, SGD − "
           "AdamW per stem, the paper's (ImageNet, 4GF, 50 epochs: another scale, for the order) as hollow diamonds. "
           "Seed means; bars: 95% t intervals over seeds, cut to what the quantity can be.")
    return dict(stems=rows, stems_cols=list(rows[0]), stem_fig=fig("stem_figure", t, paper_gap, caption=cap))


def _confirm(df) -> dict | None:
    """The confirm step beside the search's best errors: the winner's curse, measured."""
    t = summary.confirm_table(df)
    if t.empty:
        return None
    rows = [{"model": r["model"], "optimizer": r["optimizer"], "point": r["point"],
             "search rank": f"{r['rank']} of {r['points']}", "search error (%)": f"{r['search']:.1f}",
             "rerun with new seeds (%)": level(r["rerun"], r["lo"], r["hi"], r["seeds"]),
             "change (points)": f"{r['change']:+.1f}"} for r in t.to_dict("records")]
    return dict(rows=rows, cols=list(rows[0]), mean_search=float(t["search"].mean()), mean_rerun=float(t["rerun"].mean()),
                n=len(t), seeds=int(t["seeds"].max()))


def _curves(df, extras, fig, shown) -> dict:
    """Learning curves of chosen trials from their per-epoch records: per model and optimizer, the
    search's best run (solid) and its median run (dashed)."""
    if extras is None or extras.empty or extras["curve"].dropna().map(len).max() < 2:
        shown["curves"] = "the trials' per-epoch records are in their storage, not in an exported table"
        return {}
    from .load import EXTRA_KEYS

    r = summary.results(df)
    r = r[r["seed"].fillna(0) < summary.CONFIRM_SEED0].merge(extras, on=EXTRA_KEYS, how="inner")
    r = r[r["curve"].map(lambda c: isinstance(c, list) and len(c) >= 2)]
    chosen = []
    for (model, opt), g in sorted(r.groupby(["model", "optimizer"]), key=lambda kv: size_key(kv[0][0])):
        g = g.sort_values("error", kind="stable")
        picks = [("best", g.iloc[0], "-")] + ([("median", g.iloc[(len(g) - 1) // 2], "--")] if len(g) > 2 else [])
        for what, row, ls in picks:
            c = [e for e in row["curve"] if e.get("error") is not None]
            chosen.append(dict(model=model, optimizer=opt, ls=ls, epoch=[e["epoch"] for e in c], error=[e["error"] for e in c],
                               label=f"{model} {what} (lr {row['lr']:.2g}, wd {row['wd']:.2g})"))
    if not chosen:
        shown["curves"] = "no trial has a per-epoch record of two or more epochs"
        return {}
    chance = float(r["chance"].max())
    return dict(curves_fig=fig("curves_figure", chosen, chance, caption="Validation error per epoch (the EMA model's) of "
                               "each model's best run (solid) and its median run (dashed), from the trials' per-epoch "
                               "records; dotted: chance."))


def _paper(df) -> dict:
    cmp = summary.paper_comparison(df)
    sub = df[df["budget"].eq("paper")]
    tuned_rows = []
    if len(summary.results(sub)):
        gr = summary.good_ranges(sub)
        for r in gr[gr["hp"].isin(["lr", "wd"])].itertuples():
            t = paper.tuned(r.model, r.optimizer)
            if t:
                tuned_rows.append({"model": r.model, "optimizer": r.optimizer, "hp": r.hp, "paper tuned": t[r.hp == "wd"],
                                   "measured lo": r.lo, "measured median": r.median, "measured hi": r.hi})  # fmt: skip
    context = paper_context()
    ranges = [{"family": FAMILIES.get(f, f), "optimizer": o, "lr lo": r["lr"][0], "lr hi": r["lr"][1], "wd lo": r["wd"][0],
               "wd hi": r["wd"][1]} for (f, o), r in paper.RANGES.items()]  # fmt: skip
    return dict(paper=_records(cmp), paper_cols=list(cmp.columns), tuned=tuned_rows,
                tuned_cols=["model", "optimizer", "hp", "paper tuned", "measured lo", "measured median", "measured hi"],
                paper_context=_records(context), paper_context_cols=list(context.columns), ranges_paper=ranges)  # fmt: skip


def paper_context() -> pd.DataFrame:
    """The paper's numbers for each of its claims: Fig. 2 as Table 2's errors minus the 400-epoch error,
    Fig. 3 as Table 3's 4GF SGD − AdamW gaps, Table 3's stems, Sec. 6's within-4 fractions."""
    rows = []
    for m, errs in paper.TABLE2.items():
        for ep, e in zip(paper.TABLE2_EPOCHS, errs):
            rows.append(dict(figure="Fig. 2 / Table 2", model=m, what=f"error at {ep} − at 400 epochs", value=e - errs[-1]))
    for m, (a, s) in paper.TABLE3.items():
        rows.append(dict(figure="Fig. 3 / Table 3", model=m, what="SGD − AdamW at 50 epochs", value=s - a))
        rows.append(dict(figure="Table 3", model=m, what="AdamW / SGD error at 50 epochs", value=f"{a} / {s}"))
    rows.append(dict(figure="Fig. 3", model="regnety_*", what="SGD − AdamW", value="about 0.1–0.2"))
    for (m, o), (v, text) in paper.WITHIN4.items():
        rows.append(dict(figure="Fig. 5 / Sec. 6", model=m, what=f"{o} runs within 4 points of best", value=text))
    return pd.DataFrame(rows)


def _trials(df: pd.DataFrame) -> dict:
    """The trial table (its lowest-error TRIAL_ROWS rows) and every trial as an embedded CSV download."""
    shown = df.sort_values(["error", "trial_number"], na_position="last").head(TRIAL_ROWS)
    cap = (f"All {len(df)} finished trials" if len(df) <= TRIAL_ROWS else
           f"Showing the {TRIAL_ROWS} lowest-error of {len(df)} finished trials (all of them are in the download)")
    cap += ". Click a header to sort; type in the box to filter."
    raw = df.to_csv(index=False).encode()
    big = len(raw) > CSV_GZIP
    data = gzip.compress(raw, mtime=0) if big else raw
    return dict(trials=_records(shown[TRIAL_COLS]), trials_cols=TRIAL_COLS, trials_caption=cap,
                trials_csv=base64.b64encode(data).decode("ascii"), trials_kb=len(data) // 1024,
                trials_file="trials.csv.gz" if big else "trials.csv",
                trials_type="application/gzip" if big else "text/csv;charset=utf-8")


def write(html: str, out: str | Path) -> Path:
    """Write the report, creating parent directories."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
