"""The answer across data sets (analysis.across): which verdicts agree, and the table's shape."""
from types import SimpleNamespace

from analysis import across


def _c(verdict):
    return SimpleNamespace(verdict=verdict)


def test_data_sets_agree_or_differ_only_where_both_decided():
    assert across._agree({"local": _c("reproduced"), "cifar10": _c("not reproduced")}) == "**differs**"
    assert across._agree({"local": _c("mixed"), "cifar10": _c("reproduced")}) == "**differs**"
    assert across._agree({"local": _c("reproduced"), "cifar10": _c("reproduced")}) == "agree"
    assert across._agree({"local": _c("reproduced"), "cifar10": _c("inconclusive")}) == "–"
    assert across._agree({"local": _c("reproduced"), "cifar10": None}) == "–"  # the claim is not in one study
    assert across._agree({"local": _c("reproduced")}) == "–"  # one data set run so far


def test_every_claim_of_the_committed_references_has_a_row_and_a_paper_value():
    rows = across.rows()
    assert {r["study"] for r in rows} == set(across.STUDIES)
    assert all(set(r["cells"]) == set(across.SETS) and r["paper"] for r in rows)
    table = across.markdown()
    assert table.count("\n| ") == len(rows) + len(across.STUDIES) + 1  # the header, a line per study, a row per claim
    assert across.fill("x\n<!-- across -->\nold\n<!-- /across -->\ny") == f"x\n<!-- across -->\n{table}<!-- /across -->\ny"
