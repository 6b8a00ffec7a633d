"""A small synthetic AMIGOS-format cohort, preprocessed once per test session."""
from __future__ import annotations

import argparse
import sys

import pytest

import maan

N_SUBJECTS = 6


@pytest.fixture(scope="session")
def cohort_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("amigos-synth")
    maan.synth_cohort("amigos", folder, n_subjects=N_SUBJECTS, seed=11, short_seconds=(20, 40), long_seconds=(60, 90))
    return folder


@pytest.fixture(scope="session")
def store(cohort_data, tmp_path_factory):
    """Path of the feature store (about 400 windows of 6 subjects)."""
    out = tmp_path_factory.mktemp("features") / "store"
    maan.preprocess("amigos", cohort_data, out, progress=False)
    return out


@pytest.fixture(scope="session")
def features(store):
    return maan.load_features(store)


def run_cli(argv, capsys):
    """Run a training subcommand like `maan` does: exit status, stdout, stderr."""
    from maan.cli import EXIT_USAGE, _Parser, build_parser
    from maan.errors import MaanError
    from maan.training.commands import add_commands

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if argv[0] in sub.choices:  # the lead wired add_commands into maan.cli
        from maan.cli import main

        code = main(argv)
    else:
        parser = _Parser(prog="maan")
        add_commands(parser.add_subparsers(dest="command", parser_class=_Parser), _Parser)
        args = parser.parse_args(argv)
        try:
            code = args.func(args)
        except MaanError as exc:
            print(f"maan {args.command}: error: {exc}", file=sys.stderr)
            code = EXIT_USAGE
    out, err = capsys.readouterr()
    return code, out, err
