"""The ``maan`` command: a thin layer over the Python API, one module per command group.

``data`` (synth, preprocess, demo), ``fetch`` (fetch), ``train`` (train, evaluate, cv, reproduce),
``report`` (figures, report) and ``live`` (predict, stream, play); each has
``add_commands(sub, parser_class)``.
Every user-fixable problem (bad input, bad option, changed configuration) ends as one line on
stderr and exit status 2; nothing already written is lost.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from maan import __version__
    from maan.cli import data, fetch, live, report, train

    parser = _Parser(prog="maan", description="ECG+EEG emotion recognition (arousal, valence) with a "
                     "Modality Aware Attention Network.")
    parser.add_argument("--version", action="version", version=f"maan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for group in (data, fetch, train, report, live):
        group.add_commands(sub, _Parser)
    return parser


#: Longest error line; a message that quotes a corrupt file's content is cut there.
MAX_ERROR_CHARS = 2000


def _one_line(message: str) -> str:
    """An error message as one printable line of bounded length (it may quote file content)."""
    text = "".join(c if c.isprintable() else " " for c in message.replace("\n", " "))
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " [...]"


INTERRUPTED = "interrupted; finished work is kept, rerun to resume"
EXIT_INTERRUPTED = 130


def main(argv=None) -> int:
    """Run ``maan ARGV`` (``sys.argv[1:]`` when None, i.e. as the program); the exit status."""
    import signal
    import threading

    pressed = []

    def on_ctrl_c(signum, frame):  # the default behaviour, remembered
        pressed.append(signum)
        raise KeyboardInterrupt

    def on_unraisable(info, hook=sys.unraisablehook):
        # Ctrl-C that lands where Python cannot raise (a weakref or import-lock callback) would be
        # printed as "Exception ignored ... Traceback" and lost: deliver it again, to be raised
        # in the code that runs next
        if issubclass(info.exc_type, KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        else:
            hook(info)

    own_handler = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_ctrl_c) if own_handler else None
    previous_hook = sys.unraisablehook
    if own_handler:
        sys.unraisablehook = on_unraisable
    try:
        code = _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a command started (imports, parsing)
        print(f"maan: {INTERRUPTED}", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception:
        # a KeyboardInterrupt inside an extension module's import surfaces as another error
        # (e.g. ImportError "initialization failed"): after Ctrl-C it is the interruption
        if not pressed:
            raise
        print(f"maan: {INTERRUPTED}", file=sys.stderr)
        code = EXIT_INTERRUPTED
    finally:
        if own_handler:
            # as the program, the work is done and reported: a Ctrl-C while the interpreter
            # shuts down must not turn the exit status into a death by SIGINT
            restore = previous if previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, signal.SIG_IGN if argv is None else restore)
            sys.unraisablehook = previous_hook
    return code


def _main(argv) -> int:
    from maan.errors import MaanError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="maan: %(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except MaanError as exc:
        print(f"maan {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"maan {args.command}: error: {_one_line(where + reason)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"maan {args.command}: {INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
