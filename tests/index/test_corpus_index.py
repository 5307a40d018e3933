"""The corpus index folder: manifest, reuse, refusal of another corpus, one-line errors
for missing or corrupt files, and embedding builds that resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rerankgraph.errors import InputError
from rerankgraph.index import corpus as corpus_module
from rerankgraph.index.corpus import CorpusIndex, build_index, read_corpus
from rerankgraph.retrievers.dense import Encoder, resolve_encoder


def _corpus(folder, docs):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return folder


DOCS = [{"_id": "a", "title": "Wing flutter", "text": "flutter of swept wings at high speed"},
        {"_id": "b", "title": "", "text": "laminar boundary layer transition on flat plates"},
        {"_id": "c", "title": "Noise", "text": "jet engine noise and its suppression"}]


def test_manifest_records_the_corpus_models_and_versions(cranfield_slice_index, cranfield_slice):
    manifest = cranfield_slice_index.manifest
    assert manifest["corpus"]["documents"] == 300 == len(cranfield_slice_index.doc_ids)
    assert manifest["corpus"]["sha256"] == corpus_module.file_sha256(
        cranfield_slice / "corpus.jsonl")
    assert manifest["bm25"] == {"method": "lucene", "k1": 0.9, "b": 0.4, "stemmer": "porter",
                                "stopwords": "lucene"}
    assert manifest["dense"]["model"] == "all-MiniLM-L6-v2"
    assert manifest["dense"]["dimension"] == 384
    assert {"bm25s", "sentence-transformers", "numpy"} <= set(manifest["versions"])
    embeddings = cranfield_slice_index.embeddings
    assert isinstance(embeddings, np.memmap) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings[:5], axis=1), 1.0, atol=1e-5)
    assert cranfield_slice_index.doc_ids[:3] == ["1", "2", "3"]


def test_a_second_build_reuses_everything(tmp_path, monkeypatch):
    data = _corpus(tmp_path / "data", DOCS)
    build_index(data, tmp_path / "idx")
    stamp = (tmp_path / "idx" / "embeddings.npy").stat().st_mtime_ns
    monkeypatch.setattr(Encoder, "encode", lambda *a: pytest.fail("re-embedded"))
    index, report = build_index(data, tmp_path / "idx")
    assert report.reused == ["bm25", "dense"] and report.seconds == {}
    assert (tmp_path / "idx" / "embeddings.npy").stat().st_mtime_ns == stamp
    assert index.bm25.search({"q": "flutter"}, 3)["q"][0][0] == "a"


def test_another_corpus_is_refused_unless_rebuild(tmp_path):
    build_index(_corpus(tmp_path / "one", DOCS), tmp_path / "idx", dense=False)
    other = _corpus(tmp_path / "two", DOCS[:2])
    with pytest.raises(InputError, match=r"built on another corpus.*--rebuild") as info:
        build_index(other, tmp_path / "idx", dense=False)
    assert "\n" not in str(info.value)
    index, _ = build_index(other, tmp_path / "idx", dense=False, rebuild=True)
    assert index.doc_ids == ["a", "b"]
    with pytest.raises(InputError, match="built on another corpus"):
        index.check_corpus(tmp_path / "one")
    index.check_corpus(other)


@pytest.mark.parametrize("damage, names", [
    ("delete_manifest", "manifest.json"),
    ("corrupt_manifest", "manifest or doc ids are corrupt"),
    ("delete_doc_ids", "doc_ids.json"),
    ("delete_bm25_file", "vocab.index.json"),
    ("delete_embeddings", "embeddings.npy"),
    ("truncate_embeddings", "embeddings.npy"),
])
def test_missing_or_corrupt_files_name_the_file(tmp_path, damage, names):
    build_index(_corpus(tmp_path / "data", DOCS), tmp_path / "idx")
    idx = tmp_path / "idx"
    if damage == "delete_manifest":
        (idx / "manifest.json").unlink()
    elif damage == "corrupt_manifest":
        (idx / "manifest.json").write_text("{not json")
    elif damage == "delete_doc_ids":
        (idx / "doc_ids.json").unlink()
    elif damage == "delete_bm25_file":
        (idx / "bm25" / "vocab.index.json").unlink()
    elif damage == "delete_embeddings":
        (idx / "embeddings.npy").unlink()
    else:
        data = (idx / "embeddings.npy").read_bytes()
        (idx / "embeddings.npy").write_bytes(data[:200])
    with pytest.raises(InputError) as info:
        index = CorpusIndex(idx)
        index.bm25.search({"q": "wing"}, 2)
        index.dense.search({"q": "wing"}, 2)
    assert names in str(info.value) and "\n" not in str(info.value)


def test_corpus_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(InputError, match=r"corpus.jsonl: holds no documents"):
        read_corpus(_corpus(tmp_path / "empty", []))
    bad = _corpus(tmp_path / "notext", [DOCS[0], {"_id": "x", "title": "t"}])
    with pytest.raises(InputError, match=r"corpus.jsonl:2: missing field 'text'"):
        read_corpus(bad)
    null = _corpus(tmp_path / "null", [DOCS[0], {"_id": "x", "text": None}])
    with pytest.raises(InputError, match=r"corpus.jsonl:2: document 'x' has no text"):
        read_corpus(null)
    with pytest.raises(InputError, match="holds no documents"):
        build_index(tmp_path / "empty", tmp_path / "never")
    assert not (tmp_path / "never").exists()  # nothing written half-way


def test_empty_documents_are_kept_and_counted(tmp_path):
    data = _corpus(tmp_path / "data", [*DOCS, {"_id": "e", "title": "", "text": ""}])
    index, report = build_index(data, tmp_path / "idx", dense=False)
    assert report.empty_documents == 1 == index.manifest["corpus"]["empty_documents"]
    assert "e" in index.doc_ids


def test_a_model_path_that_is_not_sentence_transformers(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a sentence-transformers model: it has no "
                                         "modules.json"):
        resolve_encoder(str(tmp_path / "plain"))
    with pytest.raises(InputError, match="no such folder"):
        resolve_encoder(str(tmp_path / "absent"))


def test_a_killed_embedding_build_resumes_where_it_stopped(tmp_path, monkeypatch):
    data = _corpus(tmp_path / "data", DOCS * 1 + [
        {"_id": f"x{i}", "title": "", "text": f"document number {i}"} for i in range(5)])
    encoded: list[int] = []
    real = Encoder.encode

    def counting(self, texts):
        encoded.append(len(texts))
        if len(encoded) == 2:
            raise KeyboardInterrupt  # killed after the first chunk was written
        return real(self, texts)

    monkeypatch.setattr(Encoder, "encode", counting)
    with pytest.raises(KeyboardInterrupt):
        build_index(data, tmp_path / "idx", chunk=3)
    # The manifest names BM25 (complete) but no embeddings yet.
    assert "dense" not in json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert json.loads((tmp_path / "idx" / "embeddings.partial.json").read_text())["done"] == 3
    encoded.clear()
    monkeypatch.setattr(Encoder, "encode", lambda self, texts: (encoded.append(len(texts)),
                                                                real(self, texts))[1])
    index, report = build_index(data, tmp_path / "idx", chunk=3)
    assert encoded == [3, 2]  # only the 5 documents not yet embedded
    assert report.reused == ["bm25"]
    fresh = Encoder().encode([f"{d['title']}\n{d['text']}" if d["title"] else d["text"]
                              for d in DOCS])
    assert np.allclose(index.embeddings[:3], fresh, atol=1e-5)
    assert not (tmp_path / "idx" / "embeddings.partial.npy").exists()


def test_derived_parts_live_in_the_index(tmp_path):
    index, _ = build_index(_corpus(tmp_path / "data", DOCS), tmp_path / "idx", dense=False)
    folder = index.derived_path("tree")
    assert folder == tmp_path / "idx" / "derived" / "tree" and folder.is_dir()
    index.record_derived("tree", {"branching": 10})
    assert CorpusIndex(tmp_path / "idx").manifest["derived"]["tree"] == {"branching": 10}
    shutil.rmtree(folder)
