"""The installed ``outcomes`` command: every command of :mod:`pipeline.cli`, and ``outcomes
report``, which materializes every study's assets with Dagster (or one study's, ``--study``) and
records the run in the UI's history (``DAGSTER_HOME``, default ``.dagster/``). It lives here, with
the Dagster layer, so the core never imports Dagster.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys

from pipeline import cli, paths
from pipeline.exits import FAILED, OK, exit_code


def _report(args: argparse.Namespace) -> int:
    from assets.graph import on_workers
    from assets.materialize import materialize_all
    from pipeline import warehouse
    from pipeline.pooled_study import is_pooled
    from pipeline.spec.study import discover_studies, load_study, with_overrides

    # Specs are read first so a bad one is refused before anything runs; so is a study folder
    # without its spec, and a run with no study at all.
    raw = paths.raw_data_dir()
    cli.refuse_folders_without_spec(raw, args.study)
    studies = [
        load_study(folder)
        for folder in discover_studies(raw)
        if (not args.study or folder.name == args.study) and not is_pooled(folder)
    ]
    # Options set for this run (--set), checked against every study before anything runs.
    overrides = cli.analysis_overrides(args.set)
    for study in studies:
        with_overrides(study, overrides)
    restricted = [s.name for s in studies if s.restricted]
    location, reports = paths.warehouse_location(), paths.reports_dir()
    # Each study's warehouse file, locked for the whole run (one file may hold every study).
    files = {s.name: paths.warehouse_path(s.name, location) for s in studies}
    private = [files[name] for name in restricted]
    # Dagster's own console output (a failed step's traceback among it) shows only with --debug;
    # the run's full log stays in its history, in the UI.
    console = contextlib.nullcontext() if args.debug else _quiet()
    with warehouse.private_files(bool(restricted)):
        cli.make_private_outputs(restricted, private, reports)
        try:
            with contextlib.ExitStack() as locks:
                # Steps on Celery workers, maybe on other machines, are no processes of this one:
                # there each study's queue and the run queue keep one writer (docs/scaling.md).
                for file in [] if on_workers() else sorted(set(files.values())):
                    locks.enter_context(warehouse.run_lock(file))
                with console:
                    success, written, run_id = materialize_all(args.study, overrides)
                    failure = None if success else _dagster_failure(run_id)
        finally:
            cli.make_private_outputs(restricted, private, reports)
    for file in sorted(set(written)):
        print(
            file.relative_to(paths.PROJECT_ROOT)
            if file.is_relative_to(paths.PROJECT_ROOT)
            else file
        )
    if not success:
        if failure is not None:
            step, code, line = failure
            if "asset check failed" in line:
                print(
                    f"error: {step}: {line}. Open the UI (make ui) for the check's findings: its "
                    "metadata lists "
                    "the rows or outcomes at fault; the spec's [checks] sets the thresholds.",
                    file=sys.stderr,
                )
                return FAILED
            print(cli.error_line(code, line, step=step, warehouse_path=location), file=sys.stderr)
            return code
        print(
            "error: the run did not complete; open the UI (make ui) to see which step failed.",
            file=sys.stderr,
        )
        return FAILED
    return OK


@contextlib.contextmanager
def _quiet():
    """Nothing of what Dagster prints reaches the terminal: neither this process's output nor
    that of the processes it starts for steps (several studies), which write to the standard
    error they inherit, not to ``sys.stderr``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _dagster_failure(run_id: str) -> tuple[str, int, str] | None:
    """The first failed step of the run ``run_id``: its key, the exit code and the user's error in
    one line. (By its id: the latest run of the instance may be another, started meanwhile from
    the UI.)"""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            error = record.dagster_event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause  # Dagster wraps the step's own exception
            if error is None:
                continue
            # "pipeline.spec.study.SpecError: <message>": the message alone, as `outcomes run`
            # prints it.
            message = re.sub(
                rf"^[\w.]*\b{re.escape(error.cls_name)}(: |$)", "", cli.one_line(error.message)
            )
            # The step's asset, as the UI names it (tiny__ingested -> tiny/ingested).
            step = record.dagster_event.step_key.replace("__", "/")
            return step, exit_code(error.cls_name, error.message), message
    return None


def main(argv: list[str] | None = None) -> int:
    parser, commands = cli.parser()
    report = commands.add_parser(
        "report", help="materialize every asset and print the files written"
    )
    report.add_argument("--study", help="only this study (folder name under data/raw)")
    cli.set_option(report)
    report.set_defaults(func=_report)
    return cli.dispatch(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
