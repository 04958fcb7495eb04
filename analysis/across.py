"""The answer across data sets: each claim's verdict on the built-in synthetic set, on CIFAR-10 and the
paper's own value (ImageNet), side by side, from the committed references (``results/reference/``).

A README or doc holds the table between ``<!-- across -->`` and ``<!-- /across -->``; :func:`fill`
recomputes it from the references' trials, and the tests fail while a committed one is stale.
"""

from __future__ import annotations

import re

from . import answer, reference, verdict
from .load import load_trials

STUDIES = {"lr_wd": "lr/wd robustness (Figs. 4–5)", "optimizer": "training length and the optimizer gap (Figs. 2–3)",
           "stem": "the stem ablation (Table 3)"}
SETS = {"local": "synthetic (built in)", "cifar10": "CIFAR-10 (JPEG q75 re-encoding)"}
BLOCK = re.compile(r"(<!-- across -->\n)(.*?)(<!-- /across -->)", re.S)
DECIDED = ("reproduced", "not reproduced", "mixed")


def _claims(study: str, budget: str) -> list | None:
    """The claims of the committed reference of ``study`` at ``budget``, decided as its README decides
    them; None if it has none."""
    found = reference.for_budget(study, budget)
    if found is None:
        return None
    table = found[1]
    return verdict.findings(load_trials(table), design=verdict.table_design(table), power=False)["claims"]


def _cell(c) -> str:
    if c is None:
        return "–"
    e = answer.effect(c)["text"]
    return f"**{c.verdict}**" + (f" ({e})" if e != "–" else "")


def _agree(cells: dict) -> str:
    """'**differs**' where two data sets decided the claim differently, 'agree' where every one decided
    it alike, else '–'."""
    words = [str(c.verdict) if c is not None else "" for c in cells.values()]
    decided = set(words) & set(DECIDED)
    if len(decided) > 1:
        return "**differs**"
    return "agree" if len(words) > 1 and decided and set(words) == decided else "–"


def rows() -> list[dict]:
    """One row per claim of every study, in the studies' claim order."""
    out = []
    for study, what in STUDIES.items():
        run = {s: cl for s in SETS if (cl := _claims(study, s)) is not None}
        by_set = {s: {(c.claim, c.pair, c.optimizer): c for c in cl if c.verdict != "described"} for s, cl in run.items()}
        keys = dict.fromkeys(k for claims_ in by_set.values() for k in claims_)  # in order, each once
        for key in keys:
            cells = {s: claims_.get(key) for s, claims_ in by_set.items()}
            c = next(x for x in cells.values() if x is not None)
            statement = re.sub(r" \([^()]*\)$", "", c.statement)  # the test's name is in the README
            out.append(dict(study=study, what=what, claim=f"{statement} ({c.pair}; {c.optimizer})",
                            cells={s: _cell(cells[s]) if s in cells else "not yet run" for s in SETS},
                            agree=_agree(cells), paper=answer.paper_value(c)))
    return out


def markdown() -> str:
    """The side-by-side table as markdown, with the line that says what each column is."""
    head = ["claim", *SETS.values(), "paper (ImageNet)", "data sets"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    study = None
    for r in rows():
        if r["study"] != study:
            study = r["study"]
            lines.append(f"| *{study}: {r['what']}* |" + " |" * (len(head) - 1))
        lines.append("| " + " | ".join([r["claim"], *r["cells"].values(), r["paper"], r["agree"]]) + " |")
    return ("Each cell: the verdict (Holm over the study's claims, as its README decides it) and the effect with its "
            "interval; \"agree\" and \"differs\": both data sets decided the claim, alike or not. The paper's value is at its own "
            "scale (ImageNet, 1–18 GF, 50–400 epochs).\n\n" + "\n".join(lines) + "\n")


def fill(text: str) -> str:
    """``text`` with its ``<!-- across -->`` block recomputed."""
    return BLOCK.sub(lambda m: m.group(1) + markdown() + m.group(3), text)
