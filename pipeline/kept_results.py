"""Each analysis's result, kept with exactly what it was computed from.

The statistician's loop changes one analysis option and runs again. The paired tests and the
secondary analyses then run as a step (:mod:`pipeline.rerun`), but each analysis in them is a
call of a statistics function on data frames and settings, and most read only some of the
options: the sign tests read no confidence level, the ANCOVA no test, of the secondary analyses
only the power table reads ``alpha``. :func:`computed` calls such a function unless its result
for the very same call is kept beside the warehouse, and returns that result then.

"The very same call" is a SHA-256 key (:func:`call_key`) over

- the code: every source file of ``pipeline/`` (:func:`pipeline.rerun.code_key`), so no result
  is served across a change of the code;
- the Python and package versions (numpy, pandas, scipy, statsmodels and the formula parsers,
  DuckDB): an upgrade can change the last digits of a fit;
- the function's module and name, and the caller's label;
- every argument, by content: a data frame by its column names, dtypes, index and every value's
  exact bits (numbers) or text and type (anything else), settings and spec objects (frozen
  dataclasses) field by field, numbers by their exact bits. An argument of a kind not listed
  in :func:`_feed` makes the call uncached (it is computed every time), never wrongly reused.

So an analysis is reused exactly when everything it is computed from is unchanged: a changed
option that it reads, a changed pair, another spec or new data give another key. The functions
given to :func:`computed` read nothing but their arguments (the statistics functions of
:mod:`pipeline.statistics`, not the step helpers that read the warehouse or the spec), and
return the same result for the same arguments (a random draw takes its seed as an argument).
A function that changes an argument it was given is not reused (its arguments are hashed again
after the call): a later step could see the change.

The results are kept pickled, one file per key, in a folder beside the study's warehouse file
(:func:`folder`; owner-only like the warehouse of a restricted study), at most
:data:`KEPT_PER_STUDY` per study, the oldest dropped first (a dropped result is computed again
when next asked for). A file is written whole or not at all; one that cannot be read (damaged,
another pandas) is computed again and replaced. Files rather than a warehouse table: a look-up
is one file opened, where a query in the step's transaction costs milliseconds, and a result
kept by a step that then fails is still the right result of its call. A warehouse in memory
keeps nothing. The files are read back with :mod:`pickle`: the folder is as trusted as the
warehouse beside it, and as private.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import pickle
import platform
import struct
import tempfile
import weakref
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any, Callable, TypeVar

import duckdb
import numpy as np
import pandas as pd

#: The folder beside a warehouse file (``demo.duckdb`` -> ``demo.kept/``) with its results.
SUFFIX = ".kept"

#: Results kept per study: some 65 calls per run of the demo, so several runs' worth.
KEPT_PER_STUDY = 400

#: Packages whose version a result may depend on.
_STATISTICS_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "patsy", "formulaic", "duckdb")

T = TypeVar("T")


class Uncacheable(TypeError):
    """An argument whose content :func:`call_key` cannot read exactly."""


@functools.cache
def _versions() -> str:
    from pipeline.rerun import code_key

    found = []
    for name in _STATISTICS_PACKAGES:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}=none")
    return f"{code_key()};python={platform.python_version()};{';'.join(found)}"


def _tag(digest, tag: str, payload: bytes = b"") -> None:
    # Every part carries its kind and length, so two different sequences of parts never give
    # the same stream of bytes.
    head = tag.encode()
    digest.update(struct.pack("<Q", len(head)) + head + struct.pack("<Q", len(payload)) + payload)


def _feed_column(digest, values: pd.Series | pd.Index) -> None:
    dtype = values.dtype
    _tag(digest, "dtype", repr(dtype).encode())
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        # The values' exact bits (NaN, -0.0 and the last digit included).
        _tag(digest, "bits", np.ascontiguousarray(values.to_numpy()).tobytes())
        return
    if isinstance(values, pd.MultiIndex):
        for level in range(values.nlevels):
            _feed_column(digest, values.get_level_values(level))
        return
    listed = values.tolist()
    try:
        # Text alone (subject codes, outcome names): joining refuses anything but text, so a
        # column that joins holds only text.
        joined = "\0".join(listed)
    except TypeError:
        joined = None
    if joined is not None:
        if joined.count("\0") == len(listed) - 1:
            # No value holds the separator: the joined text alone says where each value ends
            # (a pass over it, where each value's length cost a Python call per value).
            _tag(digest, f"text[{len(listed)}]", joined.encode("utf-8", "surrogatepass"))
        else:
            lengths = np.fromiter(map(len, listed), dtype=np.int64, count=len(listed))
            _tag(digest, "lengths", lengths.tobytes())
            _tag(digest, "text", "".join(listed).encode("utf-8", "surrogatepass"))
        return
    # Categories, nullable and mixed columns: each value's type and content (exact for floats,
    # strings, None, NaN and pd.NA alike).
    for value in listed:
        _feed(digest, value)


def _feed(digest, value: Any) -> None:
    """Add ``value``'s content to ``digest``; :class:`Uncacheable` for a kind not read here."""
    if value is None or isinstance(value, (bool, str, bytes)):
        _tag(digest, type(value).__name__, repr(value).encode())
    elif isinstance(value, enum.Enum):
        _tag(digest, f"enum:{type(value).__qualname__}", repr(value.value).encode())
    elif isinstance(value, int):
        _tag(digest, type(value).__name__, str(int(value)).encode())
    elif isinstance(value, float):
        _tag(digest, type(value).__name__, struct.pack("<d", value))
    elif isinstance(value, np.generic):
        _tag(digest, f"numpy:{value.dtype.str}", np.asarray(value).tobytes())
    elif value is pd.NA or value is pd.NaT:
        _tag(digest, repr(value))
    elif isinstance(value, pd.Timestamp):
        _tag(digest, "timestamp", repr(value).encode())
    elif isinstance(value, PurePath):
        _tag(digest, "path", str(value).encode())
    elif isinstance(value, (tuple, list)):
        _tag(digest, f"{type(value).__name__}[{len(value)}]")
        for item in value:
            _feed(digest, item)
    elif isinstance(value, dict):
        # In its order: a function may walk a dict in order.
        _tag(digest, f"dict[{len(value)}]")
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (set, frozenset)):
        parts = []
        for item in value:
            one = hashlib.sha256()
            _feed(one, item)
            parts.append(one.digest())
        _tag(digest, f"{type(value).__name__}[{len(value)}]", b"".join(sorted(parts)))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = type(value)
        _tag(digest, f"dataclass:{kind.__module__}.{kind.__qualname__}")
        for f in dataclasses.fields(value):
            _tag(digest, "field", f.name.encode())
            _feed(digest, getattr(value, f.name))
    elif isinstance(value, pd.DataFrame):
        _tag(digest, f"frame{value.shape}")
        if value.attrs:
            _feed(digest, dict(value.attrs))
        _feed_column(digest, value.columns)
        _feed_column(digest, value.index)
        for i in range(value.shape[1]):
            _feed_column(digest, value.iloc[:, i])
    elif isinstance(value, pd.Series):
        _tag(digest, f"series{value.shape}")
        if value.attrs:
            _feed(digest, dict(value.attrs))
        _feed(digest, value.name)
        _feed_column(digest, value.index)
        _feed_column(digest, value)
    elif isinstance(value, pd.Index):
        _tag(digest, f"index{value.shape}")
        _feed(digest, value.name)
        _feed_column(digest, value)
    elif isinstance(value, np.ndarray):
        _tag(digest, f"array:{value.dtype.str}{value.shape}")
        if value.dtype.kind in "biufcmM":
            _tag(digest, "bits", np.ascontiguousarray(value).tobytes())
        else:
            for item in value.ravel().tolist():
                _feed(digest, item)
    else:
        raise Uncacheable(f"cannot key an argument of type {type(value).__qualname__}")


