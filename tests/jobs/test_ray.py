"""The Ray Data backend (ray.data.llm) on the real embedded model, on CPU."""

import pytest

from rerankgraph.errors import InputError
from rerankgraph.jobs.ray import rerank_with_ray_data
from rerankgraph.serving.model_store import pull_embedded_model

pytest.importorskip("ray.data.llm")


def test_multi_step_methods_are_refused_with_the_alternative():
    with pytest.raises(InputError, match="'listwise' needs replies between its calls.*--base-url"):
        rerank_with_ray_data("listwise", [], "unused")


@pytest.mark.ray
def test_pointwise_through_ray_data(engine_pool, dl19_request):
    engine_pool.close()  # never two engines at once on two cores
    requests = [dl19_request.model_copy(update={"candidates": dl19_request.candidates[:6]})]
    [result] = rerank_with_ray_data("pointwise", requests, str(pull_embedded_model()),
                                    batch_size=8)
    assert result.ok
    assert sorted(result.doc_ids) == sorted(c.doc_id for c in requests[0].candidates)
    provenance = result.provenance
    assert provenance.model.startswith("ray-data:") and provenance.llm_calls == 6
    assert provenance.prompt_tokens > 6 * 100 and provenance.completion_tokens == 6
    # Logprobs came back through Ray Data: every score is a probability, none a fallback.
    assert provenance.fallbacks == 0 and provenance.repaired == 0
    assert all(0 < d.score < 1 for d in result.ranking)
