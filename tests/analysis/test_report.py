"""Summaries, the HTML report and the ``bench plot`` / ``bench report`` commands, incl. bad input."""

import re

import numpy as np
import pandas as pd
import pytest
from helpers import empty_journal, write_journal

from analysis import answer, figures, report, summary, synthetic

MODELS = ["vitp_4gf", "vitc_4gf", "regnety_4gf"]


@pytest.fixture(scope="module")
def trials():
    return synthetic.trials(n_points=24, models=MODELS, seeds=2)


@pytest.fixture(scope="module")
def html(trials):
    return report.build(trials, title="t", source="src")


def external_urls(html: str) -> list[str]:
    """URLs that would make the browser fetch something (data: URIs removed first)."""
    body = re.sub(r"data:(image/svg\+xml|text/csv;charset=utf-8|application/gzip);base64,[A-Za-z0-9+/=]+", "", html)
    return re.findall(r"(?:https?:|ftp:)?//[\w.-]+|\b(?:src|href)=\"(?!#|data:)[^\"]+\"|@import|url\(", body)


def bench(argv):
    """The `bench` entry point (one error style: a user error is one line on stderr, exit 2)."""
    from bench.cli import main

    return main(argv)


def test_summary_tables(trials):
    rob = summary.robustness(trials, ref="bootstrap")
    assert len(rob) == 6 and (rob["n"] == 48).all() and (rob["points"] == 24).all()
    assert ((rob["best"] <= rob["ref"]) & (rob["ref"] <= rob["median"])).all()
    assert "ref_lo" not in rob  # the robust best is a bootstrap of a minimum: no interval is given
    assert (rob["within_8"] >= rob["within_1"]).all()
    assert summary.has_replicates(trials)
    gap = summary.optimizer_gap(trials)
    vitp = gap[gap["model"].eq("vitp_4gf")].iloc[0]
    assert vitp["gap"] > 3 and vitp["lo"] <= vitp["gap"] <= vitp["hi"]
    assert set(summary.ks_table(trials)["pairs"]) == {24}


def test_convergence_and_budget():
    df = synthetic.trials(n_points=8, models=["vitc_1gf"], epochs=(50, 100, 200))
    conv = summary.convergence(df)
    assert sorted(conv["epochs"]) == [50, 100, 200] and conv.loc[conv["epochs"].eq(200), "delta"].item() == 0
    c = summary.budget_curves(df)[0]
    assert c["mean"][0] == pytest.approx(summary.point_means(df).query("optimizer == 'adamw' and epochs == 50")["error"].mean())


def test_paper_compare(trials):
    cmp = summary.paper_comparison(trials)
    t3 = cmp[cmp["what"].str.startswith("Table 3")]
    assert set(t3["model"]) == {"vitp_4gf", "vitc_4gf"}
    assert t3.loc[t3["model"].eq("vitp_4gf") & t3["optimizer"].eq("sgd"), "paper"].item() == 33.0
    assert summary.paper_comparison(trials.assign(budget="laptop")).empty


def test_report_sections_and_self_contained(html):
    for anchor in ("answer", "findings", "edf", "scatter", "gap", "budget", "importance", "paper", "trials",
                   "environment"):  # fmt: skip
        assert f'<section id="{anchor}"' in html
    assert 'id="schedule"' not in html and "Not in this study: Training length" in html  # one line, not a box
    assert html.count("data:image/svg+xml;base64,") >= 8
    assert external_urls(html) == []
    assert "Table 3 best error" in html and "Reference: lowest error of the group" in html
    assert 'id="trial-table"' in html and "<script>" in html


def test_report_escapes_user_strings(trials):
    df = trials[trials["model"].eq("vitc_4gf") & trials["optimizer"].eq("sgd")]
    df = df.assign(model="<script>alert(1)</script>", study="<b>s</b>")
    html = report.build(df, title="<i>t</i>", source="<x>")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>s</b>" not in html and "<i>t</i>" not in html


