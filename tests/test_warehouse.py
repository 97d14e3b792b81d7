"""The warehouse file: one writer at a time, and a clear message when it is taken."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pipeline import warehouse


def test_a_held_warehouse_gives_one_clear_message(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse.connect(path).close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"),
        str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(warehouse.WarehouseLocked, match="in use by another process .* then try again"):
            warehouse.connect(path)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    warehouse.connect(path).close()  # free again once the holder has gone


def test_written_file_opens_read_only(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = warehouse.connect(path)
    con.execute("CREATE TABLE t AS SELECT 42 AS x")
    con.close()
    reader = warehouse.connect(path, read_only=True)
    assert warehouse.scalar(reader, "SELECT x FROM t") == 42
    reader.close()
