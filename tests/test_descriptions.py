"""What the Dagster UI shows of each asset, check, sensor and resource reads as written: the UI
renders descriptions as Markdown, where a path such as ``reports/<study>/`` would lose its
``<study>`` as an HTML tag and underscores or asterisks would turn into emphasis."""

from __future__ import annotations

import html
import re

import dagster as dg
import pytest
from markdown_it import MarkdownIt

from assets.definitions import build_definitions
from conftest import SPEC, write_study

# A study name as Markdown-like as the spec allows.
NAME = "my__facial_study__"


def _rendered(markdown: str) -> str:
    """The text a reader sees once the Markdown is rendered."""
    page = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


def _as_written(markdown: str) -> str:
    """The description with its code spans' backticks taken away."""
    return " ".join(re.sub(r"(`+)(.+?)\1", r"\2", markdown, flags=re.S).split())


def _descriptions() -> dict[str, str]:
    defs = build_definitions()
    out = {str(node.key): node.description for node in defs.resolve_asset_graph().asset_nodes}
    # A study's checks are declared on the assets they check (assets/checks.py).
    out |= {
        str(spec.key): spec.description
        for asset in defs.assets
        if isinstance(asset, dg.AssetsDefinition)
        for spec in asset.check_specs
    }
    out |= {sensor.name: sensor.description for sensor in defs.sensors}
    out |= {
        name: resource.description
        for name, resource in defs.get_repository_def().get_top_level_resources().items()
    }
    return out


@pytest.fixture
def descriptions(tmp_path, monkeypatch) -> dict[str, str]:
    raw = tmp_path / "raw"
    write_study(
        raw / NAME,
        patients="code,age\nP1,50\n",
        visits="code,visit,day,hb_observer\nP1,pre,-1,4\n",
        spec=SPEC.replace('name = "tiny"', f'name = "{NAME}"'),
    )
    monkeypatch.setenv("OUTCOMES_RAW", str(raw))
    return _descriptions()


def test_every_description_renders_as_written(descriptions):
    assert len(descriptions) >= 9 + 6 + 1 + 3
    wrong = {
        key: (text, _rendered(text))
        for key, text in descriptions.items()
        if text and _rendered(text) != _as_written(text)
    }
    assert wrong == {}
    assert any(f"data/raw/{NAME}/" in _rendered(text) for text in descriptions.values())


def test_the_check_guards_against_markdown():
    assert _rendered("see reports/<study>/tables") != _as_written("see reports/<study>/tables")
    assert _rendered("a *b* c__d__") != _as_written("a *b* c__d__")
    assert _rendered("see `reports/<study>/tables`") == _as_written("see `reports/<study>/tables`")
