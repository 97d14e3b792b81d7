"""A pooled (multi-centre) study: the worked example (the synthetic demo split into three sites,
data/raw/demo_pooled), the refusal of bundles that disagree, and its outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline import paths
from pipeline.cli import main
from pipeline.ingest.readers import sha256
from pipeline.pooled_study import (
    BundleError,
    analyse_pooled,
    forest_figure,
    load_pooled_study,
    pool_study,
    read_bundles,
)
from pipeline.spec.study import SpecError, load_study

EXAMPLE = paths.RAW_DATA_DIR / "demo_pooled"


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    """The worked example pooled once: (study, results, reports folder)."""
    folder = tmp_path_factory.mktemp("pooled")
    study = load_pooled_study(EXAMPLE)
    con = duckdb.connect(str(folder / "w.duckdb"))
    try:
        written = pool_study(con, study, folder / "reports")
        bundles, _ = read_bundles(study)
        results = analyse_pooled(con, study, bundles)
    finally:
        con.close()
    return study, results, folder / "reports" / study.name, written


def test_the_fixed_pooled_estimates_equal_the_single_study_analysis_of_the_demo(pooled, demo_run):
    # Every demo patient is at exactly one of the three sites, so the paired t test pooled from
    # the three bundles is the demo's own paired t test (tests/conftest.py demo_run), which is
    # checked against R in tests/test_demo_against_r.py.
    _, results, _, _ = pooled
    folder, _ = demo_run
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    try:
        demo = con.execute(
            "SELECT outcome, score, n_pairs, pre_mean, pre_sd, post_mean, post_sd, mean_diff, "
            "sd_diff, t, df, p_t FROM demo.paired_tests WHERE \"group\" = 'all'"
        ).df()
    finally:
        con.close()
    demo = demo.rename(columns=lambda c: c if c in ("outcome", "score") else f"demo_{c}")
    merged = demo.merge(results["pooled_paired"], on=["outcome", "score"], validate="1:1")
    assert len(merged) == len(demo) == 20
    assert (merged["n_sites"] == 3).all()
    assert (merged["n_pairs"] == merged["demo_n_pairs"]).all()
    for ours, theirs in [
        ("mean_pre", "pre_mean"),
        ("sd_pre", "pre_sd"),
        ("mean_post", "post_mean"),
        ("sd_post", "post_sd"),
        ("mean_change", "mean_diff"),
        ("sd_change", "sd_diff"),
        ("t", "t"),
        ("df", "df"),
        ("p", "p_t"),
    ]:
        assert merged[ours].to_numpy() == pytest.approx(
            merged[f"demo_{theirs}"].to_numpy(), rel=1e-9, abs=1e-12
        ), ours


def test_the_pooled_study_writes_its_outputs_and_lists_each_bundles_hash(pooled):
    study, results, folder, written = pooled
    assert {p.relative_to(folder).as_posix() for p in written} >= {
        "tables/table_2.md",
        "tables/table_2.docx",
        "tables/meta_analysis.csv",
        "figures/forest_sites.png",
        "methods.md",
        "report.html",
        "provenance.json",
    }
    record = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    assert [(b["site"], b["sha256"]) for b in record["bundles"]] == [
        (site, sha256(EXAMPLE / file)) for site, file in study.sites
    ]
    rows = [
        line.split("|")[1].strip()
        for line in (folder / "tables" / "table_2.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("|")
    ]
    assert rows.count("All patients, pooled") == 20
    assert rows.count("Random effects (REML, Hartung-Knapp)") == 20
    for site, _ in study.sites:
        assert rows.count(f"Site {site}") == 20
    methods = (folder / "methods.md").read_text(encoding="utf-8")
    assert methods.split("\n")[2].startswith("Three sites analysed")
    assert "restricted maximum likelihood" in methods
    assert "Hartung-Knapp" in methods
    # The report's table is styled as every publication table page (unstyled, its first column
    # came out centred and bold).
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert "<style>" in report and 'src="figures/forest_sites.png"' in report


def test_the_example_explores_heterogeneity_by_its_declared_site_characteristic(pooled):
    # data/raw/demo_pooled declares each site's share of Bell palsy as the moderator: three
    # sites leave the regression one residual degree of freedom, which the eTable marks as
    # exploratory (the numbers themselves: tests/test_pooled_meta_regression.py against R).
    study, results, folder, written = pooled
    fits = pd.read_csv(folder / "tables" / "meta_regression.csv")
    assert len(fits) == 2 * 20
    assert list(fits["term"][:2]) == ["intercept", "bells_palsy_pct"]
    assert (fits["k"] == 3).all() and (fits["qe_df"] == 1).all() and (fits["note"].isna()).all()
    assert (fits["qm_distribution"] == "F").all() and (fits["tau2_method"] == "REML").all()
    etable = (folder / "tables" / "etable_meta_regression.md").read_text(encoding="utf-8")
    assert "(exploratory)" in etable
    assert etable.count("Share of Bell palsy (per percentage point)") == 20
    assert "3 sites for 2 coefficients leave 1 residual degree of freedom" in etable
    assert (folder / "tables" / "etable_meta_regression.docx").is_file()
    methods = (folder / "methods.md").read_text(encoding="utf-8")
    assert "meta-regression of the sites' mean changes on the share of Bell palsy" in methods
    assert "with 3 sites it is exploratory" in methods
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert "eTable. Meta-regression" in report
    # A forest plot of every outcome, the primary's first.
    figures = sorted(p.name for p in (folder / "figures").glob("forest_sites*.png"))
    assert len(figures) == 20 and "forest_sites.png" in figures
    assert report.index('src="figures/forest_sites.png"') < report.index(
        'src="figures/forest_sites_sunnybrook_composite.png"'
    )


def test_forest_plots_unchanged_since_the_last_run_are_not_drawn_again(
    pooled, tmp_path, monkeypatch
):
    # Drawn through the study figures' render cache (figure_files.export): a second run of the
    # same results draws nothing, and a forest plot no longer asked for goes with its record.
    from pipeline import pooled_study
    from pipeline.render import figure_files

    study, results, _, _ = pooled
    bundles, hashes = read_bundles(study)
    first = pooled_study.write_pooled_outputs(study, results, bundles, hashes, tmp_path)
    figures = tmp_path / study.name / "figures"
    record = json.loads((figures / figure_files.RENDERED).read_text(encoding="utf-8"))
    assert sorted(record) == sorted(p.name for p in figures.glob("forest_sites*.png"))
    assert len(record) == 20

    def drawn(*args, **kwargs):
        raise AssertionError("a forest plot was drawn again")

    monkeypatch.setattr(figure_files, "_draw_and_save", drawn)
    monkeypatch.setattr(figure_files, "_in_processes", drawn)
    assert pooled_study.write_pooled_outputs(study, results, bundles, hashes, tmp_path) == first
    monkeypatch.undo()

    one = results["pooled_outcomes"].iloc[[0]]
    pooled_study.write_pooled_outputs(
        study, {**results, "pooled_outcomes": one}, bundles, hashes, tmp_path
    )
    record = json.loads((figures / figure_files.RENDERED).read_text(encoding="utf-8"))
    assert sorted(record) == sorted(p.name for p in figures.glob("forest_sites*.png"))
    assert len(record) == 1


def test_forest_plot_draws_every_site_and_keeps_its_text_inside(pooled):
    # The first drawing ran its axis label off the right edge of the figure: every text of the
    # figure must lie inside it.
    study, results, _, _ = pooled
    fig = forest_figure(study, results, ("house_brackmann_observer", "grade"))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    ax = fig.axes[0]
    texts = [ax.xaxis.label, ax.title, *ax.get_yticklabels(), *fig.texts]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= -1 and box.x1 <= width + 1, text.get_text()
        assert box.y0 >= -1 and box.y1 <= height + 1, text.get_text()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [label.split(" (")[0] for label in labels[:3]] == [f"Site {s}" for s, _ in study.sites]
    assert len(ax.patches) == 2  # the two pooled diamonds
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_forest_plot_of_an_outcome_with_one_site_says_why_it_has_no_random_effects(pooled):
    # Drawn for every outcome, a forest plot can meet an outcome that only one site reported
    # (the others suppressed it): its random-effects row had a label and nothing beside it.
    from pipeline.statistics.pooled import meta_analysis

    study, results, _, _ = pooled
    key = ("sunnybrook", "composite")
    sites = results["site_effects"]
    one = sites[(sites["outcome"] == key[0]) & (sites["score"] == key[1])].iloc[:1]
    meta = meta_analysis(one, tau2_method=study.tau2_method, hartung_knapp=study.hartung_knapp)
    fig = forest_figure(study, {**results, "site_effects": one, "meta_analysis": meta}, key)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1].startswith("Random effects: not estimable, fewer than two sites")
    import matplotlib.pyplot as plt

    plt.close(fig)


def copy_example(tmp_path: Path) -> Path:
    folder = tmp_path / "demo_pooled"
    shutil.copytree(EXAMPLE, folder)
    return folder


def edit_bundle(path: Path, change) -> None:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    change(bundle)
    path.write_text(json.dumps(bundle), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda b: b["plan"]["post"].update(rule="named_visit"), "plan.post.rule"),
        (lambda b: b["outcomes"][2].update(version="other"), "version of outcome sunnybrook"),
        (
            lambda b: b["outcomes"][3].update(scoring_sha256="0" * 64),
            "scoring_sha256 of outcome eface total",
        ),
    ],
)
def test_bundles_that_disagree_are_refused_naming_the_difference(tmp_path, change, named):
    folder = copy_example(tmp_path)
    edit_bundle(folder / "demo_south.site-summary.json", change)
    with pytest.raises(BundleError) as refused:
        read_bundles(load_pooled_study(folder))
    message = str(refused.value)
    assert named in message
    assert "'North' (demo_north.site-summary.json)" in message
    assert "'South' (demo_south.site-summary.json)" in message
    assert "named_visit" not in message and "other" not in message.split("differ")[0]


def test_a_bundle_of_another_format_version_is_refused(tmp_path):
    folder = copy_example(tmp_path)
    edit_bundle(folder / "demo_central.site-summary.json", lambda b: b.update(format_version=99))
    with pytest.raises(BundleError, match="another format version"):
        read_bundles(load_pooled_study(folder))


def test_a_pooled_spec_is_not_run_as_a_single_study_and_pool_runs_it(tmp_path, capsys):
    with pytest.raises(SpecError, match="outcomes pool --study"):
        load_study(EXAMPLE)
    args = ["--warehouse", str(tmp_path / "w.duckdb"), "--reports", str(tmp_path / "reports")]
    assert main(["pool", "--study", str(EXAMPLE), *args]) == 0
    assert "report.html" in capsys.readouterr().out


@pytest.mark.slow
def test_the_example_bundles_are_what_the_sites_export(tmp_path):
    # `outcomes demo-sites` splits the demo and exports each site's bundle: the committed
    # example is what it writes. Written into the committed example, it changes no byte (a
    # bundle that differs only in the code commit that exported it is kept); written afresh,
    # the bundles differ from the committed ones in that record alone.
    kept = copy_example(tmp_path)
    for pooled in (kept, tmp_path / "fresh"):
        arguments = ["demo-sites", "--sites", str(tmp_path / "sites"), "--pooled", str(pooled)]
        assert main(arguments) == 0
    for path in EXAMPLE.iterdir():
        assert (kept / path.name).read_bytes() == path.read_bytes(), path.name
        fresh = tmp_path / "fresh" / path.name
        if path.suffix == ".json":
            committed, written = (json.loads(p.read_text(encoding="utf-8")) for p in (path, fresh))
            for bundle in (committed, written):
                bundle["provenance"].pop("code")
                bundle["provenance"].pop("packages")
            assert committed == written, path.name
        else:
            assert fresh.read_bytes() == path.read_bytes(), path.name
    assert sorted(p.name for p in kept.iterdir()) == sorted(p.name for p in EXAMPLE.iterdir())
    for site in ("north", "central", "south"):
        committed = paths.PROJECT_ROOT / "data" / "sites" / f"demo_{site}"
        for path in committed.iterdir():
            assert (tmp_path / "sites" / f"demo_{site}" / path.name).read_bytes() == (
                path.read_bytes()
            )


def test_a_pooled_study_is_a_graph_of_its_own_run_when_a_bundle_changes(tmp_path, monkeypatch):
    # One source asset per bundle, then the pooled assets; and, as for a single study's export
    # (tests/test_checks_and_sensor.py), the pooled study's fingerprint covers its spec and
    # every bundle, so a site sending a new bundle makes the export sensor request a run of the
    # pooled study.
    import dagster as dg

    from assets.definitions import build_definitions

    raw = tmp_path / "raw"
    shutil.copytree(EXAMPLE, raw / "demo_pooled")
    monkeypatch.setenv("OUTCOMES_RAW", str(raw))
    monkeypatch.setenv("OUTCOMES_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("OUTCOMES_REPORTS", str(tmp_path / "reports"))
    with dg.DagsterInstance.ephemeral() as instance:
        defs = build_definitions()
        keys = {"/".join(k.path) for k in defs.resolve_all_asset_keys()}
        assert keys == {
            "demo_pooled/bundle_north",
            "demo_pooled/bundle_central",
            "demo_pooled/bundle_south",
            "demo_pooled/ingested",
            "demo_pooled/pooled_analysis",
            "demo_pooled/report",
        }
        assert [s.name for s in defs.sensors] == ["raw_export_changed"]
        sensor = defs.resolve_sensor_def("raw_export_changed")

        def evaluate():
            context = dg.build_sensor_context(instance=instance, definitions=defs)
            return sensor.evaluate_tick(context).run_requests

        first = evaluate()
        assert [r.tags["study"] for r in first] == ["demo_pooled"]
        job = defs.resolve_implicit_global_asset_job_def()
        ingested = dg.AssetKey(["demo_pooled", "ingested"])
        assert job.execute_in_process(instance=instance, asset_selection=[ingested]).success
        assert evaluate() == []
        edit_bundle(
            raw / "demo_pooled" / "demo_south.site-summary.json",
            lambda b: b["outcomes"][0]["moments"].update(
                sum_change=b["outcomes"][0]["moments"]["sum_change"] + 1
            ),
        )
        changed = evaluate()
        assert [r.tags["study"] for r in changed] == ["demo_pooled"]
        assert changed[0].run_key != first[0].run_key
