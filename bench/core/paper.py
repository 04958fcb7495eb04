"""The paper's published numbers (Xiao et al. 2021), keyed by our registry model names: the one
place they are written. Tables 1-2 (complexity, errors), Table 3 (stems), Table 4 (ranges, tuned
values) and the Sec. 6 remark; the study schema takes the ranges, the tuned values and the paper
budget from here (bench.core.studies), ``bench models`` the complexity, and the report compares
measured results with the errors. Sources: the paper's Tables 1-4 and Sec. 6, and pycls's configs."""

from __future__ import annotations

# Published complexity (Tables 1-2): flops (B), params (M), acts (M), at the model's resolution.
COMPLEXITY = {
    "vitp_1gf": (1.1, 4.8, 5.5), "vitp_4gf": (3.9, 18.5, 11.1),
    "vitp_18gf": (17.5, 86.6, 24.0), "vitp_36gf": (35.9, 178.4, 37.3),
    "vitc_1gf": (1.1, 4.6, 5.7), "vitc_4gf": (4.0, 17.8, 11.3),
    "vitc_18gf": (17.7, 81.6, 24.1), "vitc_36gf": (35.0, 167.8, 36.7),
    "regnety_1gf": (1.0, 9.6, 6.2), "regnety_4gf": (4.1, 22.4, 14.5),
    "regnety_16gf": (15.5, 72.3, 30.7), "regnety_32gf": (31.1, 128.6, 46.2),
}

# Table 2: peak top-1 error (%) on ImageNet-1k at 100 / 200 / 400 epochs.
TABLE2 = {
    "vitp_1gf": (33.2, 29.7, 27.7), "vitp_4gf": (23.3, 20.8, 19.6),
    "vitp_18gf": (19.9, 18.4, 17.9), "vitp_36gf": (19.9, 18.8, 18.2),
    "vitc_1gf": (28.6, 26.1, 24.7), "vitc_4gf": (20.9, 19.2, 18.6),
    "vitc_18gf": (18.4, 17.5, 17.0), "vitc_36gf": (18.3, 17.6, 16.8),
    "regnety_1gf": (23.2, 22.2, 21.5), "regnety_4gf": (19.4, 18.3, 17.9),
    "regnety_16gf": (17.1, 16.4, 16.3), "regnety_32gf": (16.2, 15.9, 15.9),
}  # fmt: skip
TABLE2_EPOCHS = (100, 200, 400)

# Table 3: 4GF models at 50 epochs, top-1 error (%) with AdamW / SGD (stem ablation).
TABLE3 = {
    "vitp_4gf": (27.7, 33.0), "vitc_4gf": (24.0, 24.7), "vitc_4gf_s1": (24.3, 25.1),
    "vitc_4gf_s2": (24.3, 25.3), "vitc_4gf_s3": (25.1, 26.2), "vitc_4gf_s4": (26.2, 27.9),
}  # fmt: skip
TABLE3_EPOCHS = 50

# Table 4 right: sampled ranges (lo, hi) per family and optimizer, for lr (per batch 2048) and wd.
# Each is the family's good value x WINDOW.
WINDOW = (1 / 8, 4)
RANGES = {
    ("vit", "adamw"): {"lr": (2.5e-4, 8.0e-3), "wd": (0.02, 0.8)},
    ("vit", "sgd"): {"lr": (0.1, 3.2), "wd": (4e-6, 1.2e-4)},
    ("regnety", "adamw"): {"lr": (1.25e-3, 4e-2), "wd": (0.0075, 0.24)},
    ("regnety", "sgd"): {"lr": (0.25, 8.0), "wd": (3e-6, 8e-5)},
}

# Table 4 left: tuned 50-epoch (lr, wd) per model and optimizer (RegNetY: one pair for every size).
_REGNETY = {"adamw": (3.8e-3, 0.1), "sgd": (2.54, 2.4e-5)}
TUNED = {
    "vitp_1gf": {"adamw": (2e-3, 0.20), "sgd": (1.9, 1.3e-5)},
    "vitp_4gf": {"adamw": (2e-3, 0.20), "sgd": (1.9, 1.3e-5)},
    "vitp_18gf": {"adamw": (1e-3, 0.24), "sgd": (1.1, 1.2e-5)},
    "vitc_1gf": {"adamw": (2.5e-3, 0.19), "sgd": (1.9, 1.3e-5)},
    "vitc_4gf": {"adamw": (1e-3, 0.24), "sgd": (1.3, 2.2e-5)},
    "vitc_18gf": {"adamw": (1e-3, 0.24), "sgd": (1.1, 2.7e-5)},
    **{f"regnety_{g}gf": _REGNETY for g in (1, 4, 16, 32)},
}
# Models the paper did not tune borrow a sibling's values: the laptop models their paper-sized
# counterpart's (the earlier minis their 1GF model's), the Table 3 stems ViTc's of their size (the
# paper trains S1-S4 at ViTc-4GF's settings). A borrowed model may borrow in turn (s1 -> 4mf -> 4gf).
BORROW = {"vitp_mini": "vitp_1gf", "vitc_mini": "vitc_1gf", "regnety_mini": "regnety_1gf",
          **{f"{fam}_{n}mf": f"{fam}_{n}gf" for fam in ("vitp", "vitc") for n in (1, 4, 18)},
          **{f"regnety_{n}mf": "regnety_1gf" for n in (1, 4, 18)},
          **{f"vitc_4gf_s{i}": "vitc_4gf" for i in range(1, 5)}, **{f"vitc_4mf_s{i}": "vitc_4mf" for i in range(1, 5)}}

# The paper's batch: 2048 (1024 / 512 for the largest RegNetYs, as pycls's configs); lrs are for 2048.
BATCH = 2048
BATCH_OF = {"regnety_16gf": 1024, "regnety_32gf": 512}

# Sec. 6 remark (Fig. 5, SGD, 18GF): fraction of runs within 4 points of the best.
WITHIN4 = {("vitc_18gf", "sgd"): (0.60, "about 60%"), ("vitp_18gf", "sgd"): (0.20, "fewer than 20%")}


def tuned(model: str, optimizer: str) -> tuple[float, float] | None:
    """The paper's tuned (lr, wd) for a model (or the model it borrows from), if any."""
    while model not in TUNED and model in BORROW:
        model = BORROW[model]
    entry = TUNED.get(model)
    return entry.get(optimizer) if entry else None
