"""Figures of a CV run (``maan cv``) or a Table 1 run (``maan reproduce`` / ``maan demo``).

``make_figures(RUN)`` writes PNG and SVG files into ``RUN/figures/`` (Matplotlib, Agg, no
pyplot state) and ``RUN/figures/metrics.json``:

* ``tsne-PROTOCOL`` — t-SNE (scikit-learn, seed fixed) of the fused, learned representation
  (without the pooled inputs of ``input_skip``), for the test windows of one fold (default the first: one trained model, one
  representation space; pooling folds would mix spaces), base vs proposed, per target,
  coloured by class (the paper's Figure 2 a-4/a-5 vs b-4/b-5);
* ``attention-PROTOCOL`` — the fusion-attention masks of models that have them: per-window
  mean A_ecg and mean A_eeg by class, and the mean mask per channel by class (test windows of
  every fold, each window once; per channel: one fold, as channels of different folds' models
  are unrelated). The masks weight the U-Net's *learned feature channels*
  after pooling, so they have no electrode or band axis to plot;
* ``roc-PROTOCOL`` (per fold), ``confusion-PROTOCOL`` (summed over folds),
  ``learning-PROTOCOL`` (train/validation loss and accuracy per epoch, from Lightning's CSV
  logs; the training accuracy only where it was logged);
* ``protocols`` — accuracy under each protocol (segment-, trial-, subject-kfold) for every
  trained model and the majority baseline: the leakage gap.

The t-SNE, attention and separation figures use the windows with both modalities valid only (a
missing modality's feature block and attention mask describe no signal); ROC and confusion use
every test window.

Two numbers quantify the paper's claim that attention separates the classes ("margin
enhancement and variance reduction"), computed on the representation itself (not on the 2-D
t-SNE embedding), per fold, on all test windows of the fold (a deterministic subsample of at
most ``max_points``):

* silhouette: ``sklearn.metrics.silhouette_score`` (Euclidean), in [-1, 1];
* Fisher ratio: ``trace(S_B) / trace(S_W)`` with ``S_B = sum_c n_c (mu_c - mu)(mu_c - mu)^T``
  and ``S_W = sum_c sum_{i in c} (x_i - mu_c)(x_i - mu_c)^T`` (between- over within-class
  scatter, i.e. between- over within-class variance summed over dimensions; 0 when the class
  means coincide, larger is better separated; invariant to a uniform rescaling).

Every figure title names the data (``SYNTHETIC (maan synth, not AMIGOS)`` for synthetic runs).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from maan.errors import MaanError
from maan.preprocessing.io import atomic_write_bytes, atomic_write_json

BASELINE_NAMES = ("majority", "logistic", "hr-band")
MODEL_ORDER = ("base", "maan", "ecg-only", "eeg-only")
MODEL_LABELS = {"base": "(a) base model", "maan": "(b) proposed MAAN", "ecg-only": "ECG-only model",
                "eeg-only": "EEG-only model", "majority": "majority baseline", "logistic": "logistic baseline",
                "hr-band": "HR + band power baseline"}
CLASS_COLORS = ("#1f77b4", "#d62728")  # low, high
MODEL_COLORS = {"base": "#7f7f7f", "maan": "#1f77b4", "ecg-only": "#2ca02c", "eeg-only": "#9467bd",
                "majority": "#ffffff", "logistic": "#ff7f0e", "hr-band": "#ffbb78"}
PROTOCOL_NOTES = {"segment-kfold": "windows", "trial-kfold": "trials held out", "subject-kfold": "subjects held out",
                  "loso": "one subject out"}
FORMATS = ("png", "svg")
DEFINITIONS = {
    "silhouette": "sklearn.metrics.silhouette_score (Euclidean) of the fused, learned representation "
                  "(not the 2-D t-SNE embedding), labels = true class; per fold on its test windows",
    "fisher_ratio": "trace(S_B) / trace(S_W), S_B = sum_c n_c (mu_c - mu)(mu_c - mu)^T, "
                    "S_W = sum_c sum_{i in c} (x_i - mu_c)(x_i - mu_c)^T, on the same representation",
    "tsne": "sklearn.manifold.TSNE(n_components=2, init='pca', learning_rate='auto', perplexity=min(30, (n - 1) / 3), "
            "random_state=seed, Barnes-Hut, one thread) on the test windows of one fold",
}


# -- the two separation numbers ---------------------------------------------------------------
def fisher_ratio(x, y) -> float | None:
    """trace(S_between) / trace(S_within) of rows ``x`` with class labels ``y`` (None if undefined)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    classes = np.unique(y)
    if x.ndim != 2 or len(classes) < 2 or len(x) != len(y):
        return None
    mu = x.mean(axis=0)
    between = within = 0.0
    for c in classes:
        xc = x[y == c]
        mc = xc.mean(axis=0)
        between += len(xc) * float(np.sum((mc - mu) ** 2))
        within += float(np.sum((xc - mc) ** 2))
    if within <= 0.0:
        return math.inf if between > 0 else None
    return between / within


