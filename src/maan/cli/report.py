"""The ``figures`` and ``report`` subcommands of ``maan``.

``maan.cli`` registers them with ``add_commands(sub, _Parser)``; handlers return an exit
status and raise MaanError for user errors. :func:`figures_and_report` is what ``maan demo``
and ``maan reproduce`` call at their end.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def figures_and_report(run, log=print, **figure_kwargs) -> Path:
    """Make every figure of ``run`` (RUN/figures/) and the HTML report (RUN/report.html)."""
    from maan.evaluation.html_report import write_report

    return write_report(run, figures=True, log=log, **figure_kwargs)


def _figure_kwargs(args) -> dict:
    return {"fold": args.fold - 1, "max_points": args.max_points, "seed": args.seed}


def cmd_figures(args) -> int:
    from maan.evaluation.figures import make_figures

    make_figures(args.run, args.out, formats=tuple(args.format), **_figure_kwargs(args))
    return 0


def cmd_report(args) -> int:
    from maan.evaluation.html_report import write_report

    figures = True if args.refresh_figures else "missing"
    write_report(args.run, args.out, figures=figures, **_figure_kwargs(args))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run folder of `maan reproduce`, `maan demo` (--out) or `maan cv`")
    p.add_argument("--fold", type=int, default=1, metavar="K",
                   help="fold whose test windows the t-SNE shows (1-based; default: %(default)s)")
    p.add_argument("--max-points", type=int, default=2000, metavar="N",
                   help="at most N test windows per fold for t-SNE and the separation numbers, deterministic "
                        "subsample (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="t-SNE and subsampling seed (default: %(default)s)")


def add_commands(sub, parser_class=argparse.ArgumentParser) -> None:
    """Register figures and report on an argparse subparsers object."""
    p = sub.add_parser("figures", help="PNG/SVG figures of a run: t-SNE, attention, ROC, confusion, learning "
                                       "curves, protocol comparison",
                       description="Write RUN/figures/*.png and *.svg (Matplotlib) and RUN/figures/metrics.json "
                       "(silhouette and Fisher ratio of the representation, attention summaries) from the test "
                       "predictions each fold saved.")
    _common(p)
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN/figures)")
    p.add_argument("--format", nargs="+", choices=("png", "svg", "pdf"), default=["png", "svg"],
                   help="file formats (default: png svg)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("report", help="one self-contained HTML report of a run (figures embedded)",
                       description="Write RUN/report.html: Table 1, protocol comparison, separation numbers, figures "
                       "(made first when RUN/figures is missing), configuration, data, seeds and package versions. "
                       "No external resources: it opens offline.")
    _common(p)
    p.add_argument("--out", default=None, metavar="HTML", help="output file (default: RUN/report.html)")
    p.add_argument("--refresh-figures", action="store_true", help="remake the figures even if RUN/figures exists")
    p.set_defaults(func=cmd_report)
