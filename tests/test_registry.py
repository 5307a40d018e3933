import pytest
from pydantic import BaseModel

from rerankgraph.errors import InputError, UnknownMethodError
from rerankgraph.registry import MethodSpec, get_method, list_methods, register, running_defaults
from rerankgraph.sdk import Reranker
from rerankgraph.serving.model_store import EMBEDDED_MODEL_NAME
from rerankgraph.simulation import SimulatedJudge
from rerankgraph.spec import FusionParams
from rerankgraph.types import Candidate
from tests.test_api import DATASET, DOC_IDS, QID, QRELS


def test_builtins_are_registered_with_aliases():
    names = [m.name for m in list_methods()]
    assert {"pointwise", "rubric"} <= set(names)
    assert get_method("yes_no").name == "pointwise"


def test_unknown_method_names_the_registered_ones():
    with pytest.raises(UnknownMethodError) as info:
        get_method("nope")
    assert "unknown method 'nope'" in str(info.value) and "pointwise" in str(info.value)


def test_duplicate_registration_raises():
    spec = get_method("pointwise")
    with pytest.raises(ValueError, match="already registered"):
        register(MethodSpec(name="pointwise", build_graph=spec.build_graph,
                            params=BaseModel, description="dup"))


def test_unknown_or_bad_parameters_raise_input_error():
    spec = get_method("pointwise")
    with pytest.raises(InputError, match="'window'.*known parameters: batch_size"):
        spec.make_params({"window": 3})
    with pytest.raises(InputError, match="batch_size"):
        spec.make_params({"batch_size": 0})
    assert spec.make_params({"batch_size": 4}).batch_size == 4


RERANK_METHODS = [s.name for s in list_methods() if issubclass(s.params, FusionParams)]


@pytest.mark.parametrize("model", [None, "qwen2.5-coder-0.5b", "/models/qwen2.5-coder-1.5b",
                                   "org/some-other-model"])
@pytest.mark.parametrize("method", RERANK_METHODS)
def test_the_listed_defaults_are_the_fusion_that_provenance_records(method, model):
    """`rerankgraph methods --model M` and the run agree: the judge answers under the
    name the model would have, and its provenance names the fusion the listing shows."""
    judge = SimulatedJudge(QRELS, DATASET.queries, DATASET.corpus)
    judge.model_name = EMBEDDED_MODEL_NAME if model is None else model
    listed = running_defaults(get_method(method), model)
    result = Reranker(method, engine=judge).rerank(
        DATASET.queries[QID], [Candidate(doc_id=d, text=DATASET.corpus[d][1], rank=i + 1,
                                         score=30.0 - i) for i, d in enumerate(DOC_IDS)],
        query_id=QID)
    assert result.provenance is not None
    assert result.provenance.fusion == listed["fusion"]
    weight = listed["fusion_weight"]
    assert (weight is not None) == ("judge weight" in listed["fusion"])
    if weight is not None:
        assert f"judge weight {weight:g}" in result.provenance.fusion
