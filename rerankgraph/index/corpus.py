"""A corpus index on disk: one folder with a manifest, the BM25 index, the document
embeddings (float32 .npy, memory-mapped on load) and the doc-id order.

    INDEX/manifest.json    corpus fingerprint, counts, models, settings, library versions
    INDEX/doc_ids.json     row i of every structure below is doc_ids[i]
    INDEX/bm25/            bm25s files and the analyzer settings
    INDEX/embeddings.npy   (documents, dimension) float32, L2-normalised
    INDEX/derived/         what later parts compute from the corpus (the LATTICE tree)

Every file is written under a temporary name and renamed into place, and the manifest
names a part only once it is complete, so a killed build leaves nothing that looks
finished. Embeddings are written in
chunks to `embeddings.partial.npy`, so a killed build resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from rerankgraph.data import read_jsonl_records
from rerankgraph.errors import InputError
from rerankgraph.retrievers.base import Retriever
from rerankgraph.retrievers.bm25 import BM25Retriever
from rerankgraph.retrievers.dense import DenseRetriever, Encoder
from rerankgraph.retrievers.hybrid import HybridRetriever

FORMAT = 1
MANIFEST = "manifest.json"
DOC_IDS = "doc_ids.json"
BM25_DIR = "bm25"
EMBEDDINGS = "embeddings.npy"
_PARTIAL = "embeddings.partial.npy"
_PARTIAL_STATE = "embeddings.partial.json"
RETRIEVERS = ("bm25", "dense", "hybrid")

# phase ("bm25" or "dense"), documents done, documents in all
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Corpus:
    """A BEIR corpus.jsonl read in file order: ids, titles, texts and its sha256."""

    path: Path
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    sha256: str

    def full_texts(self) -> list[str]:
        return [f"{t}\n{x}" if t else x for t, x in zip(self.titles, self.texts, strict=True)]

    @property
    def empty_documents(self) -> int:
        return sum(1 for t, x in zip(self.titles, self.texts, strict=True)
                   if not t.strip() and not x.strip())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_corpus(data: str | Path) -> Corpus:
    """Reads DATA/corpus.jsonl (or a .jsonl path). A line without a string `text`, a
    duplicate id, or an empty corpus raises InputError naming the file and line."""
    path = Path(data)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: file not found; --data takes a BEIR folder with corpus.jsonl")
    doc_ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for number, record in read_jsonl_records(path, ("_id", "text")):
        doc_id, text, title = str(record["_id"]), record["text"], record.get("title") or ""
        if not isinstance(text, str):
            raise InputError(f"{path}:{number}: document {doc_id!r} has no text "
                             f"(text is {type(text).__name__}); give it a string")
        if not isinstance(title, str):
            raise InputError(f"{path}:{number}: document {doc_id!r} has a non-string title")
        if doc_id in seen:
            raise InputError(f"{path}:{number}: duplicate _id {doc_id!r}")
        seen.add(doc_id)
        doc_ids.append(doc_id)
        titles.append(title.replace("\x00", ""))
        texts.append(text.replace("\x00", ""))
    if not doc_ids:
        raise InputError(f"{path}: holds no documents; an index needs at least one")
    return Corpus(path=path, doc_ids=doc_ids, titles=titles, texts=texts,
                  sha256=file_sha256(path))


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def _write_json(path: Path, value: Any) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(value, indent=1, sort_keys=True))
    temp.replace(path)


@dataclass
class BuildReport:
    """What a build did: which parts it reused, and how long each new part took."""

    documents: int
    empty_documents: int
    reused: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary_line(self, path: Path) -> str:
        parts = [f"{name} reused" for name in self.reused] + [
            f"{name} {seconds:.1f} s ({self.documents / max(seconds, 1e-9):,.1f} docs/s)"
            for name, seconds in self.seconds.items()]
        line = f"index {path}: {self.documents:,} documents; " + ", ".join(parts)
        if self.empty_documents:
            line += (f"; {self.empty_documents} documents have no title or text (kept, they "
                     "match no query term)")
        return line


class CorpusIndex:
    """An index folder, opened. Retrievers load lazily and memory-mapped."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not self.path.is_dir():
            raise InputError(f"index {str(self.path)!r} does not exist; build it with "
                             "`rerankgraph index build --data DIR --out INDEX`")
        if not manifest_path.is_file():
            raise InputError(f"{manifest_path}: missing; {self.path} is not a finished "
                             "rerankgraph index (rerun `rerankgraph index build`)")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
            self.doc_ids: list[str] = json.loads((self.path / DOC_IDS).read_text())
        except FileNotFoundError as exc:
            raise InputError(f"{exc.filename}: missing; rebuild the index with --rebuild"
                             ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path}: manifest or doc ids are corrupt ({exc}); rebuild "
                             "the index with --rebuild") from None
        if self.manifest.get("format") != FORMAT:
            raise InputError(f"{manifest_path}: index format {self.manifest.get('format')!r} "
                             f"is not {FORMAT}; rebuild the index with --rebuild")
        if len(self.doc_ids) != self.manifest["corpus"]["documents"]:
            raise InputError(f"{self.path / DOC_IDS}: {len(self.doc_ids)} ids but the manifest "
                             f"counts {self.manifest['corpus']['documents']}; rebuild the index")

    # -- what it holds ---------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return str(self.manifest["corpus"]["sha256"])

    @property
    def has_dense(self) -> bool:
        return "dense" in self.manifest

    def check_corpus(self, data: str | Path) -> None:
        """Raises InputError unless DATA/corpus.jsonl is the corpus this index was built on."""
        path = Path(data)
        path = path / "corpus.jsonl" if path.is_dir() else path
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        if file_sha256(path) != self.fingerprint:
            raise InputError(f"index {self.path} was built on another corpus (sha256 "
                             f"{self.fingerprint[:12]}…, not {path}'s); point --index at its "
                             "own index or rebuild with --rebuild")

    @cached_property
    def corpus(self) -> Corpus:
        """The documents, read from the corpus.jsonl the index was built on (checked
        against its fingerprint). `attach_corpus` points at a moved copy."""
        corpus = read_corpus(self.manifest["corpus"]["path"])
        if corpus.sha256 != self.fingerprint:
            raise InputError(f"{corpus.path} changed since index {self.path} was built; "
                             "rebuild the index with --rebuild")
        return corpus

    def attach_corpus(self, data: str | Path) -> None:
        """Reads the documents from DATA (a BEIR folder or corpus.jsonl) instead of the
        recorded path; raises InputError if it is another corpus."""
        self.check_corpus(data)
        self.__dict__["corpus"] = read_corpus(data)
        self.__dict__.pop("_documents", None)

    def document(self, doc_id: str) -> tuple[str, str]:
        """(title, text) of one document."""
        return self._documents[doc_id]

    @cached_property
    def _documents(self) -> dict[str, tuple[str, str]]:
        corpus = self.corpus
        return dict(zip(corpus.doc_ids, zip(corpus.titles, corpus.texts, strict=True),
                        strict=True))

    def derived_path(self, name: str) -> Path:
        """A folder for something derived from this corpus (e.g. "tree")."""
        folder = self.path / "derived" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def record_derived(self, name: str, settings: dict[str, Any]) -> None:
        """Notes a derived part and its settings in the manifest."""
        self.manifest.setdefault("derived", {})[name] = settings
        _write_json(self.path / MANIFEST, self.manifest)

    # -- retrievers -------------------------------------------------------------------
    @cached_property
    def bm25(self) -> BM25Retriever:
        return BM25Retriever.load(self.path / BM25_DIR, self.doc_ids)

    @cached_property
    def embeddings(self) -> np.ndarray:
        if not self.has_dense:
            raise InputError(f"index {self.path} has no embeddings; build it with --dense")
        file = self.path / EMBEDDINGS
        try:
            matrix = np.load(file, mmap_mode="r")
        except FileNotFoundError:
            raise InputError(f"{file}: missing; rebuild the index with --rebuild") from None
        except (ValueError, OSError) as exc:
            raise InputError(f"{file}: not a readable .npy ({exc}); rebuild the index with "
                             "--rebuild") from None
        expected = (len(self.doc_ids), self.manifest["dense"]["dimension"])
        if matrix.shape != expected or matrix.dtype != np.float32:
            raise InputError(f"{file}: holds {matrix.dtype} {matrix.shape}, expected float32 "
                             f"{expected}; rebuild the index with --rebuild")
        return matrix

    @cached_property
    def dense(self) -> DenseRetriever:
        model = self.manifest.get("dense", {}).get("model")
        return DenseRetriever(self.doc_ids, self.embeddings, Encoder(model))

    def retriever(self, name: str, *, rrf_k: int = 60) -> Retriever:
        """"bm25", "dense" or "hybrid" (RRF of both) over this index."""
        if name == "bm25":
            return self.bm25
        if name == "dense":
            return self.dense
        if name == "hybrid":
            return HybridRetriever([self.bm25, self.dense], rrf_k=rrf_k)
        raise InputError(f"--retriever {name!r}: use one of {', '.join(RETRIEVERS)}")


