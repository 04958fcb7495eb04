"""Run a study: reconcile its trial specs with storage and trial dirs, launch the rest, record.

The trial dir ``results/<study>/trials/<key>/`` is the source of truth: a ``result.json`` there
is recorded without retraining; ``job.json`` + ``heartbeat`` tell whether its job still lives.
"""
from __future__ import annotations

import contextlib
import re
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path

from optuna.trial import TrialState

from bench import provenance
from bench.core.identity import finished, fuse_key
from bench.core.errors import UserError
from bench.io import atomic_write_bytes, atomic_write_json
from bench.core.layout import StudyDir, TrialDir
from bench.runner import launch, preflight, storage
from bench.runner.job import HEARTBEAT_S
from bench.runner.progress import Bar
from bench.runner.specs import CONFIRM_SEED0, TrialSpec, confirm, expand, specs_of
from bench.core import studies
from bench.core.studies import Overrides, Study, StudyError, resolve

HOST = socket.gethostname()
STALE_S = 6 * HEARTBEAT_S  # a heartbeat older than this (and no live job) means the job is gone


@dataclass
class RunOptions:
    results: Path = Path("results")
    storage: str | None = None  # optuna storage URL; default: journal file in results/<study>/
    dry_run: bool = False
    confirm: int | None = None  # rerun the best N points with CONFIRM_SEED0.. seeds
    trials_per_job: int | None = None  # trials run one after another in one job (None: from the estimate)
    estimate: bool = True
    poll_s: float = 0.2
    quiet: bool = False  # no progress bar
    reference: str | None = None  # say whether the study pairs with this reference study (and why not)


@dataclass(eq=False)
class Slot:
    """A trial spec, its optuna study, trial dir and what this run does with it."""

    spec: TrialSpec
    optuna_name: str  # the optuna study holding the trial
    trial: TrialDir
    trial_id: int | None = None
    action: str = "run"  # done | record | attach | run
    job_id: str = ""
    store: storage.Store | None = None


def run(study: Study, ov: Overrides, lopts: launch.LaunchOptions, ropts: RunOptions, log=print) -> int:
    """Run (or resume) a study; returns the exit code (1 if some trials failed)."""
    resolved = resolve(study, ov)
    confirm = (lambda store: _confirm_specs(study, ov, store, resolved.seed, ropts.confirm)) if ropts.confirm else None
    return execute(study.name, specs_of(resolved), resolved.seed, lopts, ropts, log, confirm, studies.text(study))


def open_store(name: str, ropts: RunOptions) -> storage.Store | None:
    """Study ``name``'s storage for reading (``--storage``, else its journal; None if absent)."""
    return storage.Store.open(ropts.storage or StudyDir(ropts.results, name).journal, create=False)


