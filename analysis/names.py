"""What a model's name says: its family, its rung of the size ladder, its stem (Table 3), and the
order of models by size that every table and figure of a report follows."""

from __future__ import annotations

import re

# rungs of the size ladder, multiply-adds in G (bench.core.models: the minis are the 4 MF models)
LADDER = {"1mf": 1e-3, "4mf": 4e-3, "18mf": 18e-3, "1gf": 1.0, "4gf": 4.0, "16gf": 16.0, "18gf": 18.0, "32gf": 32.0,
          "36gf": 36.0}
ALIASES = {"mini": "4mf"}
FAMILIES = {"vitp": "ViTp", "vitc": "ViTc", "regnety": "RegNetY"}


def family_of(model: str) -> str:
    """'vitp', 'vitc', 'regnety' or 'other'."""
    return next((f for f in FAMILIES if str(model).startswith(f + "_")), "other")


def size_of(model: str) -> str | None:
    """The ladder rung of a model's name (``vitc_4mf_s2`` -> ``4mf``, ``vitp_mini`` -> ``4mf``), or None."""
    m = re.match(r"[a-z]+_([0-9]+[mg]f|mini)", str(model))
    return ALIASES.get(m.group(1), m.group(1)) if m else None


def stem_of(model: str) -> str:
    """'C', 'S1'..'S4' or 'P' for a ViT, '' for any other model."""
    fam = family_of(model)
    m = re.search(r"_s(\d)$", str(model))
    return f"S{m.group(1)}" if m and fam == "vitc" else {"vitp": "P", "vitc": "C"}.get(fam, "")


STEM_RANK = {"C": 0, "S1": 1, "S2": 2, "S3": 3, "S4": 4, "P": 5, "": 6}


def size_key(model: str) -> tuple:
    """Order by size, then stem (C, S1…S4, P, then other families): 1mf < mini = 4mf < 18mf < 1gf < ...
    < 36gf; models off the ladder last, by name."""
    return (LADDER.get(size_of(model), float("inf")), STEM_RANK[stem_of(model)], str(model))


def flops_text(g: float) -> str:
    """Multiply-adds in G as the ladder names them: 0.0044 -> '4.4 M', 0.018 -> '18 M', 4 -> '4 G'."""
    v, unit = (g * 1e3, "M") if g < 1 else (g, "G")
    return f"{v:.2g} {unit}" if v < 10 else f"{v:.0f} {unit}"
