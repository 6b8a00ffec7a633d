"""maan figures: the separation numbers, the saved test predictions, every figure file."""
from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

import maan
import maan.errors
from maan.evaluation import figures as F
from maan.evaluation.predictions import KEYS, load_predictions, predictions_path, run_predictions

TINY = {"epochs": 1, "patience": 1, "accelerator": "cpu", "batch_size": 64}
_CACHE: dict = {}


def build_tiny_run(tmp_path_factory):
    """A reproduce run (2 protocols x arousal x base/maan x 2 folds, 1 epoch) on ~250 windows,
    shared by the figure and report tests of one session (~5 s on 2 idle cores)."""
    if "run" not in _CACHE:
        from maan.evaluation.cv import run_reproduce

        root = tmp_path_factory.mktemp("figrun")
        maan.synth_cohort("amigos", root / "data", n_subjects=4, seed=3, short_seconds=(20, 40),
                          long_seconds=(60, 90))
        run_reproduce(root / "data", "amigos", root / "run", protocols=("segment-kfold", "subject-kfold"),
                      targets=("arousal",),
                      folds=2, config=TINY, progress=False, log=None, jobs=1)
        _CACHE["run"] = root / "run"
    return _CACHE["run"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return build_tiny_run(tmp_path_factory)


@pytest.fixture(scope="session")
def figured_run(tiny_run):
    if "figures" not in _CACHE:
        _CACHE["figures"] = F.make_figures(tiny_run, log=None, max_points=500)
    return tiny_run, _CACHE["figures"]


# -- the two numbers ---------------------------------------------------------------------------
def _fisher_reference(x, y):
    mu = x.mean(axis=0)
    s_b = np.zeros((x.shape[1], x.shape[1]))
    s_w = np.zeros_like(s_b)
    for c in np.unique(y):
        xc = x[y == c]
        d = (xc.mean(axis=0) - mu)[:, None]
        s_b += len(xc) * d @ d.T
        s_w += (len(xc) - 1) * np.cov(xc, rowvar=False)
    return np.trace(s_b) / np.trace(s_w)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silhouette_and_fisher_equal_references(seed):
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    x = rng.normal(size=(300, 16)) + 1.5 * y[:, None] * rng.normal(size=16)
    assert F.silhouette(x, y) == pytest.approx(silhouette_score(x, y), rel=1e-12)
    assert F.fisher_ratio(x, y) == pytest.approx(_fisher_reference(x, y), rel=1e-10)


def test_fisher_ratio_by_hand_and_edge_cases():
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    y = np.array([0, 0, 1, 1])
    assert F.fisher_ratio(x, y) == pytest.approx(100.0 / 4.0)  # S_B = 2*25 + 2*25, S_W = 4 * 1
    assert F.fisher_ratio(3 * x + 7, y) == pytest.approx(25.0)  # scale and shift invariant
    assert F.fisher_ratio(x, np.zeros(4)) is None and F.silhouette(x, np.zeros(4)) is None
    assert F.silhouette(x, y) == pytest.approx(
        np.mean([1 - 2 / 11, 1 - 2 / 9, 1 - 2 / 9, 1 - 2 / 11]))  # a_i = 2, b_i = mean distance to the other pair


def test_subsample_is_deterministic_and_bounded():
    a = F.subsample(5000, 300, seed=4)
    assert len(a) == 300 and np.all(np.diff(a) > 0) and np.array_equal(a, F.subsample(5000, 300, seed=4))
    assert np.array_equal(F.subsample(10, 300), np.arange(10))


# -- predictions saved by cv -------------------------------------------------------------------
def test_cv_saves_test_predictions(tiny_run):
    run = tiny_run / "segment-kfold" / "arousal"
    result = json.loads((run / "results.json").read_text())
    seen = []
    for k in range(result["folds"]):
        for model in ("base", "maan"):
            pred = load_predictions(predictions_path(run / "folds" / f"fold-{k:02d}", model))
            assert pred is not None
            n = len(pred["test_idx"])
            assert n == result["models"][model]["per_fold"][k]["n_test"]
            assert pred["representation"].shape[0] == n and pred["representation"].dtype == np.float32
            acc = float(np.mean((pred["score"] >= 0.5) == pred["y_true"]))
            assert acc == pytest.approx(result["models"][model]["per_fold"][k]["acc"])
            if model == "maan":
                assert set(KEYS) <= set(pred) and pred["a_ecg"].shape[0] == n
                assert 0 < pred["a_eeg"].min() and pred["a_eeg"].max() < 1
            else:
                assert "a_ecg" not in pred
        seen.append(pred["test_idx"])
    # the test folds partition the store
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(result["n_windows"]))


