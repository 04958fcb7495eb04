"""Benchmark your own model: timm models and module:function factories, their families and complexity."""
from __future__ import annotations

import json
import tomllib
import warnings
from pathlib import Path

import optuna
import pytest
import torch
import torchvision
from optuna.trial import TrialState

import bench
from bench import models
from bench.cli import main
from bench.complexity import UncountedWarning
from bench.core import models as registry, studies
from bench.runner import storage
from bench.runner.specs import Overrides, expand

ROOT = Path(__file__).resolve().parents[2]
TIMM_MODEL = "test_resnet"  # timm's tiny ResNet (0.4 M params): 1 epoch of 256 images at 32 px in seconds
USER_MODULE = '''
import timm.layers
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """The user's own attention: F.scaled_dot_product_attention, which complexity cannot count."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class TinyNet(nn.Module):
    """4x4 patches of width 32, one attention block, mean pool, linear head."""

    def __init__(self, num_classes, img_size, attention):
        super().__init__()
        self.img_size = img_size
        self.stem = nn.Conv2d(3, 32, 4, 4)
        self.attn = attention
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        return self.head((x + self.attn(x)).mean(1))


def tiny_net(num_classes, img_size=32):
    return TinyNet(num_classes, img_size, SelfAttention(32, 2))


def timm_attention_net(num_classes, img_size=32):
    return TinyNet(num_classes, img_size, timm.layers.Attention(32, 2, qkv_bias=True))


def convnet(num_classes):
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, num_classes))


def not_a_model(num_classes):
    return "resnet18"
'''
# tiny_net at 32 px, 10 classes: stem 8*8*32 outputs x 48, qkv 64 tokens x 96 x 32, proj 64 x 32 x 32, head 32 x 10
TINY_NET_MACS = 8 * 8 * 32 * 48 + 64 * 96 * 32 + 64 * 32 * 32 + 32 * 10
TINY_NET_ATTENTION_MACS = 2 * 64 * 64 * 32  # QK^T and attn @ V of 64 tokens, width 32


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A directory holding ``mynet.py`` (the user's factories), made the cwd, as a user would run bench."""
    (tmp_path / "mynet.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # jobs find mynet only through the runner's cwd
    return tmp_path


def _close(measured, published, rel):
    """Within ``rel`` of the published value, or within half a unit of its last digit (0.1)."""
    return abs(measured - published) <= max(rel * published, 0.05)


@pytest.mark.parametrize("name, gmacs, params_m", [
    ("resnet18", 1.82, 11.69),  # torchvision's model table
    ("deit_tiny_patch16_224", 1.3, 5.7),  # DeiT paper, Table 1
])
def test_timm_model_complexity_matches_published(name, gmacs, params_m):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncountedWarning)  # timm Attention (DeiT) is counted
        cx = bench.complexity(name)
    assert models.default_resolution(name) == 224
    assert _close(cx["params"] / 1e6, params_m, 0.005), cx
    assert _close(cx["flops"] / 1e9, gmacs, 0.01), cx


def test_timm_model_at_32_px():
    vit = models.create("deit_tiny_patch16_224", num_classes=10, img_size=32).eval()
    assert vit.pos_embed.shape[1] == 1 + 2 * 2  # sized to the input
    resnet = models.create("resnet18", num_classes=10, img_size=32).eval()  # takes no img_size: built without
    with torch.no_grad():
        for net in (vit, resnet):
            assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert registry.family("resnet18") is None and registry.family("vitc_mini") == "vit"


def test_factory_is_built_with_num_classes_and_img_size(user_dir):
    net = models.create("mynet:tiny_net", num_classes=7, img_size=64)
    assert net.img_size == 64 and net.head.out_features == 7
    assert models.create("mynet:convnet", num_classes=3, img_size=64)[-1].out_features == 3
    assert models.default_resolution("mynet:tiny_net") == 32  # its img_size default
    assert models.default_resolution("mynet:convnet") == 224


@pytest.mark.parametrize("name, message", [
    ("nope", "unknown model 'nope'; valid models: vitp_1gf.*regnety_mini, any timm model name.*module:function"),
    ("no_such_module:net", "cannot import model factory 'no_such_module:net': No module named 'no_such_module'"),
    ("mynet:missing", "cannot import model factory 'mynet:missing'.*has no attribute 'missing'"),
    ("mynet:not_a_model", "model factory 'mynet:not_a_model' returned str, not an nn.Module"),
])
def test_bad_names_say_why(user_dir, name, message):
    with pytest.raises(bench.UnknownModelError, match=message):
        models.create(name)


def test_uncounted_attention_is_named(user_dir):
    with pytest.warns(UncountedWarning, match=r"scaled_dot_product_attention in SelfAttention \(attn\)"):
        cx = bench.complexity("mynet:tiny_net", 32, num_classes=10)
    assert cx["flops"] == TINY_NET_MACS  # everything but the attention matmuls
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncountedWarning)
        assert bench.complexity("mynet:timm_attention_net", 32, num_classes=10)["flops"] == \
            TINY_NET_MACS + TINY_NET_ATTENTION_MACS


