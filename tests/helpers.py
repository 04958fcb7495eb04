"""Helpers shared by the tests: trial tables written into a real optuna JournalStorage exactly as
docs/storage.md specifies, an engine result for a spec, small study files and a CIFAR folder."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from bench.core import records
from bench.core.paper import RANGES

ATTRS = [c for c in records.COLUMNS if c not in ("family", "lr", "wd", "state", "trial_number")]


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def write_journal(df, path: Path, failed: int = 0) -> Path:
    """One optuna study per (study, model, optimizer, budget) named "<study>/<model>/<optimizer>/<budget>";
    each row becomes a COMPLETE trial (diverged ones at value = chance); ``failed`` extra FAIL
    trials per optuna study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    for (s, m, f, o, b), g in df.groupby(["study", "model", "family", "optimizer", "budget"], sort=False):
        study = optuna.create_study(study_name=f"{s}/{m}/{o}/{b}", storage=storage, direction="minimize")
        for k, v in dict(study=s, model=m, optimizer=o, budget=b, family=f).items():
            study.set_user_attr(k, v)
        dist = {hp: FloatDistribution(*RANGES[(f, o)][hp], log=True) for hp in ("lr", "wd")}
        trials = []
        for r in g.to_dict("records"):
            ua = {k: _plain(r[k]) for k in ATTRS}
            ua["diverged"] = bool(ua["diverged"])
            ua["curve"] = [{"epoch": 0, "train_loss": 6.9, "error": ua["error"], "raw_error": ua["raw_error"],
                            "img_per_s": 100.0, "seconds": 1.0, "peak_mem_mb": 10.0}]  # fmt: skip
            params = {hp: min(max(float(r[hp]), dist[hp].low), dist[hp].high) for hp in ("lr", "wd")}
            value = ua["chance"] if ua["diverged"] else ua["error"]
            trials.append(optuna.trial.create_trial(value=value, params=params, distributions=dist, user_attrs=ua))
        for i in range(failed):
            ua = {"study": s, "model": m, "optimizer": o, "budget": b, "point": i, "seed": 0, "diverged": False}
            trials.append(optuna.trial.create_trial(state=TrialState.FAIL, params=params, distributions=dist, user_attrs=ua))
        study.add_trials(trials)
    return path


def empty_journal(path: Path, name: str = "empty") -> Path:
    """A journal holding one optuna study with no trials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=f"{name}/vitc_mini/adamw/laptop", storage=storage)
    for k, v in dict(study=name, model="vitc_mini", optimizer="adamw", budget="laptop", family="vit").items():
        study.set_user_attr(k, v)
    return path


RECORD_ATTRS = {"study", "model", "optimizer", "budget", "epochs", "seed", "point", "error", "raw_error", "diverged",
                "num_classes", "chance", "gflops", "params_m", "acts_m", "resolution", "batch_size", "data",
                "seconds", "host", "job_id", "curve"}


def fake_result(spec, error=40.0, diverged=False):
    return dict(config=spec.cfg.identity(), error=error, raw_error=error + 1, diverged=diverged, num_classes=10,
                chance=90.0, gflops=0.004, params_m=0.26, acts_m=0.06, resolution=32, batch_size=spec.cfg.batch_size,
                data=spec.cfg.data, seconds=1.5, curve=[dict(epoch=1, train_loss=2.0, error=error, raw_error=error + 1,
                                                         img_per_s=100.0, seconds=1.5, peak_mem_mb=10.0)])


def write_study(tmp_path: Path, text: str, name="mini") -> str:
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return str(p)


MINI = """
points = "random"
trials = 3
epochs = [50]
models = ["vitp_mini", "regnety_mini"]
[ranges.vit]
adamw = { lr = [1e-4, 1e-2], wd = [0.01, 1.0] }
sgd = { lr = [0.1, 3.2], wd = [4e-6, 1.2e-4] }
[ranges.regnety]
adamw = { lr = [1e-3, 1e-1], wd = [0.001, 0.1] }
sgd = { lr = [0.25, 8.0], wd = [3e-6, 8e-5] }
[budgets.local]
data = "synthetic:256"
epoch_scale = 0.04
"""


def write_cifar(root, name, n_per_file=20):
    """A python-pickle CIFAR folder of random images (n_per_file per batch file)."""
    import pickle

    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if name == "cifar10":
        files, meta = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "batches.meta"
        key, ncls = b"labels", 10
        meta_obj = {b"label_names": [f"c{i}".encode() for i in range(10)], b"num_cases_per_batch": n_per_file}
    else:
        files, meta = ["train", "test"], "meta"
        key, ncls = b"fine_labels", 100
        meta_obj = {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                    b"coarse_label_names": [f"k{i}".encode() for i in range(20)]}
    for f in files:
        n = n_per_file * (5 if name == "cifar100" and f == "train" else 1)
        obj = {b"batch_label": f"{f}".encode(), key: [int(v) for v in rng.integers(0, ncls, n)],
               b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
               b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        if name == "cifar100":
            obj[b"coarse_labels"] = [0] * n
        with open(root / f, "wb") as fh:
            pickle.dump(obj, fh, protocol=2)
    with open(root / meta, "wb") as fh:
        pickle.dump(meta_obj, fh, protocol=2)
    return root
