"""End-to-end learning on synthetic cohorts whose labels are carried by the signals (slow)."""
import json

import pytest

from maan.evaluation.cv import DEMO_PRESET, run_cv, run_reproduce

FAST = {"epochs": 15, "patience": 4, "accelerator": "cpu"}


@pytest.mark.slow
def test_model_beats_chance_and_trial_kfold_is_not_higher(features, tmp_path):
    seg = run_cv(features, "arousal", tmp_path / "seg", models=("maan",), protocol="segment-kfold", folds=3,
                 config=FAST, progress=False, log=None)
    trial = run_cv(features, "arousal", tmp_path / "trial", models=("maan",), protocol="trial-kfold", folds=3,
                   config=FAST, progress=False, log=None)
    acc = seg["models"]["maan"]["metrics"]["acc"]["mean"]
    majority = seg["models"]["majority"]["metrics"]["acc"]["mean"]
    assert seg["models"]["maan"]["metrics"]["balanced_accuracy"]["mean"] > 0.70
    assert seg["models"]["maan"]["metrics"]["auc"]["mean"] > 0.80
    assert acc > majority + 0.10
    # windows of one trial share its label and its state: mixing them across folds can only help
    assert trial["models"]["maan"]["metrics"]["acc"]["mean"] <= acc + 0.02


@pytest.mark.slow
def test_reproduce_writes_table1_and_results(cohort_data, tmp_path, capsys):
    out = tmp_path / "run"
    summary = run_reproduce(cohort_data, "amigos", out, protocols=("segment-kfold", "subject-kfold"), folds=2,
                            config={"epochs": 2, "patience": 1, "accelerator": "cpu"}, progress=False)
    printed = capsys.readouterr().out
    table = (out / "table1.md").read_text()
    assert "SYNTHETIC (maan synth, not AMIGOS)" in table and "SYNTHETIC" in printed
    assert table.count("| (a-1) Basic model |") == 2 and table.count("| logistic (baseline) |") == 2
    results = json.loads((out / "results.json").read_text())
    assert results["synthetic"] is True and len(results["runs"]) == 4
    assert {(r["protocol"], r["target"]) for r in results["runs"]} == {
        (p, t) for p in ("segment-kfold", "subject-kfold") for t in ("arousal", "valence")}
    for run in results["runs"]:
        assert set(run["models"]) == {"base", "maan", "majority", "logistic", "hr-band"}
    # a second call finds everything done and only rewrites the summary
    again = run_reproduce(None, "amigos", out, protocols=("segment-kfold", "subject-kfold"), folds=2,
                          config={"epochs": 2, "patience": 1, "accelerator": "cpu"}, progress=False, log=None)
    assert again["runs"][0]["models"]["maan"]["metrics"] == summary["runs"][0]["models"]["maan"]["metrics"]
    assert DEMO_PRESET["folds"] >= 2