EXPECTED = [f"{kind}-{p}" for p in ("segment-kfold", "subject-kfold")
            for kind in ("tsne", "attention", "roc", "confusion", "learning")] + ["protocols"]


def _check_png(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] >= 300 and img.shape[1] >= 300, path
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05, f"{path} is nearly uniform"
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 20, f"{path} has too few colours"


def test_every_figure_is_written_and_non_trivial(figured_run):
    run, m = figured_run
    fig_dir = run / "figures"
    for stem in EXPECTED:
        _check_png(fig_dir / f"{stem}.png")
        svg = (fig_dir / f"{stem}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and len(svg) > 5000
    assert sorted(m["files"]) == sorted(str(fig_dir / f"{s}.{e}") for s in EXPECTED for e in ("png", "svg"))


def test_metrics_json_holds_separation_numbers(figured_run):
    run, _ = figured_run
    m = json.loads((run / "figures" / "metrics.json").read_text())
    assert m["data_label"].startswith("SYNTHETIC") and m["synthetic"] is True
    assert {"silhouette", "fisher_ratio"} <= set(m["definitions"])
    keys = {(s["protocol"], s["target"], s["model"]) for s in m["separation"]}
    assert keys == {(p, t, mod) for p in ("segment-kfold", "subject-kfold") for t in ("arousal",)
                    for mod in ("base", "maan")}
    # the numbers are those of the saved representations
    s = next(s for s in m["separation"] if s["protocol"] == "segment-kfold" and s["target"] == "arousal"
             and s["model"] == "maan")
    for k in range(2):
        pred = load_predictions(predictions_path(run / "segment-kfold" / "arousal" / "folds" / f"fold-{k:02d}", "maan"))
        pred = F.complete_windows(pred)  # representations of complete windows only
        assert s["silhouette"]["per_fold"][k] == pytest.approx(F.silhouette(pred["representation"], pred["y_true"]))
        assert s["fisher_ratio"]["per_fold"][k] == pytest.approx(F.fisher_ratio(pred["representation"], pred["y_true"]))
    att = {(a["protocol"], a["target"]) for a in m["attention"] if a["model"] == "maan"}
    assert len(att) == 2


def test_figure_titles_name_the_data(figured_run):
    run, _ = figured_run
    for stem in EXPECTED:
        svg = (run / "figures" / f"{stem}.svg").read_text()
        assert "SYNTHETIC (maan synth, not AMIGOS)" in svg, stem


def test_cli_help_and_figures_command(tiny_run, tmp_path, capsys):
    from maan.cli.report import add_commands

    parser = argparse.ArgumentParser(prog="maan")
    add_commands(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    for command in ("figures", "report"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([command, "--help"])
        assert exc.value.code == 0
        assert "RUN" in capsys.readouterr().out
    args = parser.parse_args(["figures", str(tiny_run / "subject-kfold" / "arousal"), "--out", str(tmp_path / "f"),
                              "--format", "png"])
    assert args.func(args) == 0
    assert (tmp_path / "f" / "tsne-subject-kfold.png").exists() and not list((tmp_path / "f").glob("*.svg"))


def test_complete_windows_keeps_the_windows_with_both_modalities():
    pred = {"y_true": np.array([0, 1, 1]), "score": np.array([0.1, 0.2, 0.3]),
            "representation": np.eye(3), "modality_mask": np.array([[1, 1], [0, 1], [1, 1]], bool)}
    kept = F.complete_windows(pred)
    assert kept["y_true"].tolist() == [0, 1] and kept["representation"].tolist() == [[1, 0, 0], [0, 0, 1]]
    assert F.complete_windows({"y_true": np.array([1])})["y_true"].tolist() == [1]  # no mask: every window
