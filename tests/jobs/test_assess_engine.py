"""The grade judge on the real in-process vLLM engine (the embedded judge): the reply is
a grade, and under the choice constraint only the four grades have finite logprobs."""

import asyncio
import math

from rerankgraph.agents.grade import GRADES, GradeAgent, GradeParams, grade_of
from rerankgraph.types import ParseStatus


def test_the_real_judge_answers_a_grade_under_both_constraints(local_engine, dl19_request):
    agent = GradeAgent()
    candidates = dl19_request.candidates[:3]
    for params in (GradeParams(), GradeParams(reasoning_tokens=48)):
        judgments = asyncio.run(agent.judge(local_engine, dl19_request.query, candidates,
                                            params))
        assert [j.doc_ids[0] for j in judgments] == [c.doc_id for c in candidates]
        for item in judgments:
            assert item.status == ParseStatus.OK and grade_of(item) in range(4)
            assert 0.0 <= item.parsed <= 1.0


def test_choice_logprobs_cover_only_the_grades(local_engine, dl19_request):
    # vLLM 0.32 applies the structured-output bitmask to the logits before it computes
    # logprobs, so the expected grade is read over the four grades alone.
    agent = GradeAgent()
    doc = dl19_request.candidates[0]
    request = agent.chat_request(dl19_request.query.text, doc.full_text[:800], GradeParams())
    (reply,) = asyncio.run(local_engine.chat([request]))
    finite = {t.strip() for t, p in reply.first_token_logprobs.items() if math.isfinite(p)}
    assert reply.text in GRADES and finite <= set(GRADES) and reply.text in finite