def call_key(label: str, function: Callable, args: tuple, kwargs: dict) -> str:
    """The SHA-256 of everything ``function(*args, **kwargs)`` is computed from (module
    docstring); :class:`Uncacheable` for a function or argument whose content is not read."""
    name = f"{function.__module__}.{function.__qualname__}"
    if "<" in name:  # a lambda or a nested function: what it closes over is not an argument
        raise Uncacheable(f"cannot key the function {name}")
    digest = hashlib.sha256()
    _tag(digest, "made by", _versions().encode())
    _tag(digest, "function", name.encode())
    _tag(digest, "label", label.encode())
    _feed(digest, args)
    _feed(digest, dict(sorted(kwargs.items())))
    return digest.hexdigest()


_folders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def folder(con: duckdb.DuckDBPyConnection, study: str) -> Path | None:
    """Where the results of ``study`` are kept: ``<warehouse>.kept/<study>/`` beside the
    warehouse file of ``con``; None for a warehouse in memory (nothing is kept)."""
    if con not in _folders:
        found = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()
        path = found[0][0] if found else None
        _folders[con] = Path(path) if path else None
    warehouse = _folders[con]
    return warehouse.with_suffix(SUFFIX) / study if warehouse is not None else None


def _file(where: Path, label: str, key: str) -> Path:
    return where / f"{label}.{key}.pickle"


