"""Open the report in a real headless Chromium as a reader would: no console errors, no network, no
horizontal overflow, the data statement and every verdict badge on the first screens, a sortable and
filterable trial table; every committed report too, each screenshot at 1,400 px kept with the test's
output (``HPBENCH_SCREENSHOTS`` names a folder to keep them in; the log prints where they are)."""

import json
import os
import re
from pathlib import Path

import pytest

from analysis import reference, report, synthetic

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted(ROOT.glob("results/*/*/report.html"))
WIDTH, HEIGHT = 1400, 900

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _browser():
    if not CHROMIUM.exists():  # CI (.ci/run) installs it and sets HPBENCH_REQUIRE_BROWSER=1: never skip there
        message = "needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"
        pytest.fail(message) if os.environ.get("HPBENCH_REQUIRE_BROWSER") == "1" else pytest.skip(message)
    return pytest.importorskip("playwright.sync_api", reason="needs the playwright python package")


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = Path(os.environ.get("HPBENCH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the reports: {out}")
    return out


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_committed_report_reads_at_1400_px(path, shots):
    """No horizontal overflow, no console error, the data statement on the first screen, a badge for every
    verdict of the Findings the report embeds."""
    sync_api = _browser()
    data = json.loads(re.search(r'<script type="application/json" id="verdict-data">(.*?)</script>',
                                path.read_text(), re.S).group(1))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(shots / f"{path.parent.name}.png"))
        page.screenshot(path=str(shots / f"{path.parent.name}_full.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        box = page.locator("#data").bounding_box()
        statement = page.text_content("#data")
        badges = page.eval_on_selector_all("#verdict .badge", "bs => bs.map(b => b.textContent)")
        broken = page.eval_on_selector_all("img", "is => is.filter(i => !(i.naturalWidth > 0)).length")
        browser.close()
    assert errors == [] and broken == 0
    assert width <= WIDTH, f"{path}: the page is {width} px wide"
    assert box["y"] + box["height"] <= HEIGHT and "Data:" in statement
    assert badges == [c["verdict"] for c in data["findings"]["claims"]] and badges


def test_report_in_chromium(tmp_path):
    sync_api = _browser()
    # the user's model (regnety_4gf) with a reference study's ViTs laid beside it, paired by draw
    mine = synthetic.trials(n_points=32, models=["regnety_4gf"], study="demo")
    ref = synthetic.trials(n_points=32, models=["vitp_4gf", "vitc_4gf"], study="ref", budget="paper")
    df, ref_models, notes = reference.overlay(mine, ref, "ref")
    against = dict(name="ref", table="ref/trials.csv", models=ref_models, notes=notes)
    out = report.write(report.build(df, title="demo report", source="synthetic", reference=against),
                       tmp_path / "report.html")
    url = out.resolve().as_uri()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url, wait_until="load")
        assert errors == []
        assert all(u == url or u.startswith("data:") for u in requests), requests
        assert page.locator("#versus tbody tr").count() == 4  # regnety_4gf vs 2 reference models x 2 optimizers
        for anchor in ("reference", "answer", "findings", "edf", "scatter", "gap", "budget", "importance", "paper",
                       "trials", "environment"):
            assert page.locator(f"#{anchor}").count() == 1
        assert page.locator("figure img").count() >= 8
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        assert page.locator("#versus-lines").bounding_box()["y"] < 900  # the user's model on the first screen
        assert all(page.eval_on_selector_all("figure img", "els => els.map(e => e.naturalWidth > 0)"))
        rows = page.locator("#trial-table tbody tr")
        n = rows.count()
        assert n == len(df)

        col = page.eval_on_selector_all("#trial-table thead th", "ths => ths.map(t => t.textContent)").index("error")
        cells = f"#trial-table tbody tr td:nth-child({col + 1})"
        page.click(f"#trial-table thead th:nth-child({col + 1})")  # ascending
        asc = [float(v) for v in page.eval_on_selector_all(cells, "tds => tds.map(t => t.dataset.v)")]
        assert asc == sorted(asc)
        page.click(f"#trial-table thead th:nth-child({col + 1})")  # descending
        desc = [float(v) for v in page.eval_on_selector_all(cells, "tds => tds.map(t => t.dataset.v)")]
        assert desc == sorted(asc, reverse=True)

        page.fill("#filter", "vitc_4gf sgd")
        visible = page.eval_on_selector_all("#trial-table tbody tr", "rs => rs.filter(r => r.style.display !== 'none').map(r => r.textContent)")
        assert len(visible) == 32 and all("vitc_4gf" in t and "sgd" in t for t in visible)
        assert page.text_content("#count") == f"32 of {n} rows shown"
        page.fill("#filter", "")
        assert page.text_content("#count") == f"{n} of {n} rows shown"

        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        page.locator("#edf").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "report_edf.png"))
        browser.close()
        assert errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