def silhouette(x, y) -> float | None:
    """``sklearn.metrics.silhouette_score(x, y)`` (Euclidean), None when undefined (one class)."""
    from sklearn.metrics import silhouette_score

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    n_labels = len(np.unique(y))
    if len(x) < 3 or not 2 <= n_labels <= len(x) - 1:
        return None
    return float(silhouette_score(x, y, metric="euclidean"))


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of ``n`` rows (deterministic)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def tsne_embedding(x, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 4:
        return np.zeros((n, 2))
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, max(1.0, (n - 1) / 3.0)))
    # one thread: Barnes-Hut's OpenMP loop is far slower with 2 threads on a busy 2-core machine
    # (it spins while the other core works), and the result does not change
    with threadpool_limits(1):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                    random_state=seed).fit_transform(x)


def _stat(values) -> dict:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return {"per_fold": [None if v is None else float(v) for v in values],
            "mean": float(np.mean(vals)) if vals else None, "std": float(np.std(vals)) if vals else None}


# -- run loading ------------------------------------------------------------------------------
def load_run(run) -> tuple[dict, list[tuple[Path, dict]]]:
    """(summary, [(cv run folder, its results.json)]) of a reproduce or a single cv run."""
    run = Path(run)
    path = run / "results.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise MaanError(f"{run}: no results.json; is this a finished `maan cv` / `maan reproduce` run?") from None
    except ValueError as exc:
        raise MaanError(f"{path}: corrupt results ({exc})") from exc
    if "runs" in summary:
        subs = []
        for r in summary["runs"]:
            folder = run / r["protocol"] / r["target"]
            if not folder.exists() and r.get("run_dir"):
                folder = Path(r["run_dir"])
            subs.append((folder, r))
        return summary, subs
    if "models" in summary:
        return summary, [(run, summary)]
    raise MaanError(f"{path}: neither a cv nor a reproduce results file")


def trained_models(result: dict) -> list[str]:
    present = [m for m in result.get("models", {}) if m not in BASELINE_NAMES]
    return sorted(present, key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else 99)


def data_label_of(summary: dict) -> str:
    label = summary.get("data_label")
    if not label and summary.get("runs"):
        label = summary["runs"][0].get("data_label")
    return label or "unknown data"


def read_learning_curve(path) -> dict[str, dict[int, float]]:
    """{column: {epoch: value}} from a Lightning CSV log (last value per epoch)."""
    curves: dict[str, dict[int, float]] = {}
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    epoch = int(float(row.get("epoch", "")))
                except ValueError:
                    continue
                for key, value in row.items():
                    if key in ("epoch", "step") or value in (None, ""):
                        continue
                    try:
                        curves.setdefault(key, {})[epoch] = float(value)
                    except ValueError:
                        pass
    except OSError:
        return {}
    return curves


# -- drawing helpers --------------------------------------------------------------------------
def _figure(n_rows: int, n_cols: int, width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    return fig, axes


def _title(fig, title: str, label: str) -> None:
    fig.suptitle(f"{title}\ndata: {label}", fontsize=12)


def save_figure(fig, out_dir, name: str, formats=FORMATS) -> list[Path]:
    """Write ``name.png`` / ``name.svg`` atomically (no software metadata); the paths written."""
    import matplotlib

    out_dir = Path(out_dir)
    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        metadata = {"Software": None} if fmt == "png" else {"Creator": None}
        # SVG text stays text (searchable, editable, smaller); fixed ids for reproducible files
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "maan"}):
            fig.savefig(buffer, format=fmt, dpi=110, metadata=metadata)
        path = out_dir / f"{name}.{fmt}"
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    return written


