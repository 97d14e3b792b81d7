"""The ``outcomes`` command.

``outcomes report``            materialize every study's assets (Dagster), print the files written
``outcomes run --study DIR``   one study end to end, without Dagster
``outcomes demo``              regenerate the synthetic demo cohort

Exit codes: 0 success; 1 the run finished with failures (see the Dagster
run); 2 the input or spec was refused (the message says what and how to fix
it). ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import paths


def _report(args: argparse.Namespace) -> int:
    # The one place the core reaches into the Dagster layer: so a single command
    # runs the asset graph and records the run in the UI's history.
    from assets.materialize import materialize_all

    success, written = materialize_all(args.study)
    for path in sorted(set(written)):
        print(path.relative_to(paths.PROJECT_ROOT) if path.is_relative_to(paths.PROJECT_ROOT) else path)
    if not success:
        print("error: the run did not complete; open the UI (make ui) to see which step failed.",
              file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from pipeline import warehouse
    from pipeline.report import run_study
    from pipeline.study import load_study

    study = load_study(Path(args.study))
    con = warehouse.connect(Path(args.warehouse) if args.warehouse else None)
    try:
        outcome = run_study(con, study, Path(args.reports) if args.reports else paths.reports_dir())
    finally:
        con.close()
    for f in outcome["files"]:
        print(f"{f.file}: {f.rows_read} rows read, {f.rows_accepted} accepted, {f.rows_quarantined} quarantined")
    for path in outcome["paths"]:
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipeline import demo

    for path in demo.write(Path(args.out), seed=args.seed, n_patients=args.patients):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="outcomes", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    report = commands.add_parser("report", help="materialize every asset and print the files written")
    report.add_argument("--study", help="only this study (folder name under data/raw)")
    report.set_defaults(func=_report)

    run = commands.add_parser("run", help="run one study end to end without Dagster")
    run.add_argument("--study", required=True, help="study folder holding study.toml")
    run.add_argument("--warehouse", help="DuckDB file (default data/processed/warehouse.duckdb)")
    run.add_argument("--reports", help="reports folder (default reports/)")
    run.set_defaults(func=_run)

    demo = commands.add_parser("demo", help="write the synthetic demo cohort")
    demo.add_argument("--seed", type=int, default=63)
    demo.add_argument("--patients", type=int, default=63)
    demo.add_argument("--out", default=str(paths.RAW_DATA_DIR / "demo"))
    demo.set_defaults(func=_demo)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # every error a user can cause is one line; the rest too, unless --debug
        from pipeline.ingest import IngestError
        from pipeline.study import SpecError
        from pipeline.warehouse import WarehouseLocked

        if args.debug:
            raise
        refused = isinstance(err, (SpecError, IngestError, WarehouseLocked, ValueError, FileNotFoundError))
        print(f"error: {err}" + ("" if refused else " (run again with --debug for details)"), file=sys.stderr)
        return 2 if refused else 1


if __name__ == "__main__":
    sys.exit(main())
