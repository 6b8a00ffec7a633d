"""maan report: one self-contained HTML file with the run's numbers and figures."""
from __future__ import annotations

import base64
import html
import json
import re

import pytest

from maan.evaluation.html_report import write_report
from maan.evaluation.report import _pct

from .test_figures import EXPECTED, build_tiny_run




@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = build_tiny_run(tmp_path_factory)
    path = write_report(run, log=None, max_points=500)  # makes the figures when missing
    return run, path, path.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    _, path, text = report
    assert path.name == "report.html" and text.startswith("<!DOCTYPE html>")
    assert not re.search(r"(https?|ftp)://", text, re.I), "external URL in the report"
    assert not re.search(r"<(script|link|iframe|object|embed)\b", text, re.I)
    assert "url(" not in text and "@import" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    # every embedded image decodes to a PNG
    for s in sources:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(sources) == len(EXPECTED)


def test_report_contains_the_table_values_of_results_json(report):
    run, _, text = report
    summary = json.loads((run / "results.json").read_text())
    body = html.unescape(text)
    n = 0
    for r in summary["runs"]:
        for model, entry in r["models"].items():
            m = entry["metrics"]
            for key in ("acc", "sen", "spe", "ppr"):
                assert _pct(m[key]) in body, (r["protocol"], r["target"], model, key)
                n += 1
    assert n >= 2 * 4 * 4


def test_report_says_what_data_seeds_and_versions(report):
    run, _, text = report
    summary = json.loads((run / "results.json").read_text())
    body = html.unescape(text)
    assert "<title>maan report — SYNTHETIC (maan synth, not AMIGOS)</title>" in body
    assert "SYNTHETIC DATA" in body
    for package, version in summary["versions"].items():
        assert f"<td>{package}</td><td>{version}</td>" in body
    assert "fold k uses seed + k" in body and '"epochs": 1' in body
    for heading in ("Table 1", "Protocol comparison", "Representation separation", "Figures", "Configuration"):
        assert heading in body
    metrics = json.loads((run / "figures" / "metrics.json").read_text())
    s = metrics["separation"][0]["silhouette"]
    assert f"{s['mean']:.3f} ± {s['std']:.3f}" in body