def test_report_caps_trial_rows(monkeypatch, trials):
    monkeypatch.setattr(report, "TRIAL_ROWS", 10)
    t = report._trials(trials)
    assert len(t["trials"]) == 10 and t["trials"][0]["error"] == trials["error"].min()
    assert "Showing the 10 lowest-error of 288" in t["trials_caption"]


@pytest.mark.parametrize("case", ["empty", "one_model", "all_diverged", "all_failed"])
def test_report_bad_input(trials, case):
    df = trials[trials["model"].eq("vitc_4gf") & trials["optimizer"].eq("sgd")].copy()
    if case == "empty":
        df = df.iloc[:0]
    elif case == "all_diverged":
        df["diverged"], df["error"] = True, 99.9
    elif case == "all_failed":
        df["state"], df["error"] = "FAIL", np.nan
    html = report.build(df)
    expected = {"empty": "no finished results", "one_model": "Only one model", "all_diverged": "Every trial diverged",
                "all_failed": "All trials failed"}[case]  # fmt: skip
    assert expected in html and external_urls(html) == []


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory, trials):
    root = tmp_path_factory.mktemp("cli")
    df = trials[trials["model"].isin(["vitp_4gf", "vitc_4gf"]) & trials["seed"].eq(0)]
    write_journal(df, root / "results" / "synth" / "optuna.journal", failed=1)
    empty_journal(root / "results" / "empty" / "optuna.journal")
    (root / "studies").mkdir()  # today's study file says something else than the one the trials ran with
    (root / "studies" / "synth.toml").write_text('name = "synth"\nmodels = ["<changed since>"]\n')
    (root / "results" / "synth" / "study.toml").write_text('name = "synth"\nmodels = ["<vitp_4gf>"]\n')
    return root


@pytest.fixture
def results(results_dir, monkeypatch):
    monkeypatch.chdir(results_dir)
    return results_dir


@pytest.mark.parametrize("kind,ext,extra", [("edf", "png", []), ("edf", "svg", ["--delta"]), ("scatter", "pdf", []),
                                            ("gap", "png", []), ("budget", "png", ["--optimizer", "sgd"])])  # fmt: skip
def test_cli_plot(results, kind, ext, extra):
    out = results / f"f.{ext}"
    assert bench(["plot", kind, "--study", "synth", "--out", str(out), *extra]) == 0
    assert out.stat().st_size > 1000


