"""Progress lines for long commands: shown on a terminal, silent anywhere else.

A registry takes long enough to ingest and analyse that a person at a terminal wants to
see it move; a CI log or a pipe wants nothing. Lines go to standard error, and only when
it is a terminal (``sys.stderr.isatty()``). Steps nest: an inner step is indented under
the step that runs it.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

# Open steps, innermost last: [label, whether its "label ..." line is still the current line].
_open: list[list] = []


def shown() -> bool:
    """True when standard error is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def step(label: str) -> Iterator[None]:
    """``label ...`` while the block runs, then ``label: 1.2 s`` (on a terminal only)."""
    if not shown():
        yield
        return
    if _open and _open[-1][1]:
        sys.stderr.write("\n")  # the enclosing step's line stays, this one goes under it
        _open[-1][1] = False
    indent = "  " * len(_open)
    entry = [label, True]
    _open.append(entry)
    start = time.perf_counter()
    sys.stderr.write(f"{indent}{label} ...")
    sys.stderr.flush()
    try:
        yield
    finally:
        _open.pop()
        done = f"{indent}{label}: {time.perf_counter() - start:.1f} s\n"
        # Carriage return and erase-line: the finished line replaces the running one.
        sys.stderr.write(f"\r\x1b[2K{done}" if entry[1] else done)
        sys.stderr.flush()


def note(text: str) -> None:
    """One line of progress (on a terminal only)."""
    if shown():
        if _open and _open[-1][1]:
            sys.stderr.write("\n")
            _open[-1][1] = False
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
