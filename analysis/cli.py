"""``bench verdict``, ``bench plot`` and ``bench report``, registered on ``bench``'s parser."""

from __future__ import annotations

import argparse
from pathlib import Path

PLOTS = ("edf", "scatter", "gap", "schedule", "budget")
FORMATS = (".png", ".svg", ".pdf")


def _source_args(p: argparse.ArgumentParser, many: bool) -> None:
    p.add_argument("--study", nargs="+" if many else None, help="study name(s) under --results")
    p.add_argument("--results", default="results", help="results root holding <study>/optuna.journal (default: results)")
    p.add_argument("--storage", help="optuna storage URL or journal file (instead of --results)")
    p.add_argument("--table", help="exported csv/parquet trial table (instead of a storage)")


def register(subparsers) -> None:
    """Add ``plot`` and ``report`` to ``subparsers`` (from ``parser.add_subparsers``)."""
    p = subparsers.add_parser("plot", help="plot one figure from study results")
    p.add_argument("kind", choices=PLOTS, help="edf | scatter | gap | schedule | budget (expected best after n)")
    _source_args(p, many=False)
    p.add_argument("--models", nargs="+", help="only these models")
    p.add_argument("--optimizer", nargs="+", help="only these optimizers")
    p.add_argument("--delta", action="store_true", help="edf: plot error minus the best (Δ-EDF)")
    p.add_argument("--scaled", action="store_true", help="edf: Δ scaled by the headroom (e-best)/(chance-best)")
    p.add_argument("--ref", choices=("min", "bootstrap"), default="min", help="reference best for Δ (default: min)")
    p.add_argument("--out", help="output file .png/.svg/.pdf (default: results/<study>/<kind>.png)")
    p.set_defaults(func=run_plot)
    v = subparsers.add_parser("verdict", help="print the Findings: the paper's claims, tested (text or JSON)",
                              description=run_verdict.__doc__)
    _source_args(v, many=True)
    v.add_argument("--json", action="store_true", help="print one JSON object (groups, claims) instead of text")
    v.add_argument("--alpha", type=float, default=None, help="level of each one-sided test (default: 0.05, or the "
                                                              "study's design.json when it was grown)")
    v.add_argument("--no-power", action="store_true", help="skip the power and points-needed of inconclusive claims")
    v.add_argument("--readme", metavar="README.md", help="rewrite the <!-- verdict NAME --> blocks of a reference "
                                                          "README from NAME.csv beside it (no NAME: trials.csv)")
    v.add_argument("--check", action="store_true", help="with --readme: exit 1 if a block is stale, write nothing")
    v.set_defaults(func=run_verdict)
    r = subparsers.add_parser("report", help="write the self-contained HTML report")
    _source_args(r, many=True)
    r.add_argument("--ref", choices=("min", "bootstrap"), default="min",
                   help="reference best for Δ: min (the paper's: the lowest error of the group; default) or bootstrap")
    r.add_argument("--reference", metavar="NAME_OR_PATH",
                   help="lay a committed reference study's trials beside yours, with paired tests against each of "
                        "its models (e.g. lr_wd_local; or a reference folder or trial table); refused, with the "
                        "reason, when the draws, epochs or data differ")
    r.add_argument("--out", help="HTML file (default: results/report.html or results/<study>/report.html)")
    r.set_defaults(func=run_report)


def _load(args):
    from .load import load_trials_with_attrs

    source = args.table or args.storage or args.results
    return (*load_trials_with_attrs(source, args.study), source)


def _select(df, args):
    from .load import AnalysisError

    for col, wanted in (("model", getattr(args, "models", None)), ("optimizer", getattr(args, "optimizer", None))):
        if wanted:
            valid = sorted(df[col].dropna().unique())
            bad = [w for w in wanted if w not in valid]
            if bad:
                raise AnalysisError(f"unknown {col} {', '.join(bad)}; valid: {', '.join(valid) or '(none)'}")
            df = df[df[col].isin(wanted)]
    return df


def _default_out(args, name: str) -> Path:
    """Where a figure or report goes: the study's folder (layout.StudyDir) for one study's storage, else --results."""
    from bench.core.layout import StudyDir

    study = args.study if isinstance(args.study, str) else (args.study[0] if args.study and len(args.study) == 1 else None)
    if study and not (args.table or args.storage):
        where = StudyDir(args.results, study)
        return where.report if name == "report" else where.figure(name)
    return Path(args.results) / ("report.html" if name == "report" else f"{name}.png")