def test_cli_report(results, capsys):
    assert bench(["report"]) == 0
    html = (results / "results" / "report.html").read_text()
    assert "&lt;vitp_4gf&gt;" in html and "synth/study.toml (as the trials ran with it)" in html
    assert "changed since" not in html and external_urls(html) == []
    assert "Study empty, synth" in html and "4 failed" in html
    assert bench(["report", "--study", "empty"]) == 0
    assert "no finished results" in (results / "results" / "empty" / "report.html").read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["plot", "edf", "--study", "nope"], "unknown study nope; valid: empty, synth"),
        (["plot", "edf", "--study", "synth", "--models", "vitx"], "unknown model vitx; valid: vitc_4gf, vitp_4gf"),
        (["plot", "edf", "--study", "synth", "--optimizer", "lion"], "unknown optimizer lion; valid: adamw, sgd"),
        (["plot", "edf", "--study", "synth", "--out", "x.jpg"], "unsupported figure format .jpg"),
        (["plot", "edf", "--study", "empty"], "no finished results"),
        (["plot", "schedule", "--study", "synth"], "several epoch counts"),
        (["plot", "edf", "--table", "missing.csv"], "no table at missing.csv"),
        (["report", "--study", "nope"], "unknown study nope"),
        (["report", "--results", "nowhere"], "nowhere not found"),
        (["report", "--storage", "nosuchdriver://x"], "cannot open storage"),
    ],
)
def test_cli_user_errors(results, capsys, argv, message):
    assert bench(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_table_source(results, trials):
    trials.to_csv(results / "t.csv", index=False)
    assert bench(["plot", "schedule", "--table", "t.csv"]) == 2
    df = pd.concat([trials, trials.assign(epochs=100, error=trials["error"] - 1)])
    df.to_parquet(results / "t.parquet")
    assert bench(["plot", "schedule", "--table", "t.parquet", "--out", "s.png"]) == 0


# ---- the first screen, the data statement, intervals, figures and the sections a study can draw


@pytest.mark.parametrize("spec,name,train,val", [
    ("synthetic", "procedural shapes × textures, not natural images", 10_000, 2_000),
    ("synthetic:2000", "procedural shapes × textures, not natural images", 2_000, 2_000),
    ("cifar10#33b4b9891bd5:50000", "CIFAR-10 (JPEG q75 re-encoding)", 50_000, 10_000),
    ("cifar10:/data/c10-jpeg#33b4b9891bd5", "CIFAR-10 (JPEG q75 re-encoding)", 50_000, 10_000),
    ("cifar10:/data/c10#0123456789ab:10000", "CIFAR-10", 10_000, 2_000),
    ("fashion-mnist:4000", "Fashion-MNIST (28→32 px, grey→3 channels)", 4_000, 800),
    ("imagefolder:/data/imnet", "an image folder at /data/imnet", None, None),
])  # fmt: skip
def test_data_statement_names_the_data(trials, spec, name, train, val):
    from bench.core import dataspec

    d = dataspec.describe(spec)
    assert (d["name"], d["train"], d["val"]) == (name, train, val)
    head = report.header(trials.assign(data=spec), "search", None, ["synth"])
    assert head["data"]["name"] == name and head["data"]["natural"] == (not spec.startswith("synthetic"))
    assert "1000 classes" in head["data"]["detail"]


def test_first_screen_has_a_badge_per_claim(html, trials):
    from analysis import verdict

    f = verdict.findings(trials)
    rows = re.findall(r'<span class="badge (v-[a-z-]+)">([^<]+)</span>', html.split('id="findings"')[0])
    assert [w for _, w in rows] == [c.verdict for c in f["claims"]] and len(rows) >= 8
    assert all(cls == answer.slug(w) != "v-other" for cls, w in rows)
    assert 'id="data"' in html and html.index('id="data"') < html.index('id="answer"')
    for jargon in (">p_other<", ">n_needed<", ">auc_10<", ">within_2_lo<"):
        assert jargon not in html


def test_an_unknown_verdict_word_gets_a_neutral_badge_and_new_fields_their_rows():
    """A Claim of the claims rewrite (an interval, a Holm-adjusted p, new verdict words) renders."""
    from dataclasses import dataclass, field

    from analysis.claims import Claim

    @dataclass
    class NewClaim(Claim):
        interval: tuple = (1.0, 3.0)
        p_holm: float = 0.04
        extra: dict = field(default_factory=dict)

    c = NewClaim("best", "vitp_4gf vs vitc_4gf", "adamw", "a verdict word of tomorrow", 2.0, 0.01, 0.9, "e", 24,
                 "ViTc's best error is lower")
    line = answer.line(c)
    assert line["badge"] == "v-other" and line["verdict"] == "a verdict word of tomorrow"
    assert line["effect"]["text"] == "+2.0 [+1.0, +3.0] points"
    assert ("p holm", "0.04") in line["details"] and line["paper"].startswith("+3.7 points")
    assert answer.slug("mixed") == "v-mixed" and answer.slug("not reproduced") == "v-not-reproduced"
    assert answer.slug("undecidable at this size") == answer.slug("cannot judge convergence: ...") == "v-undecidable"


def test_seed_intervals_stay_within_what_an_error_can_be():
    """Cut to [0, 100] the t interval covers at least as often (simulated near 0 error, 3 seeds); below 3
    seeds there is none."""
    rng = np.random.default_rng(0)
    true, hits = 2.0, 0
    for _ in range(2000):
        v = rng.gamma(0.5, true / 0.5, 3)  # skewed, near 0: the t interval's low end is often negative
        iv = summary.seed_interval(v)
        assert 0 <= iv.lo <= iv.hi <= 100
        hits += iv.lo <= true <= iv.hi
    assert hits / 2000 >= 0.80  # a t interval on skewed data undercovers a little; the cut never lowers it
    assert np.isnan(summary.seed_interval([10.0, 90.0]).lo)
    assert report.level(69.1, np.nan, np.nan, 2) == "69.1 (2 seeds: no interval)"


@pytest.fixture(scope="module")
def tuned_study():
    df = synthetic.trials(n_points=1, models=["vitp_4gf", "vitc_4gf", "regnety_4gf"], seeds=2, epochs=(2, 4, 8),
                          study="optimizer", budget="local")
    return df.assign(error=df["error"] + np.where(df["seed"].eq(0), 30.0, -20.0))  # two far-apart seeds


def test_tuned_report_shows_no_impossible_interval_and_only_what_it_can_draw(tuned_study):
    html = report.build(tuned_study)
    errors = html.split("<h3>Tuned points</h3>")[1].split("<tbody>")[1].split("</tbody>")[0]
    assert errors.count("(2 seeds: no interval)</td>") == 18 and "[" not in errors and not re.search(r"[-−]\d", errors)
    gaps = html.split('<section id="gap">')[1].split("<tbody>")[1].split("</tbody>")[0]
    assert "(seeds " in gaps and not re.search(r"\[-?\d", gaps)  # the seeds' range, not a 1-df t interval
    for gone in ("edf", "scatter", "budget", "importance", "stems"):
        assert f'<section id="{gone}"' not in html
    assert "Not in this study: Error distributions, Error over lr and wd, Expected best after n, Importance" in html
    assert '<section id="schedule"' in html and '<section id="gap"' in html


def test_figures_follow_the_paper_and_keep_one_colour_per_model(tuned_study):
    assert figures.model_color("vitc_4mf") == figures.model_colors(["vitc_1mf", "vitc_4mf"])["vitc_4mf"]
    assert figures.model_color("vitc_4mf") == figures.model_colors(["vitc_4mf", "vitp_4mf", "vitc_4mf_s1"])["vitc_4mf"]
    assert figures.model_color("vitc_mini") == figures.model_color("vitc_4mf")
    assert len({figures.model_color(m) for m in ("vitc_4mf", "vitc_4mf_s1", "vitc_4mf_s2", "vitp_4mf")}) == 4
    table = pd.DataFrame(dict(model=["vitp_1mf", "vitp_4mf", "vitp_18mf"], gflops=[0.00111, 0.00443, 0.0184],
                              gap=[1.0, 2.0, 3.0], lo=np.nan, hi=np.nan))
    ax = figures.gap_figure(table).axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["1 M", "4 M", "18 M"]
    conv = summary.convergence_cells(tuned_study)
    assert set(conv["epochs"]) == {2, 4} and set(conv["optimizer"]) == {"adamw", "sgd"}  # 8: 0 by construction
    fig = figures.convergence_figure(conv.assign(lo=conv["delta"] - 1, hi=conv["delta"] + 1))
    assert len(fig.axes) == 2 and fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])
    stems = synthetic.trials(n_points=1, seeds=3, models=["vitc_4gf", *(f"vitc_4gf_s{i}" for i in range(1, 5)),
                                                          "vitp_4gf"], study="stem")
    cells = summary.stem_cells(stems)
    assert sorted(set(cells["stem"]), key=figures.STEMS.index) == list(figures.STEMS)
    assert list(summary.by_size(pd.DataFrame({"model": ["vitc_18mf", "vitc_1mf", "vitc_4mf"]}))["model"]) == [
        "vitc_1mf", "vitc_4mf", "vitc_18mf"]
    legend = [t for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert legend and all(t.get_fontsize() >= 8.5 for t in legend)


def test_trials_download_and_the_confirm_step(trials):
    import base64
    import io

    confirm = trials[trials["point"].isin([0, 1]) & trials["seed"].eq(0)].assign(
        seed=1000, error=lambda d: d["error"] + 5, trial_number=lambda d: d["trial_number"] + 10_000)
    df = pd.concat([trials, confirm], ignore_index=True)
    html = report.build(df)
    csv = re.search(r'download="trials.csv" href="data:text/csv;charset=utf-8;base64,([^"]+)"', html).group(1)
    back = pd.read_csv(io.StringIO(base64.b64decode(csv).decode()))
    assert len(back) == len(df) and set(back.columns) >= {"data", "resolution", "num_classes"}
    from bench.runner.specs import CONFIRM_SEED0

    assert summary.CONFIRM_SEED0 == CONFIRM_SEED0  # the analysis side reads the runner's confirm seeds
    t = summary.confirm_table(df)
    assert len(t) == 12 and (t["seeds"] == 1).all()  # 2 points x 6 arms, one new seed each
    assert 'id="confirm-table"' in html and "the winner's curse" in html


def test_a_large_download_is_gzipped_and_loads(tmp_path, monkeypatch, trials):
    import base64

    from analysis import load

    monkeypatch.setattr(report, "CSV_GZIP", 1000)
    t = report._trials(trials)
    assert t["trials_file"] == "trials.csv.gz" and t["trials_type"] == "application/gzip"
    (tmp_path / "trials.csv.gz").write_bytes(base64.b64decode(t["trials_csv"]))
    assert len(load.load_trials(tmp_path / "trials.csv.gz")) == len(trials)


def test_learning_curves_and_provenance_from_the_trials_records(trials):
    """A storage's per-epoch records draw learning curves; its provenance fills the Environment, and
    trials of two commits are said to be mixed."""
    from analysis.load import EXTRA_KEYS

    df = trials[trials["model"].isin(["vitp_4gf", "vitc_4gf"])]
    keys = df[EXTRA_KEYS].reset_index(drop=True)
    curves = [[{"epoch": e, "error": err + 20.0 / e} for e in range(1, 6)] for err in df["error"]]
    prov = [{"suite": "0.3", "commit": "a1b2c3d" if i % 2 else "e4f5a6b", "dirty": False, "python": "3.11.2",
             "torch": "2.14.1", "torchvision": "0.29.1", "timm": "1.0", "data": "synthetic"} for i in range(len(df))]
    extras = keys.assign(curve=curves, provenance=prov)
    html = report.build(df, extras=extras)
    assert '<section id="curves"' in html and "best run (solid)" in html
    env = html.split('<section id="environment"')[1]
    assert "a1b2c3d" in env and "e4f5a6b" in env and "mixed: these trials ran on different code" in env
    assert "torch" in env and "2.14.1" in env
    bare = report.build(df)
    assert '<section id="curves"' not in bare and "not recorded: these trials carry no provenance" in bare


def test_tuned_studies_draw_table3_and_fig2_as_the_paper_does():
    """(Replaces test_tuned.py's and test_verdict.py's report checks.) A stem study: Table 3 one row per
    stem, C first and P last, both optimizers and the paper's values; no Fig. 2, said in one line. A
    ladder at several budgets draws Fig. 2; two models 3.5% apart sit at one ladder tick."""
    stems = synthetic.trials(n_points=1, seeds=3, models=["vitc_4gf", *(f"vitc_4gf_s{i}" for i in range(1, 5)),
                                                          "vitp_4gf"], study="stem")
    html = report.build(stems)
    table3 = html.split('<section id="stems"')[1].split("</section>")[0]
    at = [table3.index(f'data-v="{s}">') for s in figures.STEMS]
    assert at == sorted(at) and "AdamW error (%)" in table3 and "SGD error (%)" in table3 and "24.0 / 24.7" in table3
    assert "Not in this study:" in html and "Training length (this study trains each model at one length" in html
    assert html.index('<section id="answer"') < html.index('<section id="findings"')
    ladder = synthetic.trials(n_points=1, seeds=2, models=["vitp_1gf", "vitc_1gf", "vitp_4gf", "vitc_4gf"],
                              epochs=(50, 100, 200), study="optimizer")
    schedule = report.build(ladder).split('<section id="schedule"')[1].split("</section>")[0]
    assert "data:image/svg+xml;base64," in schedule
    close = pd.DataFrame(dict(model=["vitp_mini", "vitc_mini"], gflops=[0.0046, 0.00443], gap=[-2.3, -16.5],
                              lo=np.nan, hi=np.nan))
    ax = figures.gap_figure(close).axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["4 M"]