def test_uncounted_torch_multihead_attention_is_named():
    vit = torchvision.models.VisionTransformer(32, 8, 2, 2, 16, 32, num_classes=10)
    with pytest.warns(UncountedWarning, match=r"multi_head_attention_forward in MultiheadAttention "
                                              r"\(encoder.layers.encoder_layer_0.self_attention, "):
        bench.complexity(vit, 32)


def test_bench_models_any_name(user_dir, capsys):
    assert main(["models", "--json", "--res", "32", "--name", "deit_tiny_patch16_224", "mynet:tiny_net"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [(r["name"], r["resolution"], r["family"]) for r in rows] == [
        ("deit_tiny_patch16_224", 32, None), ("mynet:tiny_net", 32, None)]
    assert rows[1]["gflops"] * 1e9 == pytest.approx(TINY_NET_MACS - 32 * 10 + 32 * 1000)  # 1000 classes
    assert "warning: mynet:tiny_net:" in out.err and "SelfAttention (attn)" in out.err
    assert "deit" not in out.err
    assert main(["models", "--name", "nope"]) == 2
    assert "any timm model name" in capsys.readouterr().err


# --- which lr/wd ranges a model takes ---------------------------------------------------------------------

def _study(**extra) -> studies.Study:
    raw = tomllib.loads(studies.load("lr_wd").path.read_text())
    for key, table in extra.items():
        raw[key] = {**raw.get(key, {}), **table}
    return studies.parse(raw, name="lr_wd")


def _families(study, **ov) -> dict:
    specs = expand(study, Overrides(trials=1, epochs=(1,), **ov))
    return {s.cfg.model: s.family for s in specs}


def test_family_comes_from_flag_then_study_table():
    custom = {"convnet": {"adamw": {"lr": [1e-3, 1e-2], "wd": [0.01, 0.1]}, "sgd": {"lr": [0.1, 1.0], "wd": [1e-5, 1e-4]}}}
    study = _study(ranges=custom, families={"resnet18": "convnet"})
    both = ("resnet18", "vitp_mini")
    assert _families(study, models=both) == {"resnet18": "convnet", "vitp_mini": "vit"}
    assert _families(study, models=both, family="regnety") == {"resnet18": "regnety", "vitp_mini": "vit"}
    specs = expand(study, Overrides(models=("resnet18",), optimizers=("sgd",), trials=3, epochs=(1,)))
    assert all(0.1 <= s.cfg.lr <= 1.0 and 1e-5 <= s.cfg.wd <= 1e-4 for s in specs)  # the custom family's ranges (SGD x1)


def test_no_family_is_an_error_listing_the_study_families():
    with pytest.raises(studies.StudyError, match=r"'resnet18' has no lr/wd ranges.*--family.*\[families\].*"
                                                 r"its families: vit, regnety"):
        _families(_study(), models=("resnet18",))
    with pytest.raises(studies.StudyError, match="no family 'convnet'; it defines: vit, regnety"):
        _families(_study(), models=("resnet18",), family="convnet")


def test_study_families_table_is_checked():
    with pytest.raises(studies.StudyError, match=r"\[families\] resnet18 = 'convnet' is not a family of \[ranges\]"):
        _study(families={"resnet18": "convnet"})
    with pytest.raises(studies.StudyError, match="gives 'vitp_mini' family 'regnety', but bench's 'vitp_mini' is a 'vit'"):
        _families(_study(families={"vitp_mini": "regnety"}), models=("vitp_mini",))
    with pytest.raises(studies.StudyError, match="unknown model 'resnet_nope'.*any timm model name"):
        _families(_study(), models=("resnet_nope",), family="vit")


# --- real trainings and studies ---------------------------------------------------------------------------

def _train(argv, tmp_path, capsys) -> dict:
    assert main(["train", *argv, "--lr", "3e-3", "--wd", "0.05", "--epochs", "1", "--batch-size", "32",
                 "--data", "synthetic:256", "--out", str(tmp_path / "trial"), "--json"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


@pytest.mark.slow
def test_train_timm_model_one_epoch(tmp_path, capsys):
    r = _train(["--model", TIMM_MODEL, "--res", "32"], tmp_path, capsys)
    assert r["epochs_done"] == 1 and not r["diverged"] and 0 <= r["error"] <= 100
    assert r["resolution"] == 32 and r["params_m"] == bench.complexity(TIMM_MODEL, 32, num_classes=10)["params"] / 1e6


@pytest.mark.slow
def test_train_factory_one_epoch(user_dir, capsys):
    r = _train(["--model", "mynet:tiny_net"], user_dir, capsys)  # resolution: the factory's img_size default
    assert r["epochs_done"] == 1 and not r["diverged"] and 0 <= r["error"] <= 100
    assert r["resolution"] == 32 and r["gflops"] * 1e9 == TINY_NET_MACS


def _run_study(argv, results: Path) -> list:
    assert main(["run", *argv, "--trials", "2", "--epochs", "1", "--data", "synthetic:256", "--parallel", "2",
                 "--results", str(results), "--no-estimate", "--no-progress"]) == 0
    store = storage.Store.open(next(results.glob("*/optuna.journal")), create=False).optuna
    return [(s, optuna.load_study(study_name=s.study_name, storage=store).get_trials())
            for s in optuna.get_all_study_summaries(store, include_best_trial=False)]


@pytest.mark.slow
def test_study_of_timm_model_with_study_families(tmp_path):
    study = tmp_path / "own.toml"
    study.write_text(f'''
epochs = [50]
models = ["{TIMM_MODEL}"]
[families]
{TIMM_MODEL} = "convnet"
[ranges.convnet]
adamw = {{ lr = [1e-3, 1e-2], wd = [0.01, 0.1] }}
sgd = {{ lr = [0.1, 1.0], wd = [1e-5, 1e-4] }}
[budgets.local]
data = "synthetic"
''')
    found = _run_study(["--study", str(study), "--res", "32"], tmp_path / "results")
    assert sorted(s.user_attrs["optimizer"] for s, _ in found) == ["adamw", "sgd"]
    for s, trials in found:
        assert s.user_attrs["model"] == TIMM_MODEL and s.user_attrs["family"] == "convnet"
        assert len(trials) == 2 and {t.state for t in trials} == {TrialState.COMPLETE}
        lo, hi = s.user_attrs["space"]["lr"]
        assert all(lo <= t.params["lr"] <= hi and t.user_attrs["resolution"] == 32 for t in trials)
        assert (lo, hi) == ((1e-3, 1e-2) if s.user_attrs["optimizer"] == "adamw" else (0.1, 1.0))


@pytest.mark.slow
def test_study_of_factory_with_family_flag(user_dir):
    found = _run_study(["--study", "lr_wd", "--budget", "local", "--models", "mynet:tiny_net", "--family", "vit"],
                       user_dir / "results")  # jobs are subprocesses: they import mynet from the submitting cwd
    assert len(found) == 2
    vit = studies.load("lr_wd")
    for s, trials in found:
        opt = s.user_attrs["optimizer"]
        assert s.user_attrs["family"] == "vit"
        assert s.user_attrs["space"]["lr"] == [v * vit.budget("local").lr_factor("vit", opt) for v in vit.window("vit", opt).lr]
        assert len(trials) == 2 and {t.state for t in trials} == {TrialState.COMPLETE}
        assert all(t.user_attrs["gflops"] * 1e9 == TINY_NET_MACS for t in trials)


def test_plan_says_whether_a_model_pairs_with_the_reference(tmp_path, capsys):
    """The committed reference trained at 32 px: a timm model left at its own resolution (known only when
    built, which the plan does not do) does not pair; at --res 32 it does."""
    argv = ["run", "--study", "lr_wd", "--budget", "local", "--models", TIMM_MODEL, "--family", "vit", "--trials", "4",
            "--dry-run", "--no-estimate", "--results", str(tmp_path)]
    assert main([*argv, "--reference", "lr_wd_local"]) == 0
    assert (f"reference lr_wd_local: does not pair ({TIMM_MODEL} train at their own resolution, known only when built: "
            "pass --res 32 to pair)") in capsys.readouterr().out
    assert main([*argv, "--res", "32"]) == 0
    assert "reference lr_wd_local: pairs (same draws, epochs and data)" in capsys.readouterr().out


def _versus_rows(html: str) -> int:
    table = html.split('id="versus"', 1)[1].split("</table>", 1)[0]
    return table.count("<tr>") - 1  # less the header row


@pytest.mark.slow
def test_own_models_against_a_reference_study(user_dir, monkeypatch, capsys):
    """A reference study (vitc_mini) and, on the same draws, a timm model and a factory: the plan says
    they pair, the report lays the reference's trials beside theirs with the paired tests, and a study
    on other draws is refused with the reason. No reference model is retrained."""
    from analysis import reference

    small = ["--budget", "local", "--trials", "2", "--epochs", "1", "--data", "synthetic:256", "--res", "32",
             "--parallel", "2", "--no-estimate", "--no-progress"]
    ref_root = user_dir / "reference"
    assert main(["run", "--study", "lr_wd", "--models", "vitc_mini", *small, "--results", str(ref_root / "runs")]) == 0
    assert main(["export", "--study", "lr_wd", "--results", str(ref_root / "runs"),
                 "--out", str(ref_root / "lr_wd_local" / "trials.csv")]) == 0
    monkeypatch.setattr(reference, "REFERENCE_DIR", ref_root)  # where committed references live
    capsys.readouterr()
    assert main(["run", "--study", "lr_wd", "--models", TIMM_MODEL, "mynet:tiny_net", "--family", "vit", *small,
                 "--results", str(user_dir / "results")]) == 0
    assert "reference lr_wd_local: pairs (same draws, epochs and data)" in capsys.readouterr().out
    out = user_dir / "report.html"
    assert main(["report", "--study", "lr_wd", "--results", str(user_dir / "results"), "--reference", "lr_wd_local",
                 "--out", str(out)]) == 0
    html = out.read_text()
    assert 'id="reference"' in html and _versus_rows(html) == 2 * 1 * 2  # 2 models x 1 reference x 2 optimizers
    assert "test_resnet vs vitc_mini (adamw, 2 paired points)" in html

    capsys.readouterr()
    other = [a if a != "2" else "1" for a in small]  # one point, on another sampling seed
    assert main(["run", "--study", "lr_wd", "--models", "mynet:tiny_net", "--family", "vit", "--optimizer", "adamw",
                 "--seed", "1", *other, "--results", str(user_dir / "seed1"), "--reference", "lr_wd_local"]) == 0
    assert "does not pair (different sampling seed: 1 here, 0 in the reference)" in capsys.readouterr().out
    assert main(["report", "--study", "lr_wd", "--results", str(user_dir / "seed1"), "--reference", "lr_wd_local",
                 "--out", str(user_dir / "refused.html")]) == 2
    assert "does not pair with reference lr_wd_local: different sampling seed: 1 here, 0 in the reference" in capsys.readouterr().err
    assert not (user_dir / "refused.html").exists()
