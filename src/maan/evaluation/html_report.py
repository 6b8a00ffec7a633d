"""``maan report RUN``: one self-contained HTML file (``RUN/report.html``).

Everything is inline: CSS in a ``<style>`` element, figures as base64 PNG ``data:`` URIs, no
script, no font, no link to any other file or URL, so it opens offline in any browser. It
holds Table 1 (same cells as ``table1.md``), the protocol comparison, the representation
separation numbers (silhouette, Fisher ratio), the figures of :mod:`maan.evaluation.figures`
(made first when missing), the configuration, the data (real or SYNTHETIC), seeds and
package versions.
"""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from maan.preprocessing.io import atomic_write_bytes
from maan.evaluation.figures import BASELINE_NAMES, MODEL_LABELS, data_label_of, load_run, trained_models
from maan.evaluation.report import PAPER_TABLE1, ROW_NAMES, ROW_ORDER, _cells, _pct

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1250px;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #bbb;padding:.3em .6em;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
.banner{background:#fde8e8;border:2px solid #c0392b;color:#7b1d14;padding:.7em 1em;font-weight:600;margin:1em 0}
.real{background:#e8f4fd;border-color:#2471a3;color:#1b4f72}
figure{margin:1.2em 0;page-break-inside:avoid}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444;margin-top:.3em}pre{background:#f7f7f7;padding:.7em;overflow-x:auto;font-size:.85em}
.muted{color:#666;font-size:.9em}
"""

FIGURE_CAPTIONS = {
    "protocols": "Accuracy under each cross-validation protocol (mean ± std over folds, dots are folds). "
                 "segment-kfold puts windows of the same trial (and subject) in training and test; the drop to "
                 "trial- and subject-kfold is the leakage gap.",
    "tsne": "t-SNE of the fused, learned representation (test windows of one fold), base vs proposed, "
            "coloured by true class (the paper's Figure 2). Silhouette and Fisher ratio in the panel titles are "
            "computed on the representation itself, not on the 2-D embedding.",
    "attention": "Fusion-attention masks of the proposed model: per-window mean A_ecg / A_eeg by class (test "
                 "windows of every fold), and the mean mask per channel (test windows of the t-SNE fold: channels "
                 "of different folds' models are unrelated). The masks weight learned U-Net feature "
                 "channels (after pooling over time / electrodes x sub-windows), so there is no per-electrode or "
                 "per-band view of them.",
    "roc": "ROC curves of every fold on its test windows.",
    "confusion": "Confusion matrices (window counts, summed over folds; rows true class, columns predicted).",
    "learning": "Learning curves per fold: training and inner-validation loss and accuracy per epoch (Lightning CSV "
                "logs). Early stopping restores the best validation-loss epoch.",
}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</table>")
    return "\n".join(out)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'


def _table1(summary: dict, subs) -> str:
    runs = [r for _, r in subs]
    targets = list(dict.fromkeys(r["target"] for r in runs))
    protocols = list(dict.fromkeys(r["protocol"] for r in runs))
    header = ["Classifier"] + [f"{t.capitalize()} {c}" for t in targets for c in ("ACC", "SEN & SPE", "PPR")]
    parts = []
    for protocol in protocols:
        pruns = [r for r in runs if r["protocol"] == protocol]
        by_target = {r["target"]: r for r in pruns}
        folds = "/".join(str(f) for f in sorted({r["folds"] for r in pruns}))
        present = {m for r in pruns for m in r.get("models", {})}
        rows = [[ROW_NAMES.get(m, m)] + [c for t in targets for c in _cells(by_target.get(t), m)]
                for m in ROW_ORDER if m in present]
        parts.append(f"<h3>{_e(protocol)} ({_e(folds)} folds)</h3>\n" + _table(header, rows))
    paper = [[f"{ROW_NAMES[m]}, paper"] + [f"{v:.2f}" for t in ("arousal", "valence") for v in row[t]]
             for m, row in PAPER_TABLE1.items()]
    parts.append("<h3>For reference: the paper's Table 1 (AMIGOS, 10-fold CV over segments)</h3>\n" + _table(
        ["Classifier"] + [f"{t} {c}" for t in ("Arousal", "Valence") for c in ("ACC", "SEN & SPE", "PPR")], paper))
    return ("<p>Mean ± std over folds, in %. SEN &amp; SPE cell: SEN / SPE. Baselines use the same folds.</p>\n"
            + "\n".join(parts))


def _protocol_table(subs) -> str:
    runs = [r for _, r in subs]
    targets = list(dict.fromkeys(r["target"] for r in runs))
    protocols = list(dict.fromkeys(r["protocol"] for r in runs))
    models = list(dict.fromkeys(m for r in runs for m in trained_models(r))) + list(BASELINE_NAMES)
    by = {(r["protocol"], r["target"]): r for r in runs}
    header = ["model"] + [f"{t} ACC, {p}" for t in targets for p in protocols]
    gap = len(protocols) > 1 and protocols[0] == "segment-kfold"
    if gap:
        header += [f"{t}: {protocols[0]} − {protocols[-1]} (points)" for t in targets]
    rows = []
    for m in models:
        row = [MODEL_LABELS.get(m, m)]
        for t in targets:
            for p in protocols:
                entry = by.get((p, t), {}).get("models", {}).get(m)
                row.append(_pct(entry["metrics"].get("acc")) if entry else "")
        if gap:
            for t in targets:
                a = by.get((protocols[0], t), {}).get("models", {}).get(m)
                b = by.get((protocols[-1], t), {}).get("models", {}).get(m)
                try:
                    row.append(f"{100 * (a['metrics']['acc']['mean'] - b['metrics']['acc']['mean']):+.1f}")
                except (TypeError, KeyError):
                    row.append("")
        rows.append(row)
    return ("<p>Test accuracy (%), mean ± std over folds, for the same data under each protocol.</p>\n"
            + _table(header, rows))


def _separation_table(metrics: dict) -> str:
    def f(stat):
        if not stat or stat.get("mean") is None:
            return "n/a"
        return f"{stat['mean']:.3f} ± {stat['std']:.3f}"

    rows = [[s["protocol"], s["target"], MODEL_LABELS.get(s["model"], s["model"]), f(s["silhouette"]),
             f(s["fisher_ratio"]), str(s.get("representation_size", ""))] for s in metrics.get("separation", [])]
    if not rows:
        return "<p class=muted>No test predictions were available for these numbers.</p>"
    defs = metrics.get("definitions", {})
    return (_table(["protocol", "target", "model", "silhouette", "Fisher ratio", "dimensions"], rows)
            + f"<p class=muted>Mean ± std over folds, each on that fold's test windows. Silhouette: "
              f"{_e(defs.get('silhouette', ''))}. Fisher ratio: {_e(defs.get('fisher_ratio', ''))}. Larger is "
              "better separated for both.</p>")


def _figures(fig_dir: Path) -> str:
    pngs = sorted(fig_dir.glob("*.png"))
    order = ("protocols", "tsne", "attention", "roc", "confusion", "learning")

    def key(p):
        stem = p.stem
        kind = next((i for i, k in enumerate(order) if stem == k or stem.startswith(k + "-")), len(order))
        return kind, stem

    parts = []
    for p in sorted(pngs, key=key):
        kind = next((k for k in order if p.stem == k or p.stem.startswith(k + "-")), None)
        caption = f"<b>{_e(p.stem)}</b>. {_e(FIGURE_CAPTIONS.get(kind, ''))}"
        parts.append(f"<figure id=\"fig-{_e(p.stem)}\">{_img(p)}<figcaption>{caption}</figcaption></figure>")
    return "\n".join(parts) or "<p class=muted>No figures.</p>"


def build_report(run, figures_dir=None) -> str:
    """The HTML text of the report of ``run`` (figures read from ``figures_dir``)."""
    run = Path(run)
    summary, subs = load_run(run)
    fig_dir = Path(figures_dir) if figures_dir is not None else run / "figures"
    try:
        metrics = json.loads((fig_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}
    label = data_label_of(summary)
    synthetic = bool(summary.get("synthetic", subs[0][1].get("synthetic") if subs else False))
    first = subs[0][1] if subs else {}
    title = f"maan report — {label}"
    banner = (f'<div class="banner">SYNTHETIC DATA: every number and figure here comes from a cohort generated by '
              f'<code>maan synth</code> ({_e(label)}); it says nothing about AMIGOS or DREAMER.</div>' if synthetic
              else f'<div class="banner real">Data: {_e(label)} (real recordings).</div>')
    balance = [[r["protocol"], r["target"], str(r["class_balance"]["high"]), str(r["class_balance"]["low"]),
                f"{100 * r['class_balance']['high_fraction']:.1f}%"] for _, r in subs if r.get("class_balance")]
    dataset_rows = [
        ["data", label], ["synthetic", "yes" if synthetic else "no"],
        ["dataset format", summary.get("dataset", first.get("dataset", "?"))],
        ["feature store", summary.get("features", first.get("features")) or "(in memory)"],
        ["windows", first.get("n_windows", "?")], ["subjects", first.get("n_subjects", "?")],
        ["seed (folds, weights, batches; fold k uses seed + k)", summary.get("seed", first.get("seed"))],
        ["t-SNE / subsampling seed", metrics.get("seed", "n/a")],
        ["protocols", ", ".join(dict.fromkeys(r["protocol"] for _, r in subs))],
        ["folds", ", ".join(f"{r['protocol']}: {r['folds']}" for _, r in subs if r["target"] == first.get("target"))],
        ["normalisation", summary.get("normalize", first.get("normalize"))],
    ]
    versions = summary.get("versions", first.get("versions", {}))
    config = {"training": summary.get("training", first.get("training", {})),
              "models": list(dict.fromkeys(m for _, r in subs for m in trained_models(r)))}
    specs = {}
    for folder, r in subs:
        try:
            specs[f"{r['protocol']}/{r['target']}"] = json.loads((folder / "run.json").read_text()).get("spec")
        except (OSError, ValueError):
            pass
    notes = "".join(f"<li>{_e(n)}</li>" for n in metrics.get("notes", []))
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class=muted>Run folder {_e(run.resolve())}; report written {_e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))} by maan
{_e(versions.get('maan', ''))}. Implements <i>Deep Multimodal Emotion Recognition using Modality Aware Attention
Network</i> (Woo et al., NeurIPS 2023 workshop).</p>
{banner}
<h2>Table 1: classification performance</h2>
{_table1(summary, subs)}
<h2>Protocol comparison (the leakage gap)</h2>
{_protocol_table(subs)}
<h2>Representation separation (paper 4.2)</h2>
{_separation_table(metrics)}
{f'<ul class=muted>{notes}</ul>' if notes else ''}
<h2>Figures</h2>
{_figures(fig_dir)}
<h2>Data</h2>
{_table(['', ''], [[str(k), str(v)] for k, v in dataset_rows])}
<h3>Class balance</h3>
{_table(['protocol', 'target', 'high', 'low', 'high fraction'], balance)}
<h2>Configuration</h2>
<pre>{_e(json.dumps(config, indent=2))}</pre>
<details><summary>Run specifications (run.json of every cross-validation)</summary>
<pre>{_e(json.dumps(specs, indent=2))}</pre></details>
<h2>Package versions</h2>
{_table(['package', 'version'], [[k, str(v)] for k, v in versions.items()])}
</body></html>
"""
    return body


def write_report(run, out=None, *, figures: bool | str = "missing", log=print, **figure_kwargs) -> Path:
    """Write ``out`` (default ``RUN/report.html``); ``figures``: "missing" makes them when
    ``RUN/figures/metrics.json`` is absent, True always remakes them, False uses what is there."""
    from maan.evaluation.figures import make_figures

    run = Path(run)
    fig_dir = run / "figures"
    if figures is True or (figures == "missing" and not (fig_dir / "metrics.json").exists()):
        make_figures(run, fig_dir, log=log, **figure_kwargs)
    out = Path(out) if out is not None else run / "report.html"
    atomic_write_bytes(out, build_report(run, fig_dir).encode("utf-8"))
    if log is not None:
        log(f"report: {out}")
    return out