def _class_names(target: str) -> tuple[str, str]:
    return f"low {target}", f"high {target}"


def _fmt(v, digits=3) -> str:
    return "n/a" if v is None else (f"{v:.{digits}f}" if np.isfinite(v) else "inf")


def plot_tsne(panels: dict, targets: list[str], models: list[str], label: str, protocol: str, fold: int):
    """``panels[(target, model)] = {"xy", "y", "silhouette", "fisher"}`` -> Figure."""
    fig, axes = _figure(len(targets), len(models), 4.4, 4.0)
    for i, target in enumerate(targets):
        for j, model in enumerate(models):
            ax = axes[i, j]
            panel = panels.get((target, model))
            if panel is None:
                ax.set_axis_off()
                ax.text(0.5, 0.5, "no predictions", ha="center", va="center", transform=ax.transAxes)
                continue
            for c, name in enumerate(_class_names(target)):
                rows = panel["y"] == c
                ax.scatter(panel["xy"][rows, 0], panel["xy"][rows, 1], s=9, alpha=0.7, color=CLASS_COLORS[c],
                           label=f"{name} (n={int(rows.sum())})", linewidths=0)
            ax.set_title(f"{MODEL_LABELS.get(model, model)} — {target}\n"
                         f"silhouette {_fmt(panel['silhouette'])} · Fisher ratio {_fmt(panel['fisher'])}",
                         fontsize=10)
            ax.set_xlabel("t-SNE 1 (arbitrary units)")
            ax.set_ylabel("t-SNE 2 (arbitrary units)")
            ax.legend(loc="best", fontsize=8, markerscale=1.5, framealpha=0.8)
    _title(fig, f"t-SNE of the fused, learned representation — {protocol}, test windows of fold {fold + 1}",
           label)
    return fig


def plot_attention(rows: dict, targets: list[str], model: str, label: str, protocol: str):
    """``rows[target] = {"y", "a_ecg", "a_eeg"}`` (test windows of all folds) -> Figure."""
    fig, axes = _figure(len(targets), 3, 4.3, 3.6)
    for i, target in enumerate(targets):
        data = rows.get(target)
        if data is None:
            for ax in axes[i]:
                ax.set_axis_off()
            continue
        y = data["y"]
        names = _class_names(target)
        for j, key in enumerate(("a_ecg", "a_eeg")):
            ax = axes[i, j]
            means = data[key].mean(axis=1)
            groups = [means[y == c] for c in (0, 1)]
            present = [c for c in (0, 1) if len(groups[c])]
            parts = ax.boxplot([groups[c] for c in present], tick_labels=[names[c] for c in present],
                               patch_artist=True, widths=0.5, showfliers=False)
            for patch, c in zip(parts["boxes"], present):
                patch.set_facecolor(CLASS_COLORS[c])
                patch.set_alpha(0.35)
            rng = np.random.default_rng(0)
            for pos, c in enumerate(present, start=1):
                jitter = rng.uniform(-0.15, 0.15, len(groups[c]))
                ax.scatter(pos + jitter, groups[c], s=4, alpha=0.35, color=CLASS_COLORS[c], linewidths=0)
            modality = "ECG" if key == "a_ecg" else "EEG"
            ax.set_title(f"{target}: mean A_{modality.lower()} per window", fontsize=10)
            ax.set_ylabel(f"mean {modality} mask (0–1, unitless)")
            ax.set_xlabel("true class")
        ax = axes[i, 2]
        # channels are only comparable within one trained model: one fold's test windows
        fold = data.get("fold")
        if fold is not None:
            y, a_ecg, a_eeg = data["fold_y"], data["fold_a_ecg"], data["fold_a_eeg"]
        else:
            a_ecg, a_eeg = data["a_ecg"], data["a_eeg"]
        a = np.concatenate([a_ecg, a_eeg], axis=1)
        n_ecg = a_ecg.shape[1]
        x = np.arange(a.shape[1])
        for c in (0, 1):
            if np.any(y == c):
                ax.plot(x, a[y == c].mean(axis=0), marker="o", ms=3, color=CLASS_COLORS[c], label=names[c])
        ax.axvline(n_ecg - 0.5, color="k", lw=0.8, ls=":")
        ax.set_xticks(x, [f"E{k + 1}" if k < n_ecg else f"G{k - n_ecg + 1}" for k in x], fontsize=7,
                      rotation=90 if len(x) > 24 else 0)
        where = f"fold {fold + 1}" if fold is not None else "all folds"
        ax.set_title(f"{target}: mean mask per channel, {where}\n(E = ECG, G = EEG channels)", fontsize=10)
        ax.set_xlabel("attention channel (learned feature channel)")
        ax.set_ylabel("mean mask (0–1, unitless)")
        ax.legend(fontsize=8)
    _title(fig, f"Modality-aware attention of {MODEL_LABELS.get(model, model)} — {protocol}, test windows "
                f"(boxes: every fold; channels: one fold's model)\n(masks weight learned feature channels, not "
                f"electrodes or bands)", label)
    return fig


