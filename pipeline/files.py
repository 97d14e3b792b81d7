"""Output files written only when their bytes change.

A rerun that changes one analysis option recomputes some results and leaves most files as they
were: a file whose new bytes equal those on disk is not written again, so it keeps its
modification time, and a folder synced to a journal's system, a reference manager or a
colleague's copy sees only the files that did change. Every report, table, figure and
provenance file goes through :func:`write_bytes` or :func:`write_text`.

:func:`recording` lists the files a block asked to write (changed or not), which
:mod:`pipeline.rerun` keeps as the outputs of a step.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# The lists of the recordings open in this process, innermost last.
_recordings: list[list[Path]] = []


def write_bytes(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless the file already holds exactly these bytes; return
    whether it was written."""
    path = Path(path)
    for written in _recordings:
        written.append(path)
    try:
        # A regular file of the same size only: a device is never read (it may not end).
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:  # not there yet (or unreadable): write it
        pass
    path.write_bytes(data)
    return True


def write_text(path: Path, text: str, encoding: str = "utf-8", newline: str | None = None) -> bool:
    """:func:`write_bytes` of ``text`` as :meth:`pathlib.Path.write_text` would write it (with
    ``newline=None``, line ends as the platform writes them; ``""`` or ``"\\n"``, as given)."""
    if newline is None and os.linesep != "\n":
        text = text.replace("\n", os.linesep)
    elif newline not in (None, "", "\n"):
        text = text.replace("\n", newline)
    return write_bytes(path, text.encode(encoding))


@contextmanager
def recording() -> Iterator[list[Path]]:
    """The paths given to :func:`write_bytes` and :func:`write_text` inside the block, in order
    (each once), whether their bytes changed or not."""
    written: list[Path] = []
    _recordings.append(written)
    try:
        yield written
    finally:
        _recordings.remove(written)
        written[:] = list(dict.fromkeys(written))