def _store(warehouse: Path, where: Path, path: Path, result: Any) -> None:
    # Written whole or not at all (a temporary file renamed); the folder readable by the owner
    # alone when the warehouse is (a restricted study). A result that cannot be kept is simply
    # not kept.
    try:
        if not where.is_dir():
            private = not warehouse.stat().st_mode & 0o077
            where.mkdir(parents=True, exist_ok=True)
            if private:
                os.chmod(where.parent, 0o700)
                os.chmod(where, 0o700)
        descriptor, temporary = tempfile.mkstemp(dir=where, suffix=".partial")
        try:
            with os.fdopen(descriptor, "wb") as out:
                pickle.dump(result, out, protocol=5)
            os.replace(temporary, path)
        except BaseException:  # Ctrl-C included: no partial file is left behind
            Path(temporary).unlink(missing_ok=True)
            raise
        kept = list(where.glob("*.pickle"))
        if len(kept) > KEPT_PER_STUDY:
            kept.sort(key=lambda p: p.stat().st_mtime_ns)
            for old in kept[:-KEPT_PER_STUDY]:
                old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a result that cannot be pickled or written: not kept
        return


def computed(
    con: duckdb.DuckDBPyConnection,
    study: str,
    label: str,
    function: Callable[..., T],
    *args: Any,
    **kwargs: Any,
) -> T:
    """``function(*args, **kwargs)``, or the result kept for the same call (:func:`call_key`)
    beside the warehouse of ``con`` for study ``study``; ``label`` names the analysis (the
    caller's words: ``"sign_tests"``, ``"responders"``)."""
    where = folder(con, study)
    if where is None:
        return function(*args, **kwargs)
    try:
        key = call_key(label, function, args, kwargs)
    except Uncacheable:
        return function(*args, **kwargs)
    path = _file(where, label, key)
    try:
        with open(path, "rb") as kept:
            result = pickle.load(kept)
    except FileNotFoundError:
        pass
    except Exception:  # noqa: BLE001 - an unreadable entry (damaged, another pandas): computed again
        pass
    else:
        try:
            os.utime(path)  # recently used: the last to be dropped
        except OSError:
            pass
        return result
    result = function(*args, **kwargs)
    if call_key(label, function, args, kwargs) == key:
        # Not when it changed its arguments: the call is its effect, not only its result.
        _store(_folders[con], where, path, result)
    return result