def _plot_figure(df, args):
    from . import figures, summary
    from .load import AnalysisError

    res = summary.results(df)
    if res.empty:
        raise AnalysisError("no finished results to plot (empty study or all trials failed)")
    if args.kind == "edf":
        mode = "scaled" if args.scaled else "delta" if args.delta else "plain"
        xl = {"plain": "error (%)", "delta": "error − best (points)", "scaled": "(error − best) / (chance − best)"}[mode]
        title = "" if mode == "plain" else f"reference: {summary.reference_label(df, args.ref)}"
        if mode != "plain" and res["diverged"].astype(bool).all():
            raise AnalysisError(f"every run diverged: its error is chance, so an EDF of error − best ({mode}) "
                                "is empty; plot the plain EDF (no --delta/--scaled) or train at lower learning rates")
        return figures.edf_figure(summary.edf_curves(df, mode=mode, ref=args.ref), xl, title, 20.0 if mode == "delta" else None)
    if args.kind == "scatter":
        return figures.scatter_figure(summary.scatter_panels(df), float(res["chance"].max()))
    if args.kind == "gap":
        gap = summary.optimizer_gap(df)
        if gap.empty:
            raise AnalysisError("gap needs AdamW and SGD results for the same model")
        return figures.gap_figure(gap)
    if args.kind == "schedule":
        conv = summary.convergence(df)
        if conv.empty:
            raise AnalysisError("schedule needs runs of the same model at several epoch counts")
        return figures.schedule_figure(conv)
    return figures.budget_figure(summary.budget_curves(df))


def run_plot(args) -> int:
    """``bench plot``: write one figure; returns an exit code."""
    import matplotlib

    matplotlib.use("Agg")
    from .load import AnalysisError

    out = Path(args.out) if args.out else _default_out(args, args.kind)
    if out.suffix.lower() not in FORMATS:
        raise AnalysisError(f"unsupported figure format {out.suffix or '(none)'}; use {', '.join(FORMATS)}")
    df, _, _ = _load(args)
    fig = _plot_figure(_select(df, args), args)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120, metadata={"Software": None} if out.suffix.lower() == ".png" else None)
    except OSError as exc:
        raise AnalysisError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(out)
    return 0


def run_report(args) -> int:
    """``bench report``: write the HTML report; returns an exit code."""
    import matplotlib

    matplotlib.use("Agg")
    from bench.core import layout
    from bench.core.identity import parse_study_name
    from bench.core.layout import StudyDir

    from . import report
    from .load import AnalysisError, load

    source = args.table or args.storage or args.results
    got = load(source, args.study)
    df, attrs = got.trials, got.attrs
    against, design = None, _design(args)
    if args.reference:
        from . import reference, verdict

        table = reference.locate(args.reference)
        design = verdict.table_design(table)  # the Findings are the reference's claims, tested as it was
        df, ref_models, notes = reference.overlay(df, reference.load(table), str(args.reference))
        here, full = Path.cwd().resolve(), table.resolve()
        shown = full.relative_to(here) if full.is_relative_to(here) else table  # no machine's path in the report
        against = dict(name=str(args.reference), table=str(shown), models=ref_models, notes=notes)
    out = Path(args.out) if args.out else _default_out(args, "report")
    named = {a.get("study", parse_study_name(k)["study"]) for k, a in attrs.items()} | set(args.study or [])
    studies = sorted(set(df["study"].dropna().astype(str)) | named)
    if args.table:  # a committed reference keeps its study file beside its table
        kept = {s: Path(args.table).parent / "study.toml" for s in studies}
    else:
        kept = {s: StudyDir(args.results, s).study_file for s in studies}
    defs = report.study_definitions(studies, kept, attrs)
    grown = Path(args.table).parent / layout.DESIGN if args.table else None
    if grown and grown.is_file():  # a grown study's looks
        defs.append(("design", {"origin": f"{grown} (the looks it was grown with)", "text": grown.read_text()}))
    html = report.build(df, source=str(source), studies=studies, definitions=defs, ref=args.ref, reference=against,
                        design=design, extras=got.extras)
    try:
        report.write(html, out)
    except OSError as exc:
        raise AnalysisError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(out)
    return 0


def run_verdict(args) -> int:
    """``bench verdict``: the Findings of a study or table (the report's first section), as text or
    JSON, or the verdict blocks of a reference README."""
    from . import verdict
    from .load import AnalysisError

    if args.readme:
        path = Path(args.readme)
        try:
            text = path.read_text()
        except OSError as exc:
            raise AnalysisError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not verdict.BLOCK.search(text):
            raise AnalysisError(f"{path}: no <!-- verdict --> ... <!-- /verdict --> block")
        new = verdict.readme(text, path.parent)
        if args.check:
            print(f"{path}: {'up to date' if new == text else 'stale'}")
            return 0 if new == text else 1
        path.write_text(new)
        print(path)
        return 0
    df, _, source = _load(args)
    design = _design(args)
    f = verdict.findings(df, design=design, power=not args.no_power)
    print(verdict.dumps(f) if args.json else verdict.text(f))
    return 0


def _design(args):
    """The test design: the study's grown design (design.json), else --alpha at one look."""
    from bench.core.layout import StudyDir

    from . import claims, verdict

    found = None
    if args.table:
        found = verdict.table_design(args.table)
    elif args.study and not args.storage and len(args.study) == 1:
        found = claims.Design.read(StudyDir(args.results, args.study[0]).design)
    alpha = getattr(args, "alpha", None)  # bench report has no --alpha
    if found and alpha is None:
        return found
    return claims.Design(alpha=alpha if alpha is not None else claims.ALPHA)
