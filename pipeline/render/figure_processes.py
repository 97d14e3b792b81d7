"""The processes that draw figures beside the one running the study, and Ctrl-C in them.

A process drawing figures first imports matplotlib, seaborn and the figures' modules: about 2 s
of a 2-core machine, as long as drawing the demo's figures on one core. Started when a run
begins (:func:`warm`), a worker does that on an idle core while the run ingests and analyses,
and is ready when the figures step comes (:func:`pipeline.render.figure_files.export` takes it,
:func:`warm_workers`). A run that draws no figure has spent that core's idle time only.

This module imports no matplotlib, so a run can start its workers before importing anything
that draws.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Iterator

# What a worker imports as it starts: the figures' own module and what it draws with.
DRAWING_MODULES = ("pipeline.render.figures",)

_warm: ProcessPoolExecutor | None = None
_warm_size = 0
_lock = threading.Lock()


def cores() -> int:
    """The cores this process may run on."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def idle_cores() -> int:
    """The cores the machine's load leaves free, this process's own counted as free (at least 1).

    A core is idle when the 1-minute load average leaves it free: a worker started on a machine
    whose cores are all busy shares them with this process and adds its 2 s of imports to their
    work (the demo's figures on 2 cores under a load of 8: done no sooner, with 40% more CPU
    time)."""
    try:
        idle = cores() - int(os.getloadavg()[0]) + 1  # + 1: this process is in the load
    except OSError:  # no load average on this platform: every core
        idle = cores()
    return max(1, min(cores(), idle))


def without_ctrl_c_here() -> None:
    """In a thread that starts workers or hands them jobs: Ctrl-C is never delivered to it, so it
    always lands in the caller's main thread, and the processes it starts begin with it blocked.

    multiprocessing's resource tracker is started first: starting it blocks and then unblocks
    SIGINT in the thread that starts it, which would undo the block for the first worker."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def worker_ignores_ctrl_c() -> None:
    """A worker process, before its first job: Ctrl-C in the terminal is the caller's to handle.
    Ignored before it is unblocked, so one that came while the worker started is dropped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _worker_starts() -> None:
    worker_ignores_ctrl_c()
    import importlib

    for name in DRAWING_MODULES:
        importlib.import_module(name)


def _ready() -> None:
    """A job that only makes a worker start (and import what it draws with)."""


def new_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` "spawn" processes (fresh interpreters: "fork" would copy a process
    that may hold DuckDB's or Dagster's threads and locks) that leave Ctrl-C to the caller and
    import the drawing modules as they start. Its processes start as jobs are submitted, from a
    thread that has called :func:`without_ctrl_c_here`.

    As with any "spawn" pool, a worker imports the caller's main script as it starts, so a script
    that draws figures in parallel keeps its work under ``if __name__ == "__main__":`` (the
    ``outcomes`` command, Dagster and the benchmark do)."""
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_starts
    )


def start(workers: int | None = None) -> int:
    """Start the warm workers now, if none are: ``workers`` of them (default: one per idle core
    besides this process's); return how many there are: 0 on a machine with no idle core."""
    global _warm, _warm_size
    with _lock:
        if _warm is not None:
            return _warm_size
        workers = idle_cores() - 1 if workers is None else workers
        if workers < 1:
            return 0
        pool = new_pool(workers)

        def launch() -> None:
            # Each job submitted to a busy pool starts one more process (in this thread, so with
            # Ctrl-C blocked); the jobs return once the process has imported what it draws with.
            without_ctrl_c_here()
            for _ in range(workers):
                pool.submit(_ready)

        starting = threading.Thread(target=launch, name="figure-workers")
        starting.start()
        starting.join()  # only the processes' start, not their imports
        _warm, _warm_size = pool, workers
        return workers


def warm_workers() -> tuple[ProcessPoolExecutor, int] | None:
    """The warm workers :func:`start` started and their number, or None."""
    with _lock:
        return (_warm, _warm_size) if _warm is not None else None


def stop(wait: bool = False) -> None:
    """Let the warm workers go: ``wait``, once each has finished the figure it holds; otherwise
    at once, ended where they are, as they hold no figure then (this is called between figure
    steps): a worker still importing what it draws with would make this process wait for that
    on leaving (up to 2 s, on a run that drew no figure)."""
    global _warm, _warm_size
    with _lock:
        pool, _warm, _warm_size = _warm, None, 0
    if pool is None:
        return
    # The workers, read before shutdown forgets them: ProcessPoolExecutor has no public list of
    # its processes before Python 3.14's terminate_workers(), and has kept them in _processes
    # since 3.2. Without it, the workers end as they finish starting.
    workers = [] if wait else list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=wait, cancel_futures=True)
    for worker in workers:
        worker.terminate()


@contextmanager
def warm(workers: int | None = None) -> Iterator[int]:
    """Warm workers for what runs inside (:func:`start`), let go on leaving (:func:`stop`);
    yields how many there are. Workers already warm are left to whoever started them."""
    already = warm_workers() is not None
    started = start(workers)
    try:
        yield started
    finally:
        if not already:
            stop()
