"""The wheel: built from this tree, it holds every module and bench's own studies (top-level studies/ in
a checkout, bench/studies/ installed), and from a fresh venv in an empty folder `bench run --study lr_wd`
finds its study."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "bench", "analysis", "studies")


def _build(tmp: Path) -> Path:
    """The wheel of a copy of the tree's sources (a build leaves build/ and *.egg-info/ where it runs)."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp / "dist"), "."], cwd=src, capture_output=True, text=True)  # cwd: nothing shadows
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp / "dist").glob("hpbench-*.whl")
    return wheel


def test_the_wheel_ships_every_module_and_the_studies_and_runs_from_an_empty_folder(tmp_path):
    wheel = _build(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    tree = {p.relative_to(ROOT).as_posix() for pkg in ("bench", "analysis") for p in (ROOT / pkg).rglob("*.py")}
    assert tree and tree <= names, sorted(tree - names)
    studies = {f"bench/studies/{p.name}" for p in (ROOT / "studies").glob("*.toml")}
    assert {"bench/studies/lr_wd.toml"} <= studies <= names
    assert not any(n.startswith("studies/") for n in names)  # no top-level package named 'studies'

    venv, empty = tmp_path / "venv", tmp_path / "empty"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies come from this interpreter's site-packages, after the venv's own (where the wheel goes);
    # --ignore-installed: the editable hpbench seen there is neither skipped to nor uninstalled
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--ignore-installed",
                    "-q", str(wheel)], check=True, capture_output=True)
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    got = subprocess.run([venv / "bin" / "python", "-c", "import bench; print(bench.__file__)"], cwd=empty, env=env,
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    where = got.stdout.strip()
    assert Path(where).is_relative_to(site), where
    out = subprocess.run([venv / "bin" / "bench", "run", "--study", "lr_wd", "--dry-run", "--no-estimate"], cwd=empty,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "study 'lr_wd', budget 'local'" in out.stdout and "to train:" in out.stdout
    assert not list(empty.iterdir())  # a dry run writes nothing
