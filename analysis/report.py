"""Build the single self-contained HTML report (jinja2 template, figures as inline PNG)."""

from __future__ import annotations

import base64
import datetime as _dt
import io
import math
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from bench.core import paper
from bench.core.identity import parse_study_name

from . import figures, reference as reference_study, stats, summary, tuned, verdict

TRIAL_ROWS = 2000
TUNED_ONLY = ("Not drawn: this study trains one tuned (lr, wd) per model and optimizer, and error distributions, "
              "their tests, good ranges, the expected best after n and importance need sampled points (the lr_wd "
              "study). Its figures are the gap, the training length and the stems below.")
DELTA_XMAX = 20.0
TRIAL_COLS = ["trial_number", "study", "model", "optimizer", "budget", "epochs", "seed", "point",
              "lr", "wd", "error", "raw_error", "diverged", "state", "seconds", "host"]  # fmt: skip
PACKAGES = ("numpy", "pandas", "scipy", "matplotlib", "seaborn", "optuna", "jinja2", "scikit-learn", "torch", "timm")
SECTIONS = [("findings", "Findings"), ("summary", "Summary"), ("edf", "EDFs and tests"), ("scatter", "Error vs hyperparameters"),
            ("gap", "AdamW vs SGD"), ("schedule", "Training length"), ("stems", "Stems"), ("budget", "Expected best after n"),
            ("importance", "Importance"), ("paper", "Paper reference"), ("trials", "Trials"),
            ("studies", "Study definitions"), ("environment", "Environment")]  # fmt: skip


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


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def environment() -> list[dict]:
    """Python, platform and package versions of the analysis, as table rows (the trials' hosts are
    in the trial table)."""
    rows = [{"item": "python", "value": sys.version.split()[0]}, {"item": "platform", "value": platform.platform()}]
    for p in PACKAGES:
        try:
            rows.append({"item": p, "value": metadata.version(p)})
        except metadata.PackageNotFoundError:
            rows.append({"item": p, "value": "not installed"})
    return rows


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


def _per_optimizer(res: pd.DataFrame, fn):
    return [fn(opt, g) for opt, g in res.groupby("optimizer", sort=True)]


