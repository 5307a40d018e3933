"""The test tiers: `make check` leaves out the tests marked engine, server or ray, and
every other test runs with engines refused, so a test that starts one unmarked fails."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rerankgraph.errors import ModelError
from rerankgraph.jobs.ray import rerank_with_ray_data
from rerankgraph.serving.platform import NO_ENGINE_ENV
from rerankgraph.serving.server import start_server
from rerankgraph.serving.vllm_local import VllmEngine
from tests.conftest import DL19


def test_an_unmarked_test_runs_with_engines_refused():
    assert os.environ[NO_ENGINE_ENV] == "1"


@pytest.mark.parametrize("start", [
    lambda: VllmEngine("/no/such/model"),
    lambda: start_server("/no/such/model", wait_s=1),
    lambda: rerank_with_ray_data("pointwise", [], "/no/such/model"),
], ids=["in-process", "vllm serve", "ray data"])
def test_every_way_to_start_an_engine_is_refused(start):
    with pytest.raises(ModelError, match=f"not started: {NO_ENGINE_ENV} is set"):
        start()


def test_a_spawned_cli_inherits_the_refusal(tmp_path):
    """A CLI run that would load the embedded judge fails in one line, before loading."""
    done = subprocess.run(
        [sys.executable, "-m", "rerankgraph.cli", "rerank", "--data", str(DL19), "--run",
         str(DL19 / "bm25.trec"), "--depth", "2", "--out", str(tmp_path / "o.trec")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: the in-process vLLM engine for ")
    assert error.endswith(f"smollm2-135m-instruct' not started: {NO_ENGINE_ENV} is set "
                          "(engines are off here; unset it to load a model)")
    assert not (tmp_path / "o.trec").exists()


@pytest.mark.engine
def test_a_marked_test_may_start_engines():
    assert NO_ENGINE_ENV not in os.environ
