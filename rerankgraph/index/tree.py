"""A semantic tree over a corpus index, for LATTICE (Gupta et al., "LLM-guided
Hierarchical Retrieval", 2025), whose code ships prebuilt trees but not the builder.

Documents sit in leaf clusters of at most `max_leaf`; every other node has at most
`branching` children. Two builders over the index's embeddings (scikit-learn):
  bottom-up  agglomerative (Ward) clusters of documents, then of cluster centroids,
             level by level, until one level fits under the root;
  top-down   recursive k-means from the root, into up to `branching` parts a node.
Clusters over a bound are split again; identical vectors are cut into equal chunks.

On disk, under INDEX/derived/tree-STRATEGY/:
  structure.json   nodes (parent, children, document rows), written first, so a killed
                   summary build resumes on the same structure
  tree.json        the same with a summary on every node: the finished tree
  replies.sqlite   the summary writer's reply cache (see rerankgraph.jobs.tree)
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rerankgraph.errors import InputError
from rerankgraph.index.corpus import CorpusIndex

TREE_FORMAT = 1
STRATEGIES = ("bottom-up", "top-down")
STRUCTURE = "structure.json"
TREE = "tree.json"
# Ward linkage keeps every pairwise distance: about 8 bytes x N^2.
MAX_BOTTOM_UP_DOCS = 30_000


@dataclass(frozen=True)
class TreeSettings:
    """How a tree is cut. Raises InputError on bounds that cannot make a tree."""

    strategy: str = "bottom-up"
    branching: int = 10
    max_leaf: int = 20
    seed: int = 0
    # What the summary writer reads of each child, and how long a description may be.
    summary_item_tokens: int = 32
    summary_words: int = 30

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(f"--strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        if self.branching < 2:
            raise InputError(f"--branching {self.branching}: a tree node needs at least 2 "
                             "children")
        if self.max_leaf < 1:
            raise InputError(f"--max-leaf {self.max_leaf}: a leaf holds at least 1 document")
        if self.summary_item_tokens < 8:
            raise InputError(f"--summary-item-tokens {self.summary_item_tokens}: the writer "
                             "needs at least 8 tokens of each child")
        if not 5 <= self.summary_words <= 300:
            raise InputError(f"--summary-words {self.summary_words}: use 5 to 300")

    @property
    def name(self) -> str:
        """The tree's folder name under the index's derived/."""
        return f"tree-{self.strategy}"


@dataclass
class TreeNode:
    """Node 0 is the root. A leaf cluster holds document rows (`docs`) and no children;
    any other node holds child node ids."""

    id: int
    parent: int  # -1 at the root
    depth: int
    children: list[int] = field(default_factory=list)
    docs: list[int] = field(default_factory=list)
    summary: str = ""

    @property
    def is_leaf(self) -> bool:
        return not self.children


@dataclass
class Tree:
    """Nodes numbered breadth-first (a parent's id is below its children's), over the
    rows of `doc_ids`. `meta` records how it was built."""

    nodes: list[TreeNode]
    doc_ids: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> TreeNode:
        return self.nodes[0]

    @property
    def depth(self) -> int:
        """Edges from the root to the deepest leaf cluster (documents one below)."""
        return max(node.depth for node in self.nodes)

    def levels(self) -> list[list[int]]:
        """Node ids by depth, the root's level first."""
        levels: list[list[int]] = [[] for _ in range(self.depth + 1)]
        for node in self.nodes:
            levels[node.depth].append(node.id)
        return levels

    def docs_under(self, node_id: int) -> list[int]:
        """Document rows in the subtree of a node."""
        found: list[int] = []
        stack = [node_id]
        while stack:
            node = self.nodes[stack.pop()]
            found.extend(node.docs)
            stack.extend(node.children)
        return found

    def branching_histogram(self) -> dict[str, dict[int, int]]:
        """How many nodes have each number of children (internal) or documents (leaf)."""
        internal = Counter(len(n.children) for n in self.nodes if not n.is_leaf)
        leaves = Counter(len(n.docs) for n in self.nodes if n.is_leaf)
        return {"internal": dict(sorted(internal.items())), "leaf": dict(sorted(leaves.items()))}

    def check(self) -> None:
        """Raises ValueError unless every document row is in exactly one leaf and links
        are consistent (a tree read from disk is checked before use)."""
        seen = Counter(row for node in self.nodes for row in node.docs)
        if len(seen) != len(self.doc_ids) or any(c != 1 for c in seen.values()) or (
                seen and (min(seen) < 0 or max(seen) >= len(self.doc_ids))):
            raise ValueError("documents are not each in exactly one leaf")
        for node in self.nodes:
            if node.children and node.docs:
                raise ValueError(f"node {node.id} holds both children and documents")
            for child in node.children:
                if self.nodes[child].parent != node.id:
                    raise ValueError(f"node {child}'s parent is not {node.id}")

    # -- disk ---------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": TREE_FORMAT, "meta": self.meta, "doc_ids": self.doc_ids,
                "nodes": [asdict(node) for node in self.nodes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tree:
        return cls(nodes=[TreeNode(**node) for node in data["nodes"]],
                   doc_ids=list(data["doc_ids"]), meta=dict(data.get("meta", {})))

    def save(self, file: Path) -> None:
        temp = file.with_suffix(".tmp")
        temp.write_text(json.dumps(self.to_json()), encoding="utf-8")
        temp.replace(file)

    @classmethod
    def load(cls, file: Path) -> Tree:
        """Reads and checks a tree file; a bad one raises a one-line InputError."""
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            if data.get("format") != TREE_FORMAT:
                raise InputError(f"{file}: tree format {data.get('format')!r} is not "
                                 f"{TREE_FORMAT}; rebuild it with `rerankgraph tree build`")
            tree = cls.from_json(data)
            tree.check()
        except FileNotFoundError:
            raise InputError(f"{file}: missing; build the tree with `rerankgraph tree build`"
                             ) from None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError,
                IndexError) as exc:
            raise InputError(f"{file}: corrupt tree ({exc}); rebuild it with `rerankgraph "
                             "tree build --rebuild`") from None
        return tree


