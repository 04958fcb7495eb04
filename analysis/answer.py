"""The report's first screen: one line per claim (analysis.claims's ``Claim``, as the Findings hold
it), with its verdict as a badge, its effect with the interval the claim carries, the paper's value
beside it, a plain sentence, and the tests one click below. A verdict word it does not know gets a
neutral badge, a claim kind it does not know a generic effect, a Claim field it does not know a row
of its own below."""

from __future__ import annotations

import dataclasses
import math
import re

from analysis.claims import fmt_p
from bench.core import paper

KNOWN_VERDICTS = ("reproduced", "not reproduced", "inconclusive", "mixed", "undecidable", "described")
# verdicts that say the study cannot decide, and why, share the undecidable badge
UNDECIDED = ("undecidable", "cannot judge")
# the effect each claim measures: (what, unit) — the statistic's sign is the paper's direction (> 0)
EFFECTS = {
    "robust": ("largest gap of the Δ-EDFs (share of runs)", ""),
    "better": ("median per-draw difference ViTp − ViTc", " points"),
    "best": ("expected best of 4, ViTp − ViTc", " points"),
    "sgd": ("ViTp's SGD − AdamW", " points"),
    "gap": ("ViTp's SGD − AdamW gap − ViTc's", " points"),
    "converge vitc": ("median of ViTp at the longest budget − ViTc at half of it", " points"),
    "converge regnety": ("median of ViTp at the longest budget − RegNetY at half of it", " points"),
    "regnety": ("RegNetY's mean SGD − AdamW at the longest budget", " points"),
    "trend": ("Kendall τ of the gap against size", ""),
    "stem trend": ("Spearman ρ of error against the stem's rank, C…S4", ""),
    "stem P vs C": ("P − C", " points"),
    "stem sgd trend": ("Spearman ρ of SGD − AdamW against the stem's rank, C…S4", ""),
    "stem sgd P vs C": ("P's SGD − AdamW − C's", " points"),
}
# the Claim's fields as words (the tests one click below); a field not named here shows its own name
LABELS = {"statistic": "statistic", "p": "p, the paper's direction", "p_other": "p, the other direction",
          "p_adjusted": "p after Holm's step-down over the study's claims (the verdict's)",
          "p_min": "smallest p this test can give at this size", "exact": "exact p-values",
          "blocked": "the rule that decided instead of the test", "crossing": "both directions tested (EDFs may cross)",
          "without": "verdict without the rules", "n": "pairs or runs tested", "power": "power now",
          "n_needed": "points per arm for 80% power", "cost": "what 80% power would cost", "evidence": "evidence"}
HIDDEN = ("claim", "pair", "optimizer", "verdict", "statement", "detail", "interval", "power_of")


def slug(verdict: str) -> str:
    """The badge's CSS class: 'v-' and the verdict's words joined by '-', or 'v-other' for an unknown one."""
    v = str(verdict).strip().lower()
    if v.startswith(UNDECIDED):
        return "v-undecidable"
    return "v-" + re.sub(r"[^a-z]+", "-", v).strip("-") if v in KNOWN_VERDICTS else "v-other"


def _num(v, sign: str = "+") -> str:
    return f"{v:{sign}.2f}" if abs(v) < 1 else f"{v:{sign}.1f}"


def interval_of(c):
    """The (lo, hi) interval a claim carries (a field ``interval`` or ``detail['interval']``), or None."""
    iv = getattr(c, "interval", None) or (c.detail or {}).get("interval")
    if iv is None:
        return None
    lo, hi = (iv.lo, iv.hi) if hasattr(iv, "lo") else tuple(iv)[-2:]
    return (lo, hi) if all(isinstance(x, int | float) and math.isfinite(x) for x in (lo, hi)) else None


def effect(c) -> dict:
    """The claim's effect in words: ``what`` it measures and ``text`` ('+10.5 [+8.0, +13.1] points')."""
    what, unit = EFFECTS.get(c.claim, ("statistic", ""))
    if c.statistic is None or not math.isfinite(c.statistic):
        return dict(what=what, text="–")
    iv = interval_of(c)
    text = _num(c.statistic) + (f" [{_num(iv[0])}, {_num(iv[1])}]" if iv else "") + unit
    return dict(what=what, text=text)


def _table3(opt: str) -> list[tuple[str, float]]:
    i = ("adamw", "sgd").index(opt)
    order = ["vitc_4gf", *(f"vitc_4gf_s{k}" for k in range(1, 5)), "vitp_4gf"]
    names = ["C", "S1", "S2", "S3", "S4", "P"]
    return [(n, paper.TABLE3[m][i]) for n, m in zip(names, order)]


