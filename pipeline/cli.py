"""The ``outcomes`` command.

``outcomes report``            materialize every study's assets (Dagster), print the files written
``outcomes run --study DIR``   one study end to end, without Dagster
``outcomes demo``              regenerate the synthetic demo cohort
``outcomes export-figures``    re-export figures from the warehouse, e.g. ``--format tiff --dpi 600 --width double``
``outcomes validate PATH``     check an export (and its study spec) without writing anything
``outcomes init --redcap-dictionary DICT.csv``  draft a study spec from a REDCap data dictionary

Exit codes: 0 success; 1 the run finished with failures (see the Dagster
run), or for ``validate`` rows would be quarantined; 2 the input or spec was
refused: identifiers, an unreadable file, a bad spec (the message says what
and how to fix it). ``--debug`` shows the traceback.
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


def _export_figures(args: argparse.Namespace) -> int:
    from pipeline import figures, warehouse
    from pipeline.study import SPEC_FILENAME, load_study

    raw = paths.raw_data_dir()
    folders = [raw / args.study] if args.study else sorted(p.parent for p in raw.glob(f"*/{SPEC_FILENAME}"))
    reports = Path(args.reports) if args.reports else paths.reports_dir()
    widths = ("single", "double") if args.width == "both" else (args.width,)
    con = warehouse.connect(Path(args.warehouse) if args.warehouse else None, read_only=True)
    try:
        for folder in folders:
            study = load_study(folder)
            analysed = warehouse.scalar(con, "SELECT count(*) FROM information_schema.tables "
                                             "WHERE table_schema = ? AND table_name = 'paired_tests'", [study.name])
            specs = figures.study_figures(con, study) if analysed else []
            if not specs:
                raise ValueError(f"study '{study.name}' has no results in the warehouse yet; "
                                 "run `outcomes report` (or `outcomes run`) first.")
            dpi = f"_{args.dpi}dpi" if args.dpi else ""
            out = reports / study.name / "figures" / "export"
            for path in figures.export(specs, out, widths=widths, formats=(args.format,), dpi=args.dpi,
                                       layout=lambda base, width: base / f"{args.format}_{width}{dpi}"):
                print(path)
    finally:
        con.close()
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pipeline.validate import render, validate

    result = validate(Path(args.path), dictionary=Path(args.dictionary) if args.dictionary else None,
                      spec=Path(args.spec) if args.spec else None)
    print(render(result, as_json=args.json))
    return result["exit_code"]


def _init(args: argparse.Namespace) -> int:
    from pipeline.redcap import draft_spec, read_dictionary

    dictionary = read_dictionary(Path(args.redcap_dictionary))
    name = args.name or "study"
    text = draft_spec(dictionary, name=name, export_file=args.export)
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise FileExistsError(f"{out} already exists; choose another --out or move it away first.")
        out.write_text(text, encoding="utf-8")
        print(out)
    else:
        print(text)
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

    export = commands.add_parser("export-figures", help="re-export every figure from the warehouse at a "
                                 "journal's format, resolution and column width")
    export.add_argument("--study", help="only this study (folder name under data/raw); default every study")
    export.add_argument("--format", default="tiff", choices=["tiff", "png", "pdf", "svg"])
    export.add_argument("--dpi", type=int, help="resolution for raster formats (default: TIFF 600, PNG 300)")
    export.add_argument("--width", default="double", choices=["single", "double", "both"],
                        help="single column 3.5 in (about 89 mm) or double column 7 in (about 180 mm)")
    export.add_argument("--warehouse", help="DuckDB file (default data/processed/warehouse.duckdb)")
    export.add_argument("--reports", help="reports folder (default reports/); files go to "
                        "<study>/figures/export/<format>_<width>[_<dpi>dpi]/")
    export.set_defaults(func=_export_figures)

    check = commands.add_parser("validate", help="check an export without writing anything "
                                "(exit 0 clean, 1 rows would be quarantined, 2 refused)")
    check.add_argument("path", help="an export (CSV, XLSX, REDCap records), a study folder or its study.toml")
    check.add_argument("--dictionary", help="the REDCap data dictionary of the export")
    check.add_argument("--spec", help="study.toml (or its folder): check the whole study, PATH standing in "
                                      "for its visits file")
    check.add_argument("--json", action="store_true", help="machine-readable findings")
    check.set_defaults(func=_validate)

    init = commands.add_parser("init", help="draft a study spec from a REDCap data dictionary")
    init.add_argument("--redcap-dictionary", required=True, help="the data dictionary CSV")
    init.add_argument("--name", help="study name (lower-case letters, digits, _)")
    init.add_argument("--export", default="records.csv", help="file name of the records export")
    init.add_argument("--out", help="write the draft here (default: print it)")
    init.set_defaults(func=_init)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # every error a user can cause is one line; the rest too, unless --debug
        from pipeline.ingest import IngestError
        from pipeline.study import SpecError
        from pipeline.warehouse import WarehouseLocked

        if args.debug:
            raise
        refused = isinstance(err, (SpecError, IngestError, WarehouseLocked, ValueError, FileNotFoundError,
                                   FileExistsError))
        print(f"error: {err}" + ("" if refused else " (run again with --debug for details)"), file=sys.stderr)
        return 2 if refused else 1


if __name__ == "__main__":
    sys.exit(main())