def complete_windows(pred: dict) -> dict:
    """A fold's test predictions restricted to the windows with both modalities valid (all of
    them when the file has no ``modality_mask``)."""
    mask = pred.get("modality_mask")
    if mask is None or mask.all():
        return pred
    keep = mask.all(axis=1)
    return {k: (v[keep] if isinstance(v, np.ndarray) and v.ndim and len(v) == len(keep) else v)
            for k, v in pred.items()}


def plot_roc(preds: dict, targets: list[str], models: list[str], label: str, protocol: str):
    """``preds[(target, model)] = [per-fold {"y_true", "score"}]`` -> Figure."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, axes = _figure(len(targets), len(models), 4.2, 4.0)
    for i, target in enumerate(targets):
        for j, model in enumerate(models):
            ax = axes[i, j]
            folds = preds.get((target, model))
            ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="chance")
            aucs = []
            for k, p in enumerate(folds or []):
                y, s = np.asarray(p["y_true"]), np.asarray(p["score"])
                if len(np.unique(y)) < 2:
                    continue
                fpr, tpr, _ = roc_curve(y, s)
                auc = roc_auc_score(y, s)
                aucs.append(auc)
                ax.plot(fpr, tpr, lw=1.2, label=f"fold {k + 1} (AUC {auc:.2f})")
            mean = f"mean AUC {np.mean(aucs):.3f}" if aucs else "no two-class fold"
            ax.set_title(f"{MODEL_LABELS.get(model, model)} — {target}\n{mean}", fontsize=10)
            ax.set_xlabel("false positive rate (1 − specificity)")
            ax.set_ylabel("true positive rate (sensitivity)")
            ax.set_xlim(-0.01, 1.01)
            ax.set_ylim(-0.01, 1.01)
            ax.set_aspect("equal")
            ax.legend(loc="lower right", fontsize=7 if len(aucs) > 5 else 8, ncol=2 if len(aucs) > 5 else 1)
    _title(fig, f"ROC curves per fold (test windows) — {protocol}", label)
    return fig


def plot_confusion(results: dict, targets: list[str], models: list[str], label: str, protocol: str):
    """``results[target]`` = a cv results.json; confusion summed over folds -> Figure."""
    fig, axes = _figure(len(targets), len(models), 3.8, 3.5)
    for i, target in enumerate(targets):
        for j, model in enumerate(models):
            ax = axes[i, j]
            entry = results.get(target, {}).get("models", {}).get(model)
            cm = None if entry is None else entry["metrics"].get("confusion")
            if cm is None:
                ax.set_axis_off()
                continue
            cm = np.asarray(cm, dtype=float)
            norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            for r in range(2):
                for c in range(2):
                    ax.text(c, r, f"{int(cm[r, c])}\n({100 * norm[r, c]:.0f}% of row)", ha="center", va="center",
                            fontsize=9, color="white" if norm[r, c] > 0.55 else "black")
            names = ["low", "high"]
            ax.set_xticks([0, 1], names)
            ax.set_yticks([0, 1], names)
            ax.set_xlabel(f"predicted {target}")
            ax.set_ylabel(f"true {target}")
            acc = entry["metrics"].get("acc", {}).get("mean")
            ax.set_title(f"{MODEL_LABELS.get(model, model)} — {target}\nwindows, summed over folds"
                         + (f"; ACC {100 * acc:.1f}%" if acc is not None else ""), fontsize=10)
    _title(fig, f"Confusion matrices (window counts) — {protocol}", label)
    return fig


def plot_learning(curves: dict, targets: list[str], models: list[str], label: str, protocol: str):
    """``curves[(target, model)] = [per-fold {column: {epoch: value}}]`` -> Figure."""
    from matplotlib.lines import Line2D

    fig, axes = _figure(2 * len(targets), len(models), 4.2, 3.0)
    train_acc_logged = False
    for i, target in enumerate(targets):
        for j, model in enumerate(models):
            folds = curves.get((target, model)) or []
            for row, (kind, unit) in enumerate((("loss", "cross-entropy loss (nats)"),
                                                ("acc", "accuracy (fraction)"))):
                ax = axes[2 * i + row, j]
                plotted = set()
                for k, log in enumerate(folds):
                    for split, color, style in (("train", "#1f77b4", "-"), ("val", "#ff7f0e", "--")):
                        series = log.get(f"{split}_{kind}")
                        if not series:
                            continue
                        if split == "train" and kind == "acc":
                            train_acc_logged = True
                        plotted.add(split)
                        epochs = sorted(series)
                        ax.plot([e + 1 for e in epochs], [series[e] for e in epochs], color=color, ls=style,
                                lw=1.0, alpha=0.8, marker="o", ms=2)
                name = "loss" if kind == "loss" else "accuracy"
                ax.set_title(f"{MODEL_LABELS.get(model, model)} — {target}: {name}", fontsize=10)
                ax.set_xlabel("epoch")
                ax.set_ylabel(unit)
                ax.xaxis.get_major_locator().set_params(integer=True)
                handles = [Line2D([], [], color="#1f77b4", ls="-", label="train"),
                           Line2D([], [], color="#ff7f0e", ls="--", label="validation (inner split)")]
                handles = [h for h, split in zip(handles, ("train", "val")) if split in plotted]
                if handles:
                    ax.legend(handles=handles, fontsize=7, loc="best")
                else:
                    ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    note = "" if train_acc_logged else " (training accuracy was not logged: validation only)"
    _title(fig, f"Learning curves, one line per fold — {protocol}{note}", label)
    return fig


def plot_protocols(results: dict, protocols: list[str], targets: list[str], models: list[str], label: str):
    """``results[(protocol, target)]`` = cv results.json -> grouped bars of accuracy (%)."""
    shown = [*models, "majority"]
    fig, axes = _figure(1, len(targets), max(4.5, 0.55 * len(protocols) * len(shown) + 1.5), 4.3)
    width = 0.8 / len(shown)
    for j, target in enumerate(targets):
        ax = axes[0, j]
        x = np.arange(len(protocols))
        for m_i, model in enumerate(shown):
            means, stds = [], []
            for p_i, protocol in enumerate(protocols):
                entry = results.get((protocol, target), {}).get("models", {}).get(model)
                acc = None if entry is None else entry["metrics"].get("acc", {})
                means.append(np.nan if not acc or acc.get("mean") is None else 100 * acc["mean"])
                stds.append(0.0 if not acc or acc.get("std") is None else 100 * acc["std"])
                if entry is not None:
                    dots = [100 * f["acc"] for f in entry.get("per_fold", []) if f.get("acc") is not None]
                    ax.scatter(np.full(len(dots), x[p_i] + (m_i - (len(shown) - 1) / 2) * width), dots, s=8,
                               color="k", alpha=0.5, zorder=3, linewidths=0)
            pos = x + (m_i - (len(shown) - 1) / 2) * width
            hatch = "//" if model == "majority" else None
            ax.bar(pos, means, width * 0.95, yerr=stds, capsize=3, color=MODEL_COLORS.get(model, "0.5"),
                   edgecolor="k", linewidth=0.6, hatch=hatch, label=MODEL_LABELS.get(model, model))
            for px, mv in zip(pos, means):
                if np.isfinite(mv):
                    ax.text(px, 2, f"{mv:.0f}", ha="center", va="bottom", fontsize=7, rotation=90, color="black",
                            bbox={"facecolor": "white", "alpha": 0.8, "pad": 1, "edgecolor": "none"})
        ax.set_xticks(x, [f"{p}\n({PROTOCOL_NOTES.get(p, '')})" for p in protocols], fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("test accuracy (%), mean ± std over folds")
        ax.set_xlabel("cross-validation protocol")
        ax.set_title(f"{target}", fontsize=11)
        ax.axhline(50, color="0.6", lw=0.6, ls=":")
        ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    _title(fig, "Accuracy by cross-validation protocol (dots: folds) — windows of one trial on both sides "
                "(segment-kfold) vs none (trial-, subject-kfold)", label)
    return fig


# -- the whole run ----------------------------------------------------------------------------
def make_figures(run, out=None, *, fold: int = 0, max_points: int = 2000, seed: int = 0,
                 formats=FORMATS, log=print) -> dict:
    """Every figure of ``run`` into ``out`` (default ``RUN/figures``) and ``metrics.json``.

    Returns the content of metrics.json (with "files": the paths written).
    """
    from maan.evaluation.predictions import run_predictions

    from maan.config import check_number

    check_number("max_points (--max-points)", max_points, 10, 10**6, integer=True)  # t-SNE needs a few points
    check_number("seed (--seed)", seed, 0, 2**32 - 1, integer=True)
    run = Path(run)
    summary, subs = load_run(run)
    folds = [r.get("folds") for _, r in subs]
    n_folds = min((f for f in folds if isinstance(f, int) and f > 0), default=1)
    check_number("fold (--fold, counted from 1)", fold + 1 if isinstance(fold, int) else fold, 1, n_folds,
                 integer=True)
    out = Path(out) if out is not None else run / "figures"
    label = data_label_of(summary)
    protocols = list(dict.fromkeys(r["protocol"] for _, r in subs))
    targets = list(dict.fromkeys(r["target"] for _, r in subs))
    models = list(dict.fromkeys(m for _, r in subs for m in trained_models(r)))
    files: list[Path] = []
    notes: list[str] = []
    separation, attention = [], []
    by_key = {(r["protocol"], r["target"]): (folder, r) for folder, r in subs}
    def say(msg):
        if log is not None:
            log(msg)

    say(f"figures of {run} ({label}) -> {out}")
    for protocol in protocols:
        tsne_panels, roc, attn_rows, curves, results = {}, {}, {m: {} for m in models}, {}, {}
        for target in targets:
            if (protocol, target) not in by_key:
                continue
            folder, result = by_key[(protocol, target)]
            results[target] = result
            run_models = trained_models(result)
            for model in run_models:
                curves[(target, model)] = [read_learning_curve(folder / "logs" / f"fold-{k:02d}" / model / "metrics.csv")
                                           for k in range(int(result["folds"]))]
            try:
                preds = run_predictions(folder, result, run_models)
            except MaanError as exc:
                notes.append(f"{protocol}/{target}: no predictions ({exc})")
                say(f"  skipping t-SNE, ROC and attention of {protocol}/{target}: {exc}")
                continue
            k_show = fold
            for model, per_fold in preds.items():
                roc[(target, model)] = per_fold
                # representation and attention: complete windows only (a missing modality's block
                # and mask describe no signal)
                per_fold = [complete_windows(p) for p in per_fold]
                sil, fis = [], []
                for k, p in enumerate(per_fold):
                    if "representation" not in p:
                        sil.append(None)
                        fis.append(None)
                        continue
                    idx = subsample(len(p["y_true"]), max_points, seed + k)
                    sil.append(silhouette(p["representation"][idx], p["y_true"][idx]))
                    fis.append(fisher_ratio(p["representation"][idx], p["y_true"][idx]))
                p = per_fold[k_show]
                if "representation" in p:
                    idx = subsample(len(p["y_true"]), max_points, seed + k_show)
                    tsne_panels[(target, model)] = {
                        "xy": tsne_embedding(p["representation"][idx], seed), "y": p["y_true"][idx].astype(int),
                        "silhouette": sil[k_show], "fisher": fis[k_show]}
                separation.append({"protocol": protocol, "target": target, "model": model,
                                   "representation_size": int(p["representation"].shape[1]) if "representation" in p else None,
                                   "tsne_fold": k_show, "n_tsne": int(len(tsne_panels.get((target, model), {}).get("y", []))),
                                   "silhouette": _stat(sil), "fisher_ratio": _stat(fis)})
                if all("a_ecg" in q and "a_eeg" in q for q in per_fold):
                    y = np.concatenate([q["y_true"] for q in per_fold]).astype(int)
                    a_ecg = np.concatenate([q["a_ecg"] for q in per_fold])
                    a_eeg = np.concatenate([q["a_eeg"] for q in per_fold])
                    shown = per_fold[k_show]
                    attn_rows[model][target] = {"y": y, "a_ecg": a_ecg, "a_eeg": a_eeg, "fold": k_show,
                                                "fold_y": shown["y_true"].astype(int), "fold_a_ecg": shown["a_ecg"],
                                                "fold_a_eeg": shown["a_eeg"]}
                    entry = {"protocol": protocol, "target": target, "model": model}
                    for key, a in (("a_ecg", a_ecg), ("a_eeg", a_eeg)):
                        entry[key] = {name: {"mean": float(a[y == c].mean()) if np.any(y == c) else None,
                                             "std": float(a[y == c].mean(axis=1).std()) if np.any(y == c) else None,
                                             "n": int(np.sum(y == c))}
                                      for c, name in ((0, "low"), (1, "high"))}
                    attention.append(entry)
        tag = protocol
        pmodels = [m for m in models if any(m in trained_models(r) for r in results.values())]
        if tsne_panels:
            files += save_figure(plot_tsne(tsne_panels, targets, pmodels, label, protocol,
                                           min(fold, min(int(r["folds"]) for r in results.values()) - 1)),
                                 out, f"tsne-{tag}", formats)
        for model in pmodels:
            if attn_rows.get(model):
                name = f"attention-{tag}" if model == "maan" else f"attention-{tag}-{model}"
                files += save_figure(plot_attention(attn_rows[model], targets, model, label, protocol), out, name,
                                     formats)
        if roc:
            files += save_figure(plot_roc(roc, targets, pmodels, label, protocol), out, f"roc-{tag}", formats)
        files += save_figure(plot_confusion(results, targets, pmodels, label, protocol), out, f"confusion-{tag}",
                             formats)
        files += save_figure(plot_learning(curves, targets, pmodels, label, protocol), out, f"learning-{tag}",
                             formats)
    by_pt = {(r["protocol"], r["target"]): r for _, r in subs}
    files += save_figure(plot_protocols(by_pt, protocols, targets, models, label), out, "protocols", formats)
    metrics = {"format": "maan-figures", "run": str(run), "data_label": label,
               "synthetic": bool(summary.get("synthetic", subs[0][1].get("synthetic") if subs else False)),
               "definitions": DEFINITIONS, "seed": int(seed), "max_points": int(max_points), "tsne_fold": int(fold),
               "separation": separation, "attention": attention, "notes": notes,
               "files": [p.name for p in files]}
    atomic_write_json(out / "metrics.json", metrics)
    for s in separation:
        say(f"  {s['protocol']:>13} {s['target']:<8} {s['model']:<5} silhouette {_fmt(s['silhouette']['mean'])} "
            f"± {_fmt(s['silhouette']['std'])}, Fisher ratio {_fmt(s['fisher_ratio']['mean'])} "
            f"± {_fmt(s['fisher_ratio']['std'])} (mean ± std over folds)")
    say(f"  {len(files)} files in {out}")
    return {**metrics, "files": [str(p) for p in files]}