def paper_value(c) -> str:
    """The paper's number for the claim (ImageNet, its sizes and epochs), or '–' where it gives none."""
    t3, opt = paper.TABLE3, c.optimizer if c.optimizer in ("adamw", "sgd") else None
    if c.claim in ("better", "best") and opt:
        i = ("adamw", "sgd").index(opt)
        return f"{t3['vitp_4gf'][i] - t3['vitc_4gf'][i]:+.1f} points (Table 3: 4GF, 50 epochs)"
    if c.claim == "robust":
        ctext, ptext = paper.WITHIN4[("vitc_18gf", "sgd")][1], paper.WITHIN4[("vitp_18gf", "sgd")][1]
        return f"within 4 points of best: ViTc {ctext}, ViTp {ptext} (Fig. 5: 18GF, SGD)"
    gap = {m: s - a for m, (a, s) in t3.items()}
    if c.claim == "sgd":
        return f"{gap['vitp_4gf']:+.1f} points (Table 3: ViTp-4GF)"
    if c.claim == "gap":
        return f"{gap['vitp_4gf'] - gap['vitc_4gf']:+.1f} points ({gap['vitp_4gf']:+.1f} vs {gap['vitc_4gf']:+.1f}, Table 3: 4GF)"
    if c.claim == "regnety":
        return "about +0.1 to +0.2 points (Fig. 3)"
    if c.claim.startswith("converge"):
        fam = c.claim.split()[-1]
        t2, (mid, last) = paper.TABLE2, (paper.TABLE2_EPOCHS[-2], paper.TABLE2_EPOCHS[-1])
        sizes = ("1gf", "4gf", "16gf") if fam == "regnety" else ("1gf", "4gf", "18gf")
        pairs = ", ".join(f"{t2[f'{fam}_{g}'][-2]} vs {t2[f'vitp_{q}'][-1]}" for g, q in zip(sizes, ("1gf", "4gf", "18gf")))
        name = "RegNetY" if fam == "regnety" else "ViTc"
        return f"{name} at {mid} epochs vs ViTp at {last}: {pairs} (Table 2: 1, 4, 16/18GF)"
    if c.claim == "stem trend" and opt:
        return " → ".join(f"{n} {v:g}" for n, v in _table3(opt)[:-1]) + " (Table 3: 4GF)"
    if c.claim == "stem P vs C" and opt:
        t = dict(_table3(opt))
        return f"{t['P'] - t['C']:+.1f} points (P {t['P']:g} vs C {t['C']:g}, Table 3: 4GF)"
    if c.claim.startswith("stem sgd"):
        a, s = _table3("adamw"), _table3("sgd")
        pen = [(n, sv - av) for (n, av), (_, sv) in zip(a, s)]
        if c.claim == "stem sgd P vs C":
            return f"{pen[-1][1] - pen[0][1]:+.1f} points (P {pen[-1][1]:+.1f} vs C {pen[0][1]:+.1f}, Table 3: 4GF)"
        return " → ".join(f"{n} {v:+.1f}" for n, v in pen[:-1]) + " (Table 3: 4GF)"
    if c.claim == "trend":
        return "no claim about the trend"
    return "–"


def _value(name: str, v, c) -> str:
    if name == "without" and v is not None:
        return str(getattr(v, "verdict", v))
    if name in ("p", "p_other", "p_adjusted") and isinstance(v, float) and math.isfinite(v):
        return fmt_p(v, getattr(c, "p_min", 0.0), getattr(c, "exact", True))
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        if name == "power" and str(c.verdict).lower().startswith(("inconclusive", *UNDECIDED)):
            return "not computed for this claim's test"
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def details(c) -> list[tuple[str, str]]:
    """The claim's tests, one (label, value) per Claim field (its ``detail`` dict last), in words."""
    rows = [(LABELS.get(f.name, f.name.replace("_", " ")), _value(f.name, getattr(c, f.name), c))
            for f in dataclasses.fields(c) if f.name not in HIDDEN]
    rows += [(str(k).replace("_", " "), _value(k, v, c)) for k, v in (c.detail or {}).items() if k != "interval"]
    return rows


def line(c) -> dict:
    """Everything the first screen shows of one claim."""
    opt = {"adamw": "AdamW", "sgd": "SGD"}.get(c.optimizer, c.optimizer)
    return dict(verdict=str(c.verdict), badge=slug(c.verdict), sentence=c.statement or c.claim,
                where=f"{c.pair}; {opt}", effect=effect(c), paper=paper_value(c), details=details(c))