# -- clustering -------------------------------------------------------------------------
def cluster_tree(embeddings: np.ndarray, doc_ids: Sequence[str], settings: TreeSettings
                 ) -> Tree:
    """The tree's structure (no summaries) over L2-normalised document embeddings."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    if len(vectors) != len(doc_ids):
        raise ValueError(f"{len(vectors)} embeddings for {len(doc_ids)} documents")
    if len(vectors) == 0:
        raise InputError("the index holds no documents to build a tree over")
    rows = np.arange(len(vectors))
    if settings.strategy == "top-down":
        nested = _top_down(vectors, rows, settings)
    else:
        if len(vectors) > MAX_BOTTOM_UP_DOCS:
            raise InputError(f"--strategy bottom-up keeps all pairwise distances and stops at "
                             f"{MAX_BOTTOM_UP_DOCS:,} documents (this index has "
                             f"{len(vectors):,}); use --strategy top-down")
        nested = _bottom_up(vectors, rows, settings)
    return Tree(nodes=_number(nested), doc_ids=list(doc_ids))


# A cluster before numbering: ("docs", rows) or ("nodes", [clusters]).
Nested = tuple[str, Any]


def _top_down(vectors: np.ndarray, rows: np.ndarray, settings: TreeSettings) -> Nested:
    if len(rows) <= settings.max_leaf:
        return ("docs", rows.tolist())
    # Up to `branching` children, as asked (not just enough to fill leaves): a wide,
    # shallow tree, as LATTICE's are.
    parts = min(settings.branching, len(rows))
    groups = _partition(vectors[rows], parts, "kmeans", settings.seed)
    if groups is None:  # identical vectors: equal chunks
        groups = [np.arange(i, len(rows), parts) for i in range(parts)]
    return ("nodes", [_top_down(vectors, rows[g], settings) for g in groups])


def _bottom_up(vectors: np.ndarray, rows: np.ndarray, settings: TreeSettings) -> Nested:
    level: list[Nested] = [("docs", rows[g].tolist()) for g in
                           _bounded_groups(vectors[rows], settings.max_leaf, settings.seed)]
    centroids = np.stack([_centroid(vectors[np.asarray(c[1])]) for c in level])
    while len(level) > settings.branching:
        groups = _bounded_groups(centroids, settings.branching, settings.seed)
        level = [level[g[0]] if len(g) == 1 else ("nodes", [level[i] for i in g])
                 for g in groups]
        centroids = np.stack([_centroid(centroids[g]) for g in groups])
    return level[0] if len(level) == 1 else ("nodes", level)


def _bounded_groups(vectors: np.ndarray, cap: int, seed: int) -> list[np.ndarray]:
    """Agglomerative groups of at most `cap` positions; an oversized group is split
    again, and identical vectors are cut into chunks."""
    positions = np.arange(len(vectors))
    if len(positions) <= cap:
        return [positions]
    parts = math.ceil(len(positions) / cap)
    groups = _partition(vectors, parts, "ward", seed)
    if groups is None:
        return [positions[i:i + cap] for i in range(0, len(positions), cap)]
    found: list[np.ndarray] = []
    for group in groups:
        found.extend(group[sub] for sub in _bounded_groups(vectors[group], cap, seed))
    return found


def _partition(vectors: np.ndarray, parts: int, how: str, seed: int
               ) -> list[np.ndarray] | None:
    """Position groups from k-means or Ward clustering; None when fewer than two
    distinct vectors make the split meaningless."""
    if len(np.unique(vectors, axis=0)) < 2:
        return None
    parts = min(parts, len(np.unique(vectors, axis=0)))
    if how == "kmeans":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=parts, n_init=3, random_state=seed).fit_predict(vectors)
    else:
        from sklearn.cluster import AgglomerativeClustering

        labels = AgglomerativeClustering(n_clusters=parts, linkage="ward").fit_predict(vectors)
    groups = [np.flatnonzero(labels == label) for label in range(parts)]
    groups = [g for g in groups if len(g)]
    return groups if len(groups) > 1 else None


def _centroid(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def _number(root: Nested) -> list[TreeNode]:
    """Breadth-first ids, so every level is a contiguous run of ids."""
    nodes: list[TreeNode] = []
    queue: list[tuple[Nested, int, int]] = [(root, -1, 0)]
    while queue:
        next_queue: list[tuple[Nested, int, int]] = []
        for (kind, body), parent, depth in queue:
            node = TreeNode(id=len(nodes), parent=parent, depth=depth)
            nodes.append(node)
            if parent >= 0:
                nodes[parent].children.append(node.id)
            if kind == "docs":
                node.docs = [int(r) for r in body]
            else:
                next_queue.extend((child, node.id, depth + 1) for child in body)
        queue = next_queue
    return nodes


# -- a tree inside an index ---------------------------------------------------------------
_loaded: dict[tuple[str, int], Tree] = {}


def tree_names(index: CorpusIndex) -> list[str]:
    """The finished trees the index's manifest records."""
    return sorted(n for n in index.manifest.get("derived", {}) if n.startswith("tree-"))