def build_index(data: str | Path, out: str | Path, *, dense: bool = True,
                model: str | None = None, rebuild: bool = False, k1: float = 0.9,
                b: float = 0.4, progress: ProgressFn | None = None,
                chunk: int = 512) -> tuple[CorpusIndex, BuildReport]:
    """Builds (or completes) the index of DATA/corpus.jsonl in OUT. Parts already built
    over the same corpus with the same settings are reused; an OUT built on another
    corpus raises InputError unless `rebuild`."""
    import time

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder} is a file; an index is a folder")
    corpus = read_corpus(data)
    manifest = _existing_manifest(folder)
    if (manifest is not None and manifest["corpus"]["sha256"] != corpus.sha256
            and not rebuild):
        raise InputError(f"index {folder} was built on another corpus (sha256 "
                             f"{manifest['corpus']['sha256'][:12]}…, now "
                             f"{corpus.sha256[:12]}… from {corpus.path}); pass --rebuild to "
                             "replace it or choose another --out")
    if rebuild and folder.exists():
        _remove_index_files(folder)
        manifest = None
    folder.mkdir(parents=True, exist_ok=True)
    report = BuildReport(documents=len(corpus.doc_ids), empty_documents=corpus.empty_documents)
    manifest = manifest or {"format": FORMAT}
    manifest["corpus"] = {"path": str(corpus.path.resolve()), "sha256": corpus.sha256,
                          "documents": len(corpus.doc_ids),
                          "empty_documents": corpus.empty_documents}
    _write_json(folder / DOC_IDS, corpus.doc_ids)
    texts = corpus.full_texts()

    bm25_settings = {"method": "lucene", "k1": k1, "b": b, "stemmer": "porter",
                     "stopwords": "lucene"}
    if manifest.get("bm25") == bm25_settings and (folder / BM25_DIR).is_dir():
        report.reused.append("bm25")
    else:
        started = time.perf_counter()
        retriever = BM25Retriever.build(
            corpus.doc_ids, texts, k1=k1, b=b,
            progress=(lambda done, total: progress("bm25", done, total)) if progress else None)
        temp = folder / (BM25_DIR + ".tmp")
        shutil.rmtree(temp, ignore_errors=True)
        retriever.save(temp)
        shutil.rmtree(folder / BM25_DIR, ignore_errors=True)
        temp.replace(folder / BM25_DIR)
        manifest["bm25"] = bm25_settings
        report.seconds["bm25"] = time.perf_counter() - started
        # A BM25-only index is usable even if the embedding step is killed.
        _write_json(folder / MANIFEST, manifest)

    if dense:
        encoder = Encoder(model)
        recorded = manifest.get("dense", {})
        if recorded.get("model") == encoder.name and (folder / EMBEDDINGS).is_file():
            report.reused.append("dense")
        else:
            started = time.perf_counter()
            _embed(folder, texts, encoder, corpus.sha256, chunk, progress)
            manifest["dense"] = {"model": encoder.name, "dimension": encoder.dimension,
                                 "normalized": True, "dtype": "float32", "metric": "ip",
                                 "search": "exact"}
            manifest.pop("derived", None)  # anything built on the old embeddings is stale
            report.seconds["dense"] = time.perf_counter() - started
    manifest["versions"] = _versions(("rerankgraph", "bm25s", "PyStemmer", "numpy",
                                      *(("sentence-transformers", "torch") if dense else ())))
    _write_json(folder / MANIFEST, manifest)
    return CorpusIndex(folder), report


