"""Work fanned out to processes so that neither Ctrl-C nor a bad input loses finished work or hangs.

The one place where maan starts worker processes and decides what a signal does to them:

* Workers ignore SIGINT (they inherit ``SIG_IGN`` at fork): Ctrl-C in a terminal reaches the
  whole process group, and only the parent may react, once, without a worker's traceback.
* The parent receives every result and alone writes files (atomically), so a worker killed at
  any moment leaves nothing half-written.
* A failure of one item (``accept`` or the worker raised) stops new work, lets the running items
  finish and accepts them (their work is kept), then raises the first failure.
* Ctrl-C or any other interruption of the parent terminates the workers at once and re-raises,
  so that the caller reports it (exit 130) and a rerun resumes.
* A worker that dies (a crash inside a library, e.g. SciPy's MAT reader on some corrupt files)
  is a MaanError naming the items it may have been working on; finished items are kept.
"""
from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from maan.errors import MaanError

__all__ = ["run_parallel"]


def run_parallel(fn: Callable, items: Sequence, jobs: int, accept: Callable[[int, object], None],
                 describe: Callable[[int], str] = str) -> None:
    """Call ``fn(item)`` for every item in ``jobs`` forked processes; ``accept(index, result)``
    runs in the calling process as each one finishes (in completion order).

    ``fn`` and the items are inherited through fork (they need not be picklable when they are
    module-level state); results must be picklable. With ``jobs <= 1`` or one item everything runs
    in the calling process, with the same semantics. ``describe(index)`` names an item in errors.
    """
    if jobs <= 1 or len(items) <= 1:
        for index, item in enumerate(items):
            accept(index, fn(item))
        return
    context = multiprocessing.get_context("fork")
    before = set(multiprocessing.active_children())
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the workers forked below
    try:
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=context)
        pending = {pool.submit(fn, item): i for i, item in enumerate(items)}  # fork happens here
    finally:
        signal.signal(signal.SIGINT, previous)
    workers = set(multiprocessing.active_children()) - before
    failure: BaseException | None = None
    broken: list[str] = []
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                if future.cancelled():
                    continue
                try:
                    accept(index, future.result())
                except BrokenProcessPool:  # every item running when a worker died, the culprit among them
                    broken.append(describe(index))
                except Exception as exc:  # noqa: BLE001 - re-raised once the running items are saved
                    if failure is None:
                        failure = exc
                        for other in pending:
                            other.cancel()  # not started yet: never runs
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        for process in workers:
            process.join(timeout=5)
        raise
    pool.shutdown()
    if failure is not None:
        raise failure
    if broken:
        raise MaanError(f"a worker process died (a crash inside a library, e.g. on a corrupt file) while working "
                        f"on {' or '.join(broken)}; finished work is kept")
