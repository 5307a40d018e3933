"""`rerankgraph graph METHOD`, the diagrams in docs/methods.md, langgraph.json and --version."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from rerankgraph.registry import BUILTIN_METHODS, get_method
from tests.test_cli import run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_graph_prints_langgraphs_own_mermaid_drawing():
    done = run_cli("graph", "wiser")  # an alias of rvr
    assert done.returncode == 0, done.stderr
    assert done.stdout == get_method("rvr").build_graph().get_graph().draw_mermaid()
    for edge in ("expand --> retrieve;", "retrieve --> verify;", "verify --> fuse;",
                 "fuse -.-> refine;", "refine -.-> retrieve;",
                 "fuse -.-> finalize;", "finalize --> __end__;"):
        assert edge in done.stdout


def test_graph_of_an_unknown_method_is_one_line():
    done = run_cli("graph", "nope")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("error: unknown method 'nope'; registered methods:")


def test_the_method_diagrams_match_the_compiled_graphs():
    page = (ROOT / "docs" / "methods.md").read_text()
    shown = re.findall(r"<!-- graph:(\w+) -->\n```mermaid\n(.*?)\n```", page, re.DOTALL)
    assert [name for name, _ in shown] == ["rubric", "cascade", "groupwise", "setwise",
                                           "listwise", "lattice", "rvr"]
    for name, diagram in shown:
        drawn = get_method(name).graph(None, get_method).get_graph().draw_mermaid().strip()
        assert diagram == drawn, (f"docs/methods.md diagram of {name} is stale: run "
                                  f"rerankgraph graph {name}")
    # The README sends readers there for them.
    assert "[docs/methods.md](docs/methods.md#diagrams)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("method", BUILTIN_METHODS)
def test_langgraph_json_loads_every_builtin_graph(method):
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."] and set(config["graphs"]) == set(BUILTIN_METHODS)
    path, _, factory = config["graphs"][method].partition(":")
    spec = importlib.util.spec_from_file_location(f"studio_{method}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as a loader does, so type hints resolve
    spec.loader.exec_module(module)
    graph = getattr(module, factory)()
    expected = get_method(method).graph(None, get_method)
    assert set(graph.get_graph().nodes) == set(expected.get_graph().nodes)


def test_version():
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"rerankgraph {version('rerankgraph')}"
