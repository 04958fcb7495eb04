"""Progress of a study: a live tqdm bar while waiting, and the ``bench status`` table."""
from __future__ import annotations

from collections import Counter

from optuna.trial import TrialState
from tqdm import tqdm

from bench.core import records

COLUMNS = ("done", "diverged", "running", "stale", "failed", "best")


class Bar:
    """tqdm on stderr: done / running / failed / diverged, with tqdm's ETA."""

    def __init__(self, total: int, done: int, diverged: int, disable: bool | None = None):
        self.counts = Counter(done=done, diverged=diverged)
        self.bar = tqdm(total=total, initial=done, unit="trial", dynamic_ncols=True, disable=disable,
                        smoothing=0.1)
        self._show(0, 0)

    def update(self, inflight: dict, done: int = 0, failed: int = 0, diverged: int = 0) -> None:
        """``inflight``: the slots (trials) handed to jobs that have not ended, each with its ``job_id``."""
        self.counts.update(done=done, failed=failed, diverged=diverged)
        self.bar.update(done + failed)
        self._show(len({s.job_id for s in inflight}), len(inflight))

    def _show(self, jobs: int, trials: int = 0) -> None:
        c = self.counts
        self.bar.set_postfix_str(f"done {c['done']} failed {c['failed']} diverged {c['diverged']}; {jobs} job(s) "
                                 f"running, holding {trials} trial(s)", refresh=True)

    def close(self) -> None:
        self.bar.close()


def counts(trials, alive=lambda trial: True) -> dict:
    """Counts of one optuna study, per trial key: a key that completed once is done (diverged if
    it diverged), else running if a trial of it runs (stale if ``alive(trial)`` says its job is
    gone: the next ``bench run`` reruns it), else failed."""
    by_key: dict = {}
    for t in trials:
        by_key.setdefault(records.key(t) or t.number, []).append(t)  # a trial without a key counts alone
    out = Counter()
    best = None
    for ts in by_key.values():
        complete = [t for t in ts if t.state == TrialState.COMPLETE]
        if complete:
            out["done"] += 1
            out["diverged"] += bool(complete[-1].user_attrs.get("diverged"))
            v = complete[-1].value
            best = v if best is None else min(best, v)
        elif any(t.state == TrialState.RUNNING for t in ts):
            out["running" if any(alive(t) for t in ts if t.state == TrialState.RUNNING) else "stale"] += 1
        else:
            out["failed"] += 1
    return {**{k: out[k] for k in COLUMNS[:-1]}, "best": best}


def table(rows: list[tuple[str, dict]]) -> str:
    """Aligned text table of (optuna study name, counts) rows."""
    head = ("study/model/optimizer/budget",) + COLUMNS
    cells = [head] + [(name,) + tuple(_fmt(c[k]) for k in COLUMNS) for name, c in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
                     for r in cells)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)
