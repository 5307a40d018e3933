"""`build_tree` with the simulated judge writing the descriptions: what is saved, reuse,
resume after a kill, and the bad-input errors."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from rerankgraph.errors import EngineError, InputError
from rerankgraph.index.corpus import CorpusIndex, build_index
from rerankgraph.index.tree import TREE, TreeSettings, load_tree
from rerankgraph.jobs.tree import build_tree
from rerankgraph.simulation import SimulatedJudge

SETTINGS = TreeSettings(branching=4, max_leaf=8)


class CountingJudge(SimulatedJudge):
    """Counts the requests it answers; raises EngineError after `fail_after` calls."""

    def __init__(self, corpus, fail_after: int | None = None) -> None:
        super().__init__({}, {}, corpus)
        self.requests = 0
        self.calls = 0
        self.fail_after = fail_after

    async def _chat(self, requests):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise EngineError("engine killed")
        self.calls += 1
        self.requests += len(requests)
        return await super()._chat(requests)


@pytest.fixture
def index(cranfield_slice_index, tmp_path) -> CorpusIndex:
    folder = tmp_path / "index"
    shutil.copytree(cranfield_slice_index.path, folder)
    return CorpusIndex(folder)


def _corpus(index: CorpusIndex) -> dict[str, tuple[str, str]]:
    c = index.corpus
    return dict(zip(c.doc_ids, zip(c.titles, c.texts, strict=True), strict=True))


def test_build_saves_records_and_reuses(index):
    judge = CountingJudge(_corpus(index))
    report = build_tree(index, SETTINGS, judge)
    tree = load_tree(CorpusIndex(index.path))
    assert not report.reused and judge.requests == len(tree.nodes) == tree.meta["llm_calls"]
    assert all(node.summary for node in tree.nodes) and tree.meta["fallbacks"] == 0
    recorded = CorpusIndex(index.path).manifest["derived"]["tree-bottom-up"]
    assert recorded["summary_model"] == judge.model_name and recorded["simulated"] is True
    assert recorded["branching"] == 4 and recorded["max_leaf"] == 8
    assert recorded["nodes"] == len(tree.nodes) and recorded["documents"] == 300
    again = CountingJudge(_corpus(index))
    assert build_tree(CorpusIndex(index.path), SETTINGS, again).reused and again.requests == 0


def test_the_summary_settings_reach_the_writer_and_the_manifest(index):
    """What the writer reads of each child and how many words it may write are settings
    of the build, recorded; changing them re-describes the same structure."""
    judge = CountingJudge(_corpus(index))
    build_tree(index, SETTINGS, judge)
    calls = judge.requests
    seen = []
    wider = TreeSettings(branching=4, max_leaf=8, summary_item_tokens=64, summary_words=60)

    class Recording(CountingJudge):
        async def _chat(self, requests):
            seen.extend(requests)
            return await super()._chat(requests)

    again = Recording(_corpus(index))
    report = build_tree(CorpusIndex(index.path), wider, again)
    assert not report.reused and again.requests == calls  # every node described anew
    assert all("at most 60 words" in r.prompt and r.max_tokens == 96 for r in seen)
    leaf = next(r for r in seen if "Below are" in r.prompt and " documents " in r.prompt)
    # the simulated judge counts whitespace tokens: no child shows more than 64
    assert max(len(t.split()) for t in re.findall(r"\] (.*)\n</passage>", leaf.prompt)) <= 64
    recorded = CorpusIndex(index.path).manifest["derived"]["tree-bottom-up"]
    assert (recorded["summary_item_tokens"], recorded["summary_words"]) == (64, 60)
    assert report.tree.meta["strategy"] == "bottom-up"


def test_killed_build_resumes_without_asking_again(index):
    killed = CountingJudge(_corpus(index), fail_after=3)
    with pytest.raises(EngineError):
        build_tree(index, SETTINGS, killed, chunk=4)
    answered = killed.requests
    assert answered > 0 and not (index.path / "derived" / "tree-bottom-up" / TREE).exists()
    resumed = CountingJudge(_corpus(index))
    report = build_tree(CorpusIndex(index.path), SETTINGS, resumed, chunk=4)
    nodes = len(report.tree.nodes)
    assert resumed.requests == nodes - answered  # finished summaries are not asked again
    assert report.tree.meta["cached_calls"] == answered
    assert all(node.summary for node in report.tree.nodes)


def test_index_without_embeddings(cranfield_slice, tmp_path):
    bm25_only, _ = build_index(cranfield_slice, tmp_path / "bm25", dense=False)
    with pytest.raises(InputError, match="has no embeddings"):
        build_tree(bm25_only, SETTINGS, CountingJudge({}))


def test_index_without_a_tree(index):
    with pytest.raises(InputError, match="has no tree; build one with `rerankgraph tree build"):
        load_tree(index)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("corpus_sha256", "0" * 64, "tree was built from another corpus"),
    ("embedding_model", "other-model", "built with 'other-model' embeddings"),
])
def test_tree_of_another_corpus_or_model(index, field, value, message):
    build_tree(index, SETTINGS, CountingJudge(_corpus(index)))
    file = index.path / "derived" / "tree-bottom-up" / TREE
    data = json.loads(file.read_text())
    data["meta"][field] = value
    file.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message):
        load_tree(CorpusIndex(index.path))
