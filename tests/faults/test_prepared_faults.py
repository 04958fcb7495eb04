"""A prepared data set's faults, as a new user meets them: an --out that cannot be one, a source with no
readable image, and one flipped byte in an index or a shard. Each is one line naming the file and the
command that rebuilds it (exit 2, no traceback), and the rebuild restores the same set."""
from __future__ import annotations

import shlex

import pytest
from test_bad_input import one_line

from bench.cli import main
from bench.core import manifest
from bench.data.imagenet_like import make


@pytest.fixture
def source(tmp_path):
    make(tmp_path / "src", classes=3, train_per_class=4, val_per_class=2, seed=1)
    return tmp_path / "src"


def _prepare(source, out, capsys):
    """A set of one train and one val shard (so a load's two sampled shards are all of them)."""
    assert main(["data", "prepare", f"imagefolder:{source}", "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    return manifest.read(out)


def _flip(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where,says", [
    (lambda t: t / "afile", "--out {out} is a file: give a folder"),
    (lambda t: t / "afile" / "sub", "--out {out}: {t}/afile is a file; give a folder you can write"),
    (lambda t: "/proc/x", "--out /proc/x: cannot write in /proc"),
    (lambda t: t / "src" / "train" / "prep", "--out {out} lies inside the source folder"),
])
def test_an_out_that_cannot_hold_the_set(tmp_path, source, capsys, where, says):
    (tmp_path / "afile").write_text("")
    out = where(tmp_path)
    err = one_line(capsys, "data", "prepare", f"imagefolder:{source}", "--out", out)
    assert says.format(out=out, t=tmp_path) in err
    assert not (source / "train" / "prep").exists()  # the source still reads: nothing was made in it


def test_a_source_with_no_readable_train_image(tmp_path, source, capsys):
    for p in (source / "train").rglob("*.*"):
        p.write_bytes(b"not an image")
    err = one_line(capsys, "data", "prepare", f"imagefolder:{source}", "--out", tmp_path / "p", "--workers", "1",
                   "--no-progress")
    assert "none of the 12 train images could be read" in err and "fix or replace them" in err
    assert not (tmp_path / "p" / manifest.MANIFEST).exists()


def test_a_damaged_index_is_caught_before_training_and_rebuilt(tmp_path, source, capsys):
    out = tmp_path / "p"
    m = _prepare(source, out, capsys)
    _flip(out / "train-00000.idx.npy", 200)  # one byte of a label: once 1099511627776 and an IndexError
    train = ["train", "--model", "vitp_mini", "--lr", "0.01", "--wd", "0.05", "--epochs", "1", "--res", "32",
             "--data", f"prepared:{out}", "--out", tmp_path / "t"]
    err = one_line(capsys, *train)
    assert f"prepared:{out}: train-00000.idx.npy does not match the sha256 manifest.json records" in err
    assert not (tmp_path / "t").exists()
    rebuild = err.split("rebuild it with `")[1].split("`")[0]
    assert main(shlex.split(rebuild)[1:] + ["--no-progress"]) == 0
    assert manifest.read(out)["hash"] == m["hash"]  # the same set again
    assert main(["data", "prepare", "--verify", str(out)]) == 0
    assert "all 4 files match the checksums" in capsys.readouterr().out


def test_a_damaged_shard_is_caught_by_verify_and_by_a_load(tmp_path, source, capsys):
    out = tmp_path / "p"
    _prepare(source, out, capsys)
    _flip(out / "val-00000.jpg.bin", 1000)
    err = one_line(capsys, "data", "prepare", "--verify", out)
    assert f"prepared:{out}: val-00000.jpg.bin does not match the sha256 manifest.json records" in err
    assert "rebuild it with `bench data prepare imagefolder:" in err
    assert manifest.problems(out, None, depth="index") == []  # a plan reads the indexes only ...
    assert "val-00000.jpg.bin" in manifest.problems(out, None, depth="sample")[0]  # ... a load samples shards too
