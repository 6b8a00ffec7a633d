"""``python -m maan``: the ``maan`` command."""
import os
import sys

from maan.cli import EXIT_INTERRUPTED, main

code = main()
if code == EXIT_INTERRUPTED:
    # A KeyboardInterrupt caught inside an exec()'d module (some imports do that) makes CPython
    # re-raise SIGINT at the exit of ``python -m``, which would turn exit 130 into a signal death.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
