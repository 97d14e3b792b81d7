"""The ``outcomes`` command.

``outcomes report``            materialize every study's assets (Dagster; added by ``assets.cli``)
``outcomes run --study DIR``   one study end to end, without Dagster
``outcomes demo``              regenerate the synthetic demo cohort
``outcomes export-figures``    figures from the warehouse in any format and width, e.g.
                               ``--study demo --formats tiff pdf --widths single``
``outcomes validate PATH``     check an export (and its study spec) without writing anything
``outcomes init --redcap-dictionary DICT.csv``  draft a study spec from a REDCap data dictionary
``outcomes export-summary --study DIR``  a site's summary bundle for a multi-centre study
                               (aggregates only; docs/multi-centre.md)
``outcomes pool --study DIR``  a pooled study (kind = "pooled") from its sites' bundles,
                               without Dagster
``outcomes demo-sites``        split the synthetic demo into three synthetic sites and pool them

Exit codes (every failure prints one line saying what happened and what to do;
``--debug`` shows the traceback instead):

0    success
1    the run finished with failures (see the Dagster run), an unexpected error,
     or for ``validate`` rows would be quarantined
2    the input or spec was refused: a missing or unreadable file, a bad spec,
     identifiers in an export (the message says what, where and how to fix it)
3    the warehouse is in use by another run (the message names the lock and the
     process holding it); wait for that run or stop it, then run again
4    out of disk space; free space where the warehouse and reports are written,
     then run again
130  interrupted (Ctrl-C); the warehouse keeps its last complete state, because
     each step replaces its tables in one transaction; run again to finish

A run killed outright (SIGKILL, a power cut) also leaves the warehouse in its
last complete state; the next run picks up from there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import paths
from pipeline.exits import FAILED, INTERRUPTED, NO_SPACE
from pipeline.exits import exit_code as _exit_code


def refuse_folders_without_spec(raw: Path, only: str | None) -> None:
    """Every folder under ``raw`` is a study (``only``: that folder alone); raise ``SpecError``
    naming the folders without a study.toml, or saying there is no study at all. Hidden
    folders (``.name``) are not studies, nor are the folders the run writes to (the reports,
    the warehouse's folder, the Dagster home) when they lie there."""
    import os

    from pipeline.spec.study import SPEC_FILENAME, SpecError

    if only:
        folders = [raw / only] if (raw / only).is_dir() else []
    else:
        written = {
            p.resolve()
            for p in (
                paths.reports_dir(),
                paths.warehouse_dir(),
                Path(os.environ.get("DAGSTER_HOME", paths.PROJECT_ROOT / ".dagster")),
            )
        }
        folders = (
            sorted(
                p
                for p in raw.iterdir()
                if p.is_dir() and not p.name.startswith(".") and p.resolve() not in written
            )
            if raw.is_dir()
            else []
        )
    bare = [str(folder) for folder in folders if not (folder / SPEC_FILENAME).is_file()]
    if bare:
        raise SpecError(
            f"{', '.join(bare)} hold{'s' if len(bare) == 1 else ''} no {SPEC_FILENAME}: every "
            "folder "
            f"under {raw} is a study. Write its spec there (data/raw/demo/{SPEC_FILENAME} is a "
            "commented example) or move the folder out."
        )
    if not folders and not only:
        raise SpecError(
            f"no study under {raw}: add a folder holding a {SPEC_FILENAME} and its exports "
            "(README: Adding a study), or set OUTCOMES_RAW to your folder of studies."
        )


def make_private_outputs(restricted: list[str], warehouse_paths: list[Path], reports: Path) -> None:
    """Owner-only modes on the restricted studies' warehouse files and reports (0600 files, 0700
    folders)."""
    from pipeline import warehouse

    if restricted:
        warehouse.make_private(
            *(f for path in warehouse_paths for f in warehouse.warehouse_files(path)),
            *(reports / name for name in restricted),
        )


def analysis_overrides(items: list[str] | None) -> dict[str, object]:
    """The ``--set OPTION=VALUE`` arguments as analysis overrides: the option by its override
    name (``conf_level``, ``post_min_day``) or as the spec names it (``analysis.conf_level``,
    ``analysis.post.min_day``); the value read as a TOML value (``0.9``, ``180``, ``true``), else
    as text (``t``). They are checked as the spec settings they replace when applied
    (:func:`pipeline.spec.study.with_overrides`): an unknown option or a bad value is refused
    there, in one line."""
    import tomllib

    from pipeline.spec.schema import OVERRIDE_SETTINGS
    from pipeline.spec.study import SpecError

    by_spec_name = {
        ".".join(part for part in spec_name if part): key
        for key, spec_name in OVERRIDE_SETTINGS.items()
    }
    overrides: dict[str, object] = {}
    for item in items or ():
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise SpecError(
                f"--set takes OPTION=VALUE (e.g. --set conf_level=0.9 or --set test=t); "
                f"got {item!r}"
            )
        name = name.removeprefix("analysis.")
        name = by_spec_name.get(name, name)
        try:
            value = tomllib.loads(f"value = {text.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        overrides[name] = value
    return overrides


def _run(args: argparse.Namespace) -> int:
    from pipeline import warehouse
    from pipeline.render import figure_processes
    from pipeline.spec.study import load_study, with_overrides
    from pipeline.steps import run_study

    study = load_study(Path(args.study))
    # Options set for this run are checked before anything is written.
    overrides = analysis_overrides(args.set)
    with_overrides(study, overrides)
    # --warehouse: the study's file (x.duckdb), or the folder holding one file per study.
    path = paths.warehouse_path(study.name, Path(args.warehouse) if args.warehouse else None)
    reports = Path(args.reports) if args.reports else paths.reports_dir()
    restricted = [study.name] if study.restricted else []
    # A restricted study's files are created owner-only, and existing ones are made so.
    with warehouse.private_files(study.restricted):
        make_private_outputs(restricted, [path], reports)
        try:
            with warehouse.run_lock(path):
                con = warehouse.connect(path)
                try:
                    # Workers import what they draw with on an idle core while the study is
                    # analysed, ready for the figures a run draws: every figure in a first run,
                    # those whose data changed in a rerun (test=t on the demo: 0.4 s sooner; a
                    # rerun that draws none lets them go at once, having cost idle time only).
                    with figure_processes.warm():
                        outcome = run_study(con, study, reports, overrides)
                finally:
                    con.close()
        finally:
            make_private_outputs(restricted, [path], reports)
    for f in outcome["files"]:
        print(
            f"{f.file}: {f.rows_read} rows read, {f.rows_accepted} accepted, {f.rows_quarantined} "
            "quarantined"
        )
    for path in outcome["paths"]:
        print(path)
    for note in outcome.get("notes", ()):
        print(f"note: {note[0].lower()}{note[1:]}")
    if outcome.get("reused"):
        print(
            "note: unchanged since the last run, so not run again: " + ", ".join(outcome["reused"])
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pipeline.synthetic import demo

    for path in demo.write(Path(args.out), seed=args.seed, n_patients=args.patients):
        print(path)
    return 0


FORMAT_CHOICES = ("png", "tiff", "pdf", "svg")
WIDTH_CHOICES = {"single": ("single",), "double": ("double",), "both": ("single", "double")}


def _export_figures(args: argparse.Namespace) -> int:
    from pipeline import warehouse
    from pipeline.pooled_study import is_pooled
    from pipeline.render import figure_files, figures
    from pipeline.spec.study import SPEC_FILENAME, load_study

    raw = paths.raw_data_dir()
    folders = (
        [raw / args.study]
        if args.study
        else sorted(p.parent for p in raw.glob(f"*/{SPEC_FILENAME}") if not is_pooled(p.parent))
    )
    reports = Path(args.reports) if args.reports else paths.reports_dir()
    widths = tuple(
        dict.fromkeys(w for asked in args.widths for w in WIDTH_CHOICES.get(asked, (asked,)))
    )
    formats = (*dict.fromkeys(args.formats), figure_files.SOURCE_DATA)
    con = warehouse.connect(Path(args.warehouse) if args.warehouse else None, read_only=True)
    try:
        for folder in folders:
            study = load_study(folder)
            analysed = warehouse.scalar(
                con,
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = ? AND table_name = 'paired_tests'",
                [study.name],
            )
            if not analysed:
                raise ValueError(
                    f"study '{study.name}' has no results in the warehouse yet; "
                    "run `outcomes report` (or `outcomes run`) first."
                )
            specs = figures.study_figures(con, study)
            if not specs:  # analysed, with nothing to draw: said, and the other studies exported
                print(
                    f"note: study '{study.name}' has no figure to export: "
                    + " ".join(figures.not_drawn(con, study)),
                    file=sys.stderr,
                )
                continue
            dpi = f"_{args.dpi}dpi" if args.dpi else ""
            out = reports / study.name / "figures" / "export"
            with warehouse.private_files(study.restricted):
                # Each figure drawn once per width, every format written from that drawing.
                written = figures.export(
                    specs,
                    out,
                    widths=widths,
                    formats=formats,
                    dpi=args.dpi,
                    layout=lambda base, width: base / f"{width}_column{dpi}",
                )
            if study.restricted:
                warehouse.make_private(reports / study.name)
            for path in written:
                print(path)
    finally:
        con.close()
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pipeline.ingest.validate import render, validate

    result = validate(
        Path(args.path),
        dictionary=Path(args.dictionary) if args.dictionary else None,
        spec=Path(args.spec) if args.spec else None,
    )
    print(render(result, as_json=args.json))
    return result["exit_code"]


def _init(args: argparse.Namespace) -> int:
    from pipeline.ingest.redcap import draft_spec, read_dictionary

    dictionary = read_dictionary(Path(args.redcap_dictionary))
    name = args.name or "study"
    text = draft_spec(dictionary, name=name, export_file=args.export)
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise FileExistsError(
                f"{out} already exists; choose another --out or move it away first."
            )
        out.write_text(text, encoding="utf-8")
        print(out)
    else:
        print(text)
    return 0


def _export_summary(args: argparse.Namespace) -> int:
    from pipeline import site_summary, warehouse
    from pipeline.spec.study import load_study

    study = load_study(Path(args.study))
    out = (
        Path(args.out)
        if args.out
        else site_summary.default_path(study, Path(args.reports) if args.reports else None)
    )
    with warehouse.private_files(study.restricted):
        print(site_summary.export_summary(study, out))
    return 0


def _pool(args: argparse.Namespace) -> int:
    from pipeline import pooled_study, warehouse
    from pipeline.provenance import recorded_run

    study = pooled_study.load_pooled_study(Path(args.study))
    # --warehouse: the study's file (x.duckdb), or the folder holding one file per study.
    path = paths.warehouse_path(study.name, Path(args.warehouse) if args.warehouse else None)
    reports = Path(args.reports) if args.reports else paths.reports_dir()
    with warehouse.run_lock(path):
        con = warehouse.connect(path)
        try:
            # On record in meta.runs as every run is (the spec's and the bundles' hashes).
            with recorded_run(con, study):
                written = pooled_study.pool_study(con, study, reports)
        finally:
            con.close()
    for written_path in written:
        print(written_path)
    return 0


def _demo_sites(args: argparse.Namespace) -> int:
    from pipeline.synthetic import sites

    for path in sites.write_example(
        Path(args.demo), Path(args.sites), Path(args.pooled), seed=args.seed
    ):
        print(path)
    return 0


def parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The command line of every command that needs no Dagster, and its subcommands, to which the
    Dagster layer adds ``report`` (``assets.cli``)."""
    parser = argparse.ArgumentParser(prog="outcomes", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one study end to end without Dagster")
    run.add_argument("--study", required=True, help="study folder holding study.toml")
    set_option(run)
    _locations(run, "")
    run.set_defaults(func=_run)

    demo = commands.add_parser("demo", help="write the synthetic demo cohort")
    demo.add_argument("--seed", type=int, default=63)
    demo.add_argument("--patients", type=int, default=63)
    demo.add_argument("--out", default=str(paths.RAW_DATA_DIR / "demo"))
    demo.set_defaults(func=_demo)

    export = commands.add_parser(
        "export-figures",
        help="write every figure from the warehouse in a journal's formats, resolution and "
        "column widths (a run writes those of the spec's [figures] only)",
    )
    export.add_argument("--study", help="only this study (folder under data/raw); default all")
    export.add_argument(
        "--formats",
        "--format",
        nargs="+",
        default=list(FORMAT_CHOICES),
        choices=FORMAT_CHOICES,
        help="one or more of png (300 dpi), tiff (600 dpi, LZW), pdf (fonts embedded), svg "
        "(text as text); default all four. Each figure is drawn once per width for all of them",
    )
    export.add_argument("--dpi", type=int, help="raster resolution (default: TIFF 600, PNG 300)")
    export.add_argument(
        "--widths",
        "--width",
        nargs="+",
        default=["both"],
        choices=list(WIDTH_CHOICES),
        help="single column 3.5 in (about 89 mm), double column 7 in (about 180 mm), or both "
        "(the default)",
    )
    _locations(
        export, "; files go to <study>/figures/export/<width>_column[_<dpi>dpi]/ with their CSV"
    )
    export.set_defaults(func=_export_figures)

    check = commands.add_parser(
        "validate",
        help="check an export without writing anything "
        "(exit 0 clean, 1 rows would be quarantined, 2 refused)",
    )
    check.add_argument(
        "path", help="an export (CSV, XLSX, REDCap records), a study folder or its study.toml"
    )
    check.add_argument("--dictionary", help="the REDCap data dictionary of the export")
    check.add_argument(
        "--spec",
        help="study.toml (or its folder): check the whole study, PATH standing in "
        "for its visits file",
    )
    check.add_argument("--json", action="store_true", help="machine-readable findings")
    check.set_defaults(func=_validate)

    init = commands.add_parser("init", help="draft a study spec from a REDCap data dictionary")
    init.add_argument("--redcap-dictionary", required=True, help="the data dictionary CSV")
    init.add_argument("--name", help="study name (lower-case letters, digits, _)")
    init.add_argument("--export", default="records.csv", help="file name of the records export")
    init.add_argument("--out", help="write the draft here (default: print it)")
    init.set_defaults(func=_init)

    summary = commands.add_parser(
        "export-summary",
        help="write a site's summary bundle for a multi-centre study: per outcome only counts, "
        "sums, sums of squares and cross-products, small cells suppressed (docs/multi-centre.md)",
    )
    summary.add_argument("--study", required=True, help="study folder holding study.toml")
    summary.add_argument(
        "--out", help="the bundle file (default reports/<study>/<study>.site-summary.json)"
    )
    summary.add_argument("--reports", help="reports folder (default reports/)")
    summary.set_defaults(func=_export_summary)

    pool = commands.add_parser(
        "pool", help='pool a multi-centre study (kind = "pooled") from its sites\' bundles'
    )
    pool.add_argument("--study", required=True, help="pooled study folder holding study.toml")
    _locations(pool, "")
    pool.set_defaults(func=_pool)

    sites = commands.add_parser(
        "demo-sites",
        help="split the synthetic demo into three synthetic sites, export their bundles and "
        "write the pooled example study (docs/multi-centre.md)",
    )
    sites.add_argument("--demo", default=str(paths.RAW_DATA_DIR / "demo"))
    sites.add_argument("--sites", default=str(paths.PROJECT_ROOT / "data" / "sites"))
    sites.add_argument("--pooled", default=str(paths.RAW_DATA_DIR / "demo_pooled"))
    sites.add_argument("--seed", type=int, default=22)
    sites.set_defaults(func=_demo_sites)
    return parser, commands


def set_option(command: argparse.ArgumentParser) -> None:
    """The ``--set OPTION=VALUE`` option of a command that runs analyses
    (:func:`analysis_overrides`)."""
    command.add_argument(
        "--set",
        action="append",
        metavar="OPTION=VALUE",
        help="change an analysis option for this run without editing the spec (repeatable): "
        "alpha, conf_level, test, multiplicity, pre_max_day, post_rule, post_min_day, "
        "post_max_day, post_visit or post_target_day, e.g. --set conf_level=0.9 --set test=t. "
        "Only the steps that read it run again, and only files whose bytes change are rewritten",
    )


def _locations(command: argparse.ArgumentParser, reports_note: str) -> None:
    """The ``--warehouse`` and ``--reports`` options of a command that reads or writes them."""
    command.add_argument(
        "--warehouse",
        help="folder of the warehouses, one DuckDB file per study (default data/processed/), "
        "or one .duckdb file",
    )
    command.add_argument("--reports", help=f"reports folder (default reports/){reports_note}")


def dispatch(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Run the command ``argv`` names; every failure ends in one line and an exit code."""
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(INTERRUPTED_LINE, file=sys.stderr)
        return INTERRUPTED
    # Every error a user can cause is one line; the rest too, unless --debug.
    except Exception as err:
        if args.debug:
            raise
        code = _exit_code(type(err).__name__, str(err), err)
        warehouse_path = (
            Path(args.warehouse) if getattr(args, "warehouse", None) else paths.warehouse_location()
        )
        print(
            error_line(
                code, one_line(str(err)) or type(err).__name__, warehouse_path=warehouse_path
            ),
            file=sys.stderr,
        )
        return code


def main(argv: list[str] | None = None) -> int:
    """``outcomes`` without the Dagster command (``report``); the installed command is
    :func:`assets.cli.main`, which adds it."""
    return dispatch(parser()[0], argv)


def error_line(code: int, message: str, *, step: str = "", warehouse_path: Path) -> str:
    """The one line a failure prints: what happened and what to do."""
    if code == INTERRUPTED:
        return INTERRUPTED_LINE
    if code == NO_SPACE:
        return (
            f"error: out of disk space ({message}). Free space on the disk holding the warehouse "
            f"({warehouse_path}) and the reports, or write them elsewhere (--warehouse, --reports, "
            "OUTCOMES_WAREHOUSE, OUTCOMES_REPORTS), then run again; the warehouse keeps its last "
            "complete state."
        )
    return f"error: {step + ': ' if step else ''}{message}" + (
        " (run again with --debug for details)" if code == FAILED else ""
    )


INTERRUPTED_LINE = (
    "interrupted: the run stopped before it finished; the warehouse keeps its last complete state "
    "(each step replaces its tables in one transaction). Run the same command again to finish."
)


def one_line(message: str) -> str:
    """A message on one line: DuckDB and Dagster messages can span several."""
    return " ".join(part.strip() for part in message.strip().splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())
