"""`import rerankgraph`, and everything up to building an engine, loads no heavy library:
vLLM, torch and transformers load only when an engine is built, sentence-transformers and
bm25s only when a retriever is."""

import ast
import subprocess
import sys

import pytest

HEAVY = ("vllm", "torch", "transformers", "sentence_transformers", "bm25s")


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}; import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_import_rerankgraph_is_light():
    assert _heavy_modules_after("import rerankgraph") == []


@pytest.mark.parametrize("code", [
    # every method: registry, graphs, agents, templates
    "from rerankgraph.registry import get_method, list_methods; "
    "[s.graph(None, get_method) for s in list_methods()]",
    # the face and the rooms it calls
    "import rerankgraph.cli, rerankgraph.jobs, rerankgraph.jobs.rerank, rerankgraph.simulation, "
    "rerankgraph.serving.factory",
    # retrieval: the models load when a retriever first searches, not on import
    "import rerankgraph.index.corpus, rerankgraph.retrievers.dense, "
    "rerankgraph.retrievers.bm25, rerankgraph.retrievers.hybrid, rerankgraph.jobs.retrieve",
    # a whole simulated rerank, no model anywhere
    "from rerankgraph import Reranker; from rerankgraph.simulation import SimulatedJudge; "
    "engine = SimulatedJudge({'q0': {'d1': 1}}, {'q0': 'q'}, {'d0': ('', 'a'), 'd1': ('', 'b')}); "
    "assert Reranker('listwise', engine=engine).rerank('q', ['a', 'b']).doc_ids == ['d1', 'd0']",
], ids=["methods", "face", "retrieval", "simulated-rerank"])
def test_nothing_short_of_an_engine_loads_them(code):
    assert _heavy_modules_after(code) == []
