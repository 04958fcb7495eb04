"""Open the report in a real headless Chromium: no console errors, no network, sortable and
filterable trial table, screenshot."""

import os
from pathlib import Path

import pytest

from analysis import reference, report, synthetic

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_report_in_chromium(tmp_path):
    if not CHROMIUM.exists():  # CI (.ci/run) installs it and sets HPBENCH_REQUIRE_BROWSER=1: never skip there
        message = "needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"
        pytest.fail(message) if os.environ.get("HPBENCH_REQUIRE_BROWSER") == "1" else pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright python package")
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
        for anchor in ("findings", "reference", "summary", "edf", "scatter", "gap", "budget", "importance", "paper", "trials", "studies", "environment"):
            assert page.locator(f"#{anchor}").count() == 1
        assert page.locator("figure img").count() >= 8
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