def build(df: pd.DataFrame, *, title: str = "Hyperparameter robustness report", source: str = "",
          studies=None, definitions=(), ref: str = "min", seed: int = 0, importance_max: int = 64,
          reference: dict | None = None, design=None) -> str:  # fmt: skip
    """Render the report HTML for the tidy trial table ``df`` (``studies``: names to list,
    default those in ``df``; ``definitions``: (name, {origin, text}) pairs; ``reference``:
    {name, table, models, notes} when ``df`` holds a reference study's trials beside the user's)."""
    res = summary.results(df)
    studies = sorted(df["study"].dropna().astype(str).unique()) if studies is None else studies
    sections = SECTIONS[:1] + [("reference", "Against the reference")] + SECTIONS[1:] if reference else SECTIONS
    ctx = dict(title=title, source=source, studies=studies, sections=sections, definitions=list(definitions),
               n_trials=len(df), n_complete=len(res), n_diverged=int(res["diverged"].sum()),
               n_failed=int(df["state"].eq("FAIL").sum()), notes=_notes(df, res), importance_max=importance_max,
               generated=_dt.datetime.now().isoformat(timespec="seconds"))  # fmt: skip
    ctx["ranges_paper"] = [{"family": f, "optimizer": o, "lr lo": r["lr"][0], "lr hi": r["lr"][1],
                            "wd lo": r["wd"][0], "wd hi": r["wd"][1]} for (f, o), r in paper.RANGES.items()]  # fmt: skip
    ctx.update(_findings(df, seed, design), against=_against(df, reference, seed) if reference else None)
    if len(res):
        ctx.update(_analysis(df, ref, seed, importance_max))
    else:
        ctx.update(_empty())
    ctx.update(_trials(df), environment=environment())
    if reference:
        ctx["trials_caption"] += (f" The trials of {', '.join(reference['models'])} are the reference study's "
                                  f"({reference['name']}), not retrained.")
    env = Environment(loader=PackageLoader("analysis", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["fmt"] = _fmt
    return env.get_template("report.html").render(**ctx)


def _findings(df: pd.DataFrame, seed: int, design=None) -> dict:
    """The verdict on the paper's claims, first in the report (analysis.verdict)."""
    f = verdict.findings(df, design=design, seed=seed)
    claims = verdict.claims_frame(f).drop(columns=["statement"])
    within = f["cells"].rename(columns={"error": "error (seed mean)", "lo": "95% lo", "hi": "95% hi"}) if len(
        f["cells"]) else f["groups"]
    return dict(findings=f["lines"], findings_noise=bool(f["noise"]), findings_rule=f["design"].describe(),
                findings_tuned=bool(len(f["cells"])), findings_within=_records(within), findings_within_cols=_cols(within),
                findings_claims=_records(claims), findings_claims_cols=["claim", "pair", "optimizer", "verdict", "p",
                                                                        "p_other", "p_adjusted", "without", "power",
                                                                        "n_needed", "evidence"])


def _against(df: pd.DataFrame, reference: dict, seed: int) -> dict:
    """Each of the user's models against each reference model, paired by draw (analysis.reference)."""
    mine = sorted(set(df["model"]) - set(reference["models"]))
    table = reference_study.compare(df, mine, reference["models"], seed=seed)
    return dict(reference, mine=mine, lines=reference_study.lines(table), rows=_records(table),
                cols=reference_study.COMPARE_COLS)


def _empty() -> dict:
    none = {"note": "No data."}
    return dict(summary=[], summary_cols=[], edf_rows=[[none]], tests=[], tests_cols=[], scatter_figs=[none],
                stems=[], stems_cols=[], stems_note="No data.",
                ranges=[], ranges_cols=[], gap_fig=none, gap=[], gap_cols=[], schedule_fig=none, budget_fig=none,
                importance=[], importance_cols=[], importance_note="No data.", paper=[], ref_label="")  # fmt: skip


def _cols(t: pd.DataFrame) -> list[str]:
    return list(t.columns)


def _analysis(df, ref, seed, importance_max) -> dict:
    """Statistics, figures (inline PNGs) and fANOVA importance; one colour per model throughout."""
    colors = figures.model_colors(df["model"].dropna().unique())

    def fig(name, *args, caption):
        return {"png": _png(getattr(figures, name)(*args, colors=colors)), "caption": caption}

    pm = summary.point_means(df)  # seed replicates averaged once, reused below
    rob = summary.robustness(df, ref=ref, seed=seed)
    ctx = dict(summary=_records(rob), summary_cols=_cols(rob), ref_label=summary.reference_label(df, ref))

    if pm.groupby(["model", "optimizer"])["point"].nunique().max() <= 1:  # tuned points only (optimizer, stem)
        note = {"note": TUNED_ONLY}
        ctx.update(edf_rows=[[note]], tests=[], tests_cols=[], scatter_figs=[note], ranges=[], ranges_cols=[],
                   budget_fig=note, importance=[], importance_cols=[], importance_note=TUNED_ONLY)
        ctx.update(**_gap(pm, df, fig), **_schedule(pm, df, fig), **_stems(df), **_paper(df))
        return ctx

    def edfs(opt, g):
        out, label = [], summary.reference_label(df[df["optimizer"].eq(opt)], ref)
        for mode, xl, what in (("plain", "error (%)", "error"), ("delta", "error − ref (points)", "Δ to best"),
                               ("scaled", "(error − ref) / (chance − ref)", "Δ scaled by headroom")):  # fmt: skip
            curves = summary.edf_curves(g, mode=mode, ref=ref, band=mode != "scaled", seed=seed)
            cap = f"{opt}: EDF of {what}" + ("." if mode == "scaled" else "; 95% bootstrap bands (1000 resamples).")
            cap += "" if mode == "plain" else f" Reference: {label}."
            xmax = DELTA_XMAX if mode == "delta" else None
            if xmax:
                cap += " " + _beyond(g, ref, seed)
            out.append(fig("edf_figure", curves, xl, f"{opt}: {what}", xmax, caption=cap))
        return out

    ctx["edf_rows"] = _per_optimizer(pm, edfs)  # one row per optimizer: error, Δ, scaled Δ
    tests = summary.ks_table(pm, seed=seed)
    ctx.update(tests=_records(tests), tests_cols=_cols(tests))
    ranges = summary.good_ranges(pm, seed=seed)
    ctx.update(ranges=_records(ranges), ranges_cols=_cols(ranges))

    def scatter(opt, g):
        cap = f"{opt}: per-point error (seed replicates averaged) vs hyperparameters."
        panels = summary.scatter_panels(g, seed=seed)
        return fig("scatter_figure", panels, float(g["chance"].max()), caption=cap)

    searched = pm[["lr", "wd"]].notna().all(axis=1).any()
    ctx["scatter_figs"] = _per_optimizer(pm, scatter) if searched else [
        {"note": "Not drawn: the trials carry no lr and wd (a table without those columns)."}]
    if not searched:
        ctx.update(ranges=[], ranges_cols=[])
    ctx.update(**_gap(pm, df, fig), **_schedule(pm, df, fig), **_stems(df))

    curves = summary.budget_curves(pm)
    ctx["budget_fig"] = fig("budget_figure", curves, caption="Expected best error after n random trials "
                             "(drawn without replacement from the study's) ±1 std, from per-point errors; "
                             "solid AdamW, dashed SGD.")  # fmt: skip

    ctx.update(_paper(df))
    try:
        imp = summary.importance(pm, max_trials=importance_max, seed=seed)
        ctx.update(importance=_records(imp), importance_cols=_cols(imp), importance_note="")
        if imp.empty:
            ctx["importance_note"] = "Not enough distinct (lr, wd) runs with varying error for fANOVA."
    except ImportError:
        ctx["importance_note"] = "fANOVA needs scikit-learn, which is not installed."
    return ctx


def _beyond(g: pd.DataFrame, ref: str, seed: int) -> str:
    """What the Δ-EDF's crop leaves out, per model: runs beyond DELTA_XMAX, and how many of them diverged."""
    parts = []
    for model, m in g.groupby("model", sort=True):
        e = m["error"].to_numpy(float)
        d = stats.delta(e, summary.reference(e, ref, seed))
        far = d > DELTA_XMAX
        div = int(np.sum(far & (m["diverged"].to_numpy(float) > 0)))
        parts.append(f"{model} {int(far.sum())} of {len(e)}" + (f" ({div} diverged)" if div else ""))
    return f"Axis cropped at {DELTA_XMAX:g} points; beyond it lie: " + ", ".join(parts) + "."


def _gap(pm, df, fig) -> dict:
    """AdamW vs SGD: per model (a random search: the expected best of k) and, for tuned studies, per
    model and budget with seed intervals (paper Fig. 3)."""
    tuned_gap = tuned.gap_table(df)
    if len(tuned_gap):
        cap = ("SGD − AdamW per model vs multiply-adds (paper Fig. 3): one line per family and budget, seed means "
               "with 95% t intervals over seeds (cut at the panel's edge: the axis fits the means; families are set a little "
               "apart at each size to be read). Hollow: a cell near chance (mean error above half of it), left out of "
               "the gap tests.")
        show = tuned_gap.rename(columns={"gap": "sgd − adamw", "lo": "95% lo", "hi": "95% hi"})
        return dict(gap_fig=fig("gap_figure", tuned_gap, caption=cap), gap=_records(show.drop(columns=["fam"])),
                    gap_cols=[c for c in show.columns if c != "fam"])
    gap = summary.optimizer_gap(pm)
    if gap.empty:
        return dict(gap_fig={"note": "Needs both AdamW and SGD results for the same model."}, gap=[], gap_cols=[])
    cap = (f"SGD − AdamW per model vs multiply-adds (paper Fig. 3): the expected best of {stats.BEST_OF} runs under "
           "each optimizer; bars: 95% jackknife intervals over the paired points.")
    show = gap.rename(columns={"gap": f"sgd − adamw (E best of {stats.BEST_OF})", "lo": "95% lo", "hi": "95% hi"})
    return dict(gap_fig=fig("gap_figure", gap, caption=cap), gap=_records(show), gap_cols=_cols(show))


def _schedule(pm, df, fig) -> dict:
    """Training length (paper Fig. 2), or why this study cannot draw it."""
    conv = tuned.convergence_table(df)
    if len(conv):
        cap = ("Error minus the same model's longest-budget error against epochs (paper Fig. 2): a panel per size, "
               "each model at its better optimizer; seed means with 95% t intervals over seeds (cut at the panel's edge: "
               "the axis fits the means).")
        return dict(schedule_fig=fig("convergence_figure", conv, caption=cap))
    old = summary.convergence(pm)
    if len(old):
        return dict(schedule_fig=fig("schedule_figure", old, caption="Best error at each schedule minus the longest "
                                     "schedule's best error (paper Fig. 2)."))
    n = df["epochs"].nunique()
    return dict(schedule_fig={"note": f"Not drawn: paper Fig. 2 compares training lengths, and this study trains "
                                      f"{'one length' if n <= 1 else 'no model at several lengths'} "
                                      f"({', '.join(str(e) for e in sorted(df['epochs'].dropna().unique()))} epochs). "
                                      "The optimizer study trains every model at three."})


def _stems(df) -> dict:
    """Table 3: one row per stem (C, S1..S4, P), AdamW and SGD side by side as seed means with 95% t
    intervals, beside the paper's 4GF errors (ImageNet, 50 epochs: a different scale)."""
    t = tuned.stem_table(df)
    if t.empty:
        return dict(stems=[], stems_cols=[], stems_note="Not drawn: no Table 3 stems in this study (the stem study "
                                                        "trains them).")
    rows = []
    for model, g in t.groupby("model", sort=False):
        m = re.search(r"_(s\d)$", model)
        row = {"stem": m.group(1).upper() if m else ("P" if model.startswith("vitp") else "C"), "model": model,
               "seeds": int(g["seeds"].min())}
        for opt in ("adamw", "sgd"):
            r = g[g["optimizer"].eq(opt)]
            row[f"{opt} error"] = (f"{r['error'].iloc[0]:.1f}" + (f" [{r['lo'].iloc[0]:.1f}, {r['hi'].iloc[0]:.1f}]"
                                   if np.isfinite(r["lo"].iloc[0]) else "")) if len(r) else "–"
        pub = paper.TABLE3.get(model.replace("mf", "gf"))
        row["paper adamw / sgd (4GF, ImageNet)"] = f"{pub[0]} / {pub[1]}" if pub else "–"
        rows.append(row)
    out = pd.DataFrame(rows)
    return dict(stems=_records(out), stems_cols=_cols(out), stems_note="")


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
    return dict(paper=_records(cmp), paper_cols=_cols(cmp), tuned=tuned_rows,
                tuned_cols=["model", "optimizer", "hp", "paper tuned", "measured lo", "measured median", "measured hi"],
                paper_context=_records(context), paper_context_cols=_cols(context))  # fmt: skip


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
    shown = df.sort_values(["error", "trial_number"], na_position="last").head(TRIAL_ROWS)
    cap = (f"All {len(df)} finished trials" if len(df) <= TRIAL_ROWS else
           f"Showing the {TRIAL_ROWS} lowest-error of {len(df)} finished trials (the full table: "
           "`bench export`, or analysis.load_trials(...).to_csv(...))")  # fmt: skip
    cap += ". Click a header to sort; type in the box to filter."
    return dict(trials=_records(shown[TRIAL_COLS]), trials_cols=TRIAL_COLS, trials_caption=cap)


def write(html: str, out: str | Path) -> Path:
    """Write the report, creating parent directories."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
