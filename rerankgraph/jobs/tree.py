"""`rerankgraph tree build`: LATTICE's semantic tree over a corpus index, clustered from
its embeddings and described node by node by the LLM, bottom-up.

The structure is saved before any LLM call and every summary reply is cached in the
tree's folder, so a killed build resumes on the same structure and asks the engine
only for the summaries it had not received. The finished tree and its settings (with
the model that wrote the summaries) go into the index's manifest.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rerankgraph.errors import InputError
from rerankgraph.graphs.lattice import write_summaries
from rerankgraph.index.corpus import CorpusIndex
from rerankgraph.index.tree import (
    STRUCTURE,
    TREE,
    Tree,
    TreeSettings,
    check_tree_matches,
    cluster_tree,
)
from rerankgraph.jobs.store import CachingEngine, JobStore
from rerankgraph.serving.base import Engine
from rerankgraph.serving.factory import build_engine
from rerankgraph.types import Judgment, ParseStatus

REPLIES = "replies.sqlite"


@dataclass(frozen=True)
class TreeProgress:
    depth: int
    done: int  # nodes of this level described
    total: int  # nodes of this level
    tokens_per_s: float


@dataclass
class TreeReport:
    path: Path
    tree: Tree
    reused: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def summary_line(self) -> str:
        meta = self.tree.meta
        if self.reused:
            return f"tree {self.path} is already built ({meta['nodes']} nodes); nothing to do"
        return (f"built {self.path}: {meta['nodes']} nodes over {meta['documents']} documents, "
                f"depth {meta['depth']}; {meta['llm_calls']} summary calls "
                f"({meta['cached_calls']} from the cache, {meta['fallbacks']} fallbacks, "
                f"{meta['repaired']} repaired), {meta['prompt_tokens'] + meta['completion_tokens']}"
                f" tokens; clustering {self.seconds['cluster']:.1f} s, summaries "
                f"{self.seconds['summaries']:.1f} s")


@dataclass(frozen=True)
class TreeJobSettings:
    """`rerankgraph tree build`: the tree `tree` of `index`, its summaries written by
    the engine of `model` / `base_url`. `rebuild` discards the tree, its structure and
    its summary cache first."""

    index: Path
    tree: TreeSettings
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    rebuild: bool = False


def run_tree_job(settings: TreeJobSettings,
                 on_progress: Callable[[TreeProgress], None] | None = None,
                 on_engine_load: Callable[[], None] | None = None) -> TreeReport:
    """Checks the index (before any model loads), builds the engine, and builds the
    tree with it (`build_tree`); the engine is closed at the end. `on_engine_load` is
    called just before the engine is built."""
    opened = open_for_tree(settings.index)
    if on_engine_load is not None:
        on_engine_load()
    engine = build_engine(settings.model, settings.base_url, settings.api_key)
    try:
        return build_tree(opened, settings.tree, engine, rebuild=settings.rebuild,
                          on_progress=on_progress)
    finally:
        engine.close()


def open_for_tree(index: str | Path | CorpusIndex) -> CorpusIndex:
    """The index, checked to hold the embeddings a tree is clustered from."""
    opened = index if isinstance(index, CorpusIndex) else CorpusIndex(index)
    if not opened.has_dense:
        raise InputError(f"index {opened.path} has no embeddings, and a tree is clustered "
                         "from them; build it again without --no-dense")
    return opened


def build_tree(index: str | Path | CorpusIndex, settings: TreeSettings, engine: Engine, *,
               rebuild: bool = False, chunk: int = 4,
               on_progress: Callable[[TreeProgress], None] | None = None) -> TreeReport:
    """Builds (or resumes, or reuses) the tree `settings.name` of `index`, with `engine`
    writing the summaries. Bad input raises InputError before any LLM call."""
    opened = open_for_tree(index)
    folder = opened.path / "derived" / settings.name
    if rebuild and folder.exists():
        shutil.rmtree(folder)
    folder = opened.derived_path(settings.name)
    wanted = _structure_meta(opened, settings)
    summary = {"summary_item_tokens": settings.summary_item_tokens,
               "summary_words": settings.summary_words}
    finished = folder / TREE
    if finished.is_file() and settings.name in opened.manifest.get("derived", {}):
        tree = Tree.load(finished)
        check_tree_matches(tree, opened, finished)
        if ({k: tree.meta.get(k) for k in {**wanted, **summary}} == {**wanted, **summary}
                and tree.meta.get("summary_model") == engine.model_name):
            return TreeReport(finished, tree, reused=True)
    started = time.perf_counter()
    tree = _structure(folder, opened, settings, wanted)
    clustered = time.perf_counter()
    store = JobStore(folder / REPLIES)
    cached = CachingEngine(engine, store)
    computed = [0, 0.0]  # tokens the engine computed in this run, first chunk's start

    def on_chunk(depth: int, done: int, total: int, judgments: list[Judgment]) -> None:
        computed[0] += sum(j.prompt_tokens + j.completion_tokens
                           for j in judgments if not j.cached)
        elapsed = time.perf_counter() - clustered
        if on_progress is not None:
            on_progress(TreeProgress(depth, done, total, computed[0] / max(elapsed, 1e-9)))

    try:
        judgments = asyncio.run(write_summaries(cached, tree, opened.corpus.full_texts(),
                                                on_chunk, chunk=chunk,
                                                item_tokens=settings.summary_item_tokens,
                                                words=settings.summary_words))
    finally:
        store.close()
    ended = time.perf_counter()
    tree.meta = {**wanted, **summary, **_costs(judgments), "summary_model": engine.model_name,
                 "simulated": engine.simulated, "nodes": len(tree.nodes),
                 "documents": len(tree.doc_ids), "depth": tree.depth,
                 "branching_histogram": tree.branching_histogram()}
    tree.save(finished)
    opened.record_derived(settings.name, {k: v for k, v in tree.meta.items()
                                          if k != "branching_histogram"})
    return TreeReport(finished, tree, seconds={"cluster": clustered - started,
                                               "summaries": ended - clustered})


def _structure_meta(index: CorpusIndex, settings: TreeSettings) -> dict[str, object]:
    dense = index.manifest["dense"]
    return {"strategy": settings.strategy, "branching": settings.branching,
            "max_leaf": settings.max_leaf, "seed": settings.seed,
            "corpus_sha256": index.fingerprint, "embedding_model": dense["model"],
            "dimension": dense["dimension"]}


def _structure(folder: Path, index: CorpusIndex, settings: TreeSettings,
               wanted: dict[str, object]) -> Tree:
    """The saved structure when it was cut with these settings, else a new one."""
    file = folder / STRUCTURE
    if file.is_file():
        try:
            tree = Tree.load(file)
            if {k: tree.meta.get(k) for k in wanted} == wanted:
                return tree
        except InputError:
            pass  # a partial or stale structure: cut it again
    tree = cluster_tree(index.embeddings, index.doc_ids, settings)
    tree.meta = dict(wanted)
    tree.save(file)
    # Summaries of another structure would be cache hits only by chance: drop them.
    for suffix in ("", "-wal", "-shm"):
        (folder / (REPLIES + suffix)).unlink(missing_ok=True)
    return tree


def _costs(judgments: list[Judgment]) -> dict[str, int]:
    return {"llm_calls": len(judgments),
            "cached_calls": sum(j.cached for j in judgments),
            "prompt_tokens": sum(j.prompt_tokens for j in judgments),
            "completion_tokens": sum(j.completion_tokens for j in judgments),
            "fallbacks": sum(j.status == ParseStatus.FALLBACK for j in judgments),
            "repaired": sum(j.status == ParseStatus.REPAIRED for j in judgments)}

