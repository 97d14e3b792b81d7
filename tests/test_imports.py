"""Heavy libraries stay out of the code paths that do not use them: loading the Dagster
definitions (every UI reload, every sensor tick) must not pay for statistics or plotting."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("statsmodels", "matplotlib", "seaborn", "scipy.stats", "docx")


def _imported_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_loading_the_dagster_definitions_imports_no_statistics_or_plotting():
    assert _imported_after("import assets.definitions") == []