def execute(name: str, specs: list[TrialSpec], seed: int, lopts: launch.LaunchOptions, ropts: RunOptions,
            log=print, confirm=None, study_text: str = "") -> int:
    """Reconcile ``specs`` (or ``confirm(store)``'s) with the storage and the trial dirs under
    ``results/<name>/``, launch what is left and record it; returns 1 if some trials failed, else 0.
    ``study_text`` (the study file as read) is kept beside the results: a report shows what the
    trials ran with, not what the file says later."""
    where = StudyDir(ropts.results, name)
    note = preflight.check(specs, lopts.cluster)
    database = bool(ropts.storage) and storage.is_url(ropts.storage)
    if database:  # nothing to heal: opened first, a database that cannot be opened leaves no lock file behind
        store = storage.Store.open(ropts.storage, create=not ropts.dry_run)
    with _locked(where, ropts.dry_run):  # before opening a journal: only the lock holder may heal it
        if not database:
            store = storage.Store.open(ropts.storage or where.journal, create=not ropts.dry_run)
        if confirm:
            specs = confirm(store)
        slots = _reconcile(specs, store, seed, where, create=not ropts.dry_run)
        counts = Counter(s.action for s in slots)
        todo = [s.spec for s in slots if s.action == "run"]
        launcher = launch.make(lopts, where.submitit, factories=any(":" in s.cfg.model for s in todo))
        log(preflight.describe(specs, todo, {"finished": counts["done"], "to record": counts["record"],
                                        "running": counts["attach"], "to run": counts["run"]}))
        if note:
            log(note)
        mixed = provenance.mixes([_provenance(s.trial) for s in slots if s.action in ("done", "record")])
        if mixed:
            log(f"note: finished trials of this study came from other code than this checkout's: {', '.join(mixed)}; "
                f"they are kept as they are, and new trials run with this code (result.json: provenance)")
        paired = preflight.pairing(specs, seed, ropts.reference)
        if paired:
            log(paired)
        cost = preflight.estimate(todo, launcher, ropts.trials_per_job) if ropts.estimate and todo else None
        fuse = getattr(launcher, "fuse", 1)
        per_job = -(-(ropts.trials_per_job or (cost.per_job if cost else 1)) // fuse) * fuse  # whole fused groups
        if cost:
            log(cost.text)
        if ropts.dry_run:
            return 0
        if study_text:
            atomic_write_bytes(where.study_file, study_text.encode())
        bar = Bar(len(slots), done=counts["done"], diverged=_diverged(slots), disable=ropts.quiet)
        try:
            failed = _launch_and_wait(slots, launcher, bar, ropts.poll_s, per_job, fuse)
        except KeyboardInterrupt:
            bar.close()
            raise KeyboardInterrupt("submitted jobs keep running; rerun the same command to pick them up") from None
        except OSError as e:  # a full disk or a read-only folder under the runner: nothing finished is lost
            bar.close()
            raise UserError(f"cannot write {e.filename or where.root}: {e.strerror or e}; submitted jobs keep "
                            "running and their results stay in their trial dirs: free the space (or fix the "
                            "permissions) and rerun the same command") from None
        bar.close()
    for s, reason in failed:
        log(f"FAILED {s.spec.key}: {reason}")
    c = bar.counts
    log(f"{name}: {c['done']} of {len(slots)} trials finished ({c['diverged']} diverged), {len(failed)} failed; "
        f"records in {where.root}")
    return 1 if failed else 0


def _launch_and_wait(slots: list[Slot], launcher: launch.Launcher, bar: Bar, poll_s: float,
                     per_job: int, fuse: int = 1) -> list:
    """Submit the slots to run in jobs of ``per_job`` trials, at most ``launcher.capacity`` jobs at
    once, and record each trial as soon as its result (or its job's end) shows."""
    # point-major order: every model x optimizer gets point i before any gets point i + 1, so a
    # study stopped early (or read while it runs) holds complete, paired points; fused, the points
    # go in blocks of ``fuse``, each block's trials of one fuse key side by side (one fused group)
    first: dict = {}
    for s in slots:
        first.setdefault(fuse_key(s.spec.cfg), len(first))
    queue = deque(sorted((s for s in slots if s.action == "run"), key=lambda s: (
        s.spec.cfg.seed, s.spec.point // fuse, first[fuse_key(s.spec.cfg)], s.spec.point)))
    inflight: dict[Slot, object] = {s: None for s in slots if s.action == "attach"}
    failed = []
    for s in [s for s in slots if s.action == "record"]:
        outcome = _finish(s, None)
        bar.update(inflight, **{outcome: 1})
    while queue or inflight:
        busy, chunks = len({s.job_id for s in inflight}), []
        while queue and busy + len(chunks) < launcher.capacity:
            chunks.append([queue.popleft() for _ in range(min(per_job, len(queue)))])
        if chunks:
            for s in (s for c in chunks for s in c):
                s.trial.path.mkdir(parents=True, exist_ok=True)
                if s.trial_id is None:
                    s.trial_id = s.store.start(s.optuna_name, s.spec)
            jobs = launcher.submit([[(s.spec.cfg, s.trial.path) for s in c] for c in chunks])
            for chunk, job in zip(chunks, jobs):
                for s in chunk:
                    s.job_id = str(job.job_id)
                    atomic_write_json(s.trial.job, dict(
                        cluster=launcher.opts.cluster, job_id=s.job_id, host=HOST, submitted=time.time(),
                        log=str(getattr(job, "paths", None) and job.paths.stdout)))
                    s.store.set_attrs(s.trial_id, job_id=s.job_id)
                    inflight[s] = job
            bar.update(inflight)
        for s in [s for s, job in inflight.items() if _ended(s, job)]:
            job = inflight.pop(s)
            if job is not None and all(j is not job for j in inflight.values()):
                launcher.release(job)
            outcome = _finish(s, job)
            if outcome == "failed":
                failed.append((s, s.store.attrs(s.trial_id).get("fail_reason")))
            bar.update(inflight, **{outcome: 1})
        if queue or inflight:
            time.sleep(poll_s)
    return failed


def _reconcile(specs: list[TrialSpec], store, seed: int, where: StudyDir, create: bool) -> list[Slot]:
    """What to do with each spec: done (recorded COMPLETE), record (its result.json is there), attach
    (its job lives), else run. The trials folder is listed once: a spec without a dir has no result."""
    optuna_names, keyed, slots = {}, {}, []
    trials_dir = where.trials
    dirs = {p.name for p in trials_dir.iterdir()} if trials_dir.is_dir() else set()
    for spec in specs:
        optuna_name = spec.optuna_name
        if optuna_name not in optuna_names:
            name = optuna_names[optuna_name] = store and store.optuna_study(spec, seed, create=create)
            keyed[optuna_name] = store.by_key(name) if name else {}
        key = spec.key
        trials = keyed[optuna_name].get(key, [])
        slot = Slot(spec, optuna_names[optuna_name], where.trial(key), store=store)
        if not trials and key not in dirs:
            slots.append(slot)
            continue
        running = [t for t in trials if t.state == TrialState.RUNNING]
        slot.trial_id = store.trial_id(slot.optuna_name, running[-1]) if running else None
        if any(t.state == TrialState.COMPLETE for t in trials):
            slot.action = "done"
            slot.trial_id = store.trial_id(slot.optuna_name, [t for t in trials if t.state == TrialState.COMPLETE][-1])
        elif _result(slot) is not None:
            slot.action = "record"
        elif job_alive(slot.trial):
            slot.action, slot.job_id = "attach", slot.trial.read_job().get("job_id", "")
        slots.append(slot)
    return slots


def job_alive(trial: TrialDir) -> bool:
    """A job of an earlier run still works on the trial: its cluster says so or, where this
    machine cannot ask (another host, no squeue), its heartbeat is fresh."""
    info = trial.read_job()
    if not info:
        return False
    alive = launch.alive(info.get("cluster", ""), info.get("job_id", ""), info.get("host", ""))
    if alive is not None:
        return alive
    age = trial.beat_age()
    return age is not None and age < STALE_S


def _ended(s: Slot, job) -> bool:
    """The trial's result is on disk (its process may still be exiting: free the slot now) or its job ended."""
    if _result(s) is not None:
        return True
    return not job_alive(s.trial) if job is None else job.done()


def _finish(s: Slot, job) -> str:
    """Record the trial of s; returns 'done', 'diverged' or 'failed'."""
    if s.trial_id is None:
        s.trial_id = s.store.start(s.optuna_name, s.spec)
    attempt = s.trial.last_attempt()
    host, job_id = attempt.get("host", ""), attempt.get("job_id", s.job_id)
    result = _result(s)
    if result is not None:
        if s.store.complete(s.trial_id, result, host=host, job_id=job_id) == TrialState.COMPLETE:
            return "diverged" if result.get("diverged") else "done"
        return "failed"
    info = s.trial.read_job()
    reason = s.trial.error_line() or _job_error(job) or f"job {job_id} ended without a result"
    s.store.fail(s.trial_id, f"{reason} (log: {info.get('log')})", host=host, job_id=job_id)
    return "failed"


def _result(s: Slot) -> dict | None:
    """The engine's result.json in the trial dir, if it is this spec's run."""
    return finished(s.trial.path, s.spec.cfg)


def _confirm_specs(study: Study, ov: Overrides, store, seed: int, n_best: int) -> list[TrialSpec]:
    base = expand(study, replace(ov, seeds=1))
    errors: dict = {}
    for spec in {s.optuna_name: s for s in base}.values():
        name = store and store.optuna_study(spec, seed, create=False)
        for t in store.trials(name, states=(TrialState.COMPLETE,)) if name else []:
            a = t.user_attrs
            if a.get("seed", 0) < CONFIRM_SEED0:
                errors.setdefault((a["model"], a["optimizer"], a["epochs"], a["point"]), []).append(t.value)
    specs = confirm(base, errors, n_best, ov.seeds or 1)
    if not specs:
        raise StudyError(f"nothing to confirm: study {study.name!r} (budget {ov.budget!r}) has no finished "
                         "trials for these models/optimizers/epochs yet; run it first")
    return specs


def _diverged(slots: list[Slot]) -> int:
    return sum(1 for s in slots if s.action == "done"
               and s.store.attrs(s.trial_id).get("diverged"))


def _job_error(job) -> str | None:
    try:
        exc = job and job.exception()
    except Exception as e:  # the job vanished (killed, cancelled): say so
        exc = e
    if not exc:
        return None
    lost = re.search(r"has not produced any output \(state: ([^)]*)\)", str(exc))
    if lost:  # submitit: the process ended (killed, out of memory) with no result; its stderr's tail is no reason
        return f"the job's process ended without a result (state: {lost.group(1)}; killed or out of memory?)"
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _locked(where: StudyDir, dry_run: bool):
    """The study's lock, except for a dry run (which writes nothing)."""
    return contextlib.nullcontext() if dry_run else where.lock("running it")


def _provenance(trial: TrialDir) -> dict:
    """The provenance in a trial's result.json ({} when it has none: a result from before it was recorded)."""
    result = trial.read_result()
    return (result.get("provenance") if isinstance(result, dict) else None) or {}