def load_tree(index: CorpusIndex, name: str | None = None) -> Tree:
    """A finished tree of `index` ("tree-bottom-up", "bottom-up", or None for the only
    one), checked against the index's corpus and embedding model. Loaded once per file
    version; raises a one-line InputError naming what to rebuild."""
    names = tree_names(index)
    if name is None:
        if not names:
            raise InputError(f"index {index.path} has no tree; build one with `rerankgraph "
                             f"tree build --index {index.path}`")
        if len(names) > 1:
            raise InputError(f"index {index.path} holds {len(names)} trees ({', '.join(names)})"
                             "; choose one with --param tree=NAME")
        name = names[0]
    name = name if name.startswith("tree-") else f"tree-{name}"
    file = index.path / "derived" / name / TREE
    if name not in names:
        raise InputError(f"index {index.path} records no finished tree {name!r} (it has: "
                         f"{', '.join(names) or 'none'}); build it with `rerankgraph tree build "
                         f"--index {index.path} --strategy {name.removeprefix('tree-')}`")
    try:
        key = (str(file), file.stat().st_mtime_ns)
    except FileNotFoundError:
        raise InputError(f"{file}: missing; rebuild the tree with `rerankgraph tree build`"
                         ) from None
    if key not in _loaded:
        _loaded[key] = Tree.load(file)
    tree = _loaded[key]
    check_tree_matches(tree, index, file)
    return tree


def check_tree_matches(tree: Tree, index: CorpusIndex, where: Path) -> None:
    """Raises InputError when `tree` was built on another corpus or another model's
    embeddings than the index holds now."""
    rebuild = f"rebuild it with `rerankgraph tree build --index {index.path} --rebuild`"
    if tree.meta.get("corpus_sha256") != index.fingerprint or tree.doc_ids != index.doc_ids:
        raise InputError(f"{where}: tree was built from another corpus (sha256 "
                         f"{str(tree.meta.get('corpus_sha256'))[:12]}…, the index's is "
                         f"{index.fingerprint[:12]}…); {rebuild}")
    model = index.manifest.get("dense", {}).get("model")
    if tree.meta.get("embedding_model") != model:
        raise InputError(f"{where}: tree was built with {tree.meta.get('embedding_model')!r} "
                         f"embeddings but the index now holds {model!r}; {rebuild}")