def _embed(folder: Path, texts: list[str], encoder: Encoder, fingerprint: str, chunk: int,
           progress: ProgressFn | None) -> None:
    """Writes embeddings chunk by chunk into a partial file, resuming a killed build of
    the same corpus and model, then renames it into place."""
    partial, state_file = folder / _PARTIAL, folder / _PARTIAL_STATE
    state: dict[str, Any] = {"model": encoder.name, "sha256": fingerprint, "done": 0}
    if partial.is_file() and state_file.is_file():
        try:
            previous = json.loads(state_file.read_text())
        except json.JSONDecodeError:
            previous = {}
        if {k: previous.get(k) for k in ("model", "sha256")} == {
                "model": encoder.name, "sha256": fingerprint}:
            state["done"] = int(previous.get("done", 0))
    shape = (len(texts), encoder.dimension)
    if state["done"]:
        matrix = np.lib.format.open_memmap(partial, mode="r+")
        if matrix.shape != shape:
            state["done"] = 0
    if not state["done"]:
        matrix = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
    if progress is not None:
        progress("dense", state["done"], len(texts))
    for start in range(state["done"], len(texts), chunk):
        matrix[start:start + chunk] = encoder.encode(texts[start:start + chunk])
        matrix.flush()
        state["done"] = min(start + chunk, len(texts))
        _write_json(state_file, state)
        if progress is not None:
            progress("dense", state["done"], len(texts))
    del matrix
    partial.replace(folder / EMBEDDINGS)
    state_file.unlink()


def _existing_manifest(folder: Path) -> dict[str, Any] | None:
    file = folder / MANIFEST
    if not file.is_file():
        return None
    try:
        manifest: dict[str, Any] = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{file}: corrupt manifest; pass --rebuild to build the index "
                         "again") from None
    if manifest.get("format") != FORMAT or "corpus" not in manifest:
        raise InputError(f"{file}: not a rerankgraph index manifest of format {FORMAT}; pass "
                         "--rebuild to build the index again")
    return manifest


def _remove_index_files(folder: Path) -> None:
    """Deletes what a build writes, and nothing else a user may keep there."""
    for name in (MANIFEST, DOC_IDS, EMBEDDINGS, _PARTIAL, _PARTIAL_STATE):
        (folder / name).unlink(missing_ok=True)
    for name in (BM25_DIR, BM25_DIR + ".tmp", "derived"):
        shutil.rmtree(folder / name, ignore_errors=True)
