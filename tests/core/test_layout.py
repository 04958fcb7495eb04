"""The results layout (bench.core.layout): the trial folder's records written and read in one place, and
the reference root, which the analysis side reads."""
import os
import time

from bench.core import layout
from bench.core.layout import StudyDir


def test_a_trial_folder_reads_back_what_it_wrote(tmp_path):
    trial = StudyDir(tmp_path, "s").trial("k")
    assert trial.path == tmp_path / "s" / "trials" / "k"
    trial.path.mkdir(parents=True)
    assert trial.last_attempt() == {} and trial.read_job() == {} and trial.beat_age() is None
    trial.add_attempt({"job_id": "1"})
    with open(trial.attempts, "a") as f:
        f.write('{"job_id": "2", "ho')  # a line torn by a kill
    assert trial.last_attempt() == {"job_id": "1"}
    trial.beat()
    os.utime(trial.heartbeat, (time.time() - 60, time.time() - 60))
    assert 59 < trial.beat_age() < 70
    trial.write_error("")
    assert trial.error_line() is None
    trial.write_error("ValueError: no\n\nTraceback ...")
    assert trial.error_line() == "ValueError: no"
    trial.clear_error()
    assert trial.error_line() is None and not trial.error.exists()
    trial.result.write_text("[1, 2")
    assert trial.read_result() is None
    assert StudyDir(tmp_path, "s").trial_dirs() == [trial] and StudyDir(tmp_path, "none").trial_dirs() == []


def test_calibration_and_references_live_where_the_layout_says():
    from analysis import reference

    assert layout.REFERENCES == reference.REFERENCE_DIR  # written by the runner, read by the analysis side
    assert layout.reference_calibration("lr_wd", "local") == reference.REFERENCE_DIR / "calibration" / "lr_wd_local.json"
    where = StudyDir("results", layout.calibration_name("lr_wd"))
    assert where.calibration("local").as_posix() == "results/calibrate_lr_wd/local.json"
