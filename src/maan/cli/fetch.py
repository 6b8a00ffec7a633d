"""The ``fetch`` subcommand of ``maan``: download a public dataset, verified file by file.

``maan.cli`` registers it with ``add_commands(sub, _Parser)``; the handler returns an exit
status; network, server and checksum failures are raised as MaanError (one stderr line, exit 2,
by the CLI).
"""
from __future__ import annotations

import argparse
import shlex


def _files(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def cmd_fetch(args) -> int:
    from maan.datasets.fetch import DATASETS, fetch_dataset, format_subjects

    dataset = DATASETS[args.dataset]
    result = fetch_dataset(dataset, args.out, subjects=args.subjects, base_url=args.base_url,
                           progress=not args.quiet, announce=lambda text: print(text, flush=True))
    print(f"{dataset.name}: subjects {format_subjects(result.subjects)} in {result.folder}")
    print(f"  fetched {len(result.fetched)} file(s)" + (f": {_files(result.fetched)}" if result.fetched else ""))
    print(f"  already present and verified: {len(result.present)} file(s)")
    if result.replaced:
        print(f"  replaced (hash differed from the checksums): {_files(result.replaced)}")
    print("  licence and citation: " + str(result.folder / "README"))
    if dataset.next_command:
        print("Next: " + dataset.next_command.format(out=shlex.quote(str(result.folder))))
    return 0


def add_commands(sub, parser_class=argparse.ArgumentParser) -> None:
    """Register fetch on an argparse subparsers object."""
    from maan.datasets.fetch import DATASETS, EEGMAT

    p = sub.add_parser("fetch", help="download a public dataset (eegmat), each file verified by SHA-256",
                       description="Download a public dataset with pooch, each file checked against the "
                       "project's SHA256SUMS.txt. eegmat: PhysioNet \"EEG During Mental Arithmetic Tasks\" "
                       "(36 subjects, ECG+EEG, rest and arithmetic; ODC-By 1.0: cite the papers printed and "
                       "written to DIR/README). Reruns keep verified files and fetch the rest.")
    p.add_argument("dataset", choices=tuple(DATASETS), help="dataset to download")
    p.add_argument("--out", required=True, metavar="DIR", help="destination folder (created if needed)")
    p.add_argument("--subjects", default=None, metavar="LIST",
                   help=f"subjects to fetch, e.g. 0-9, 0,3,5 or 0-3,7 (eegmat: {EEGMAT.subjects.start}-"
                        f"{EEGMAT.subjects.stop - 1}; default: every subject listed in SHA256SUMS.txt)")
    p.add_argument("--base-url", default=None, metavar="URL",
                   help=f"folder URL of a mirror (default for eegmat: {EEGMAT.base_url})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fetch)
