"""Helpers shared by the benchmarks: machine facts and writing rows into docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RERANKGRAPH_DATA", ROOT.parent / "shared" / "data"))
DOC = ROOT / "docs" / "benchmarks.md"
DL19 = DATA / "trec-dl19-passage"


def load_job(folder: Path, queries: int | None, depth: int) -> tuple[Any, Any]:
    """The first `queries` queries of the folder's BM25 run at `depth`, and that run."""
    from rerankgraph.data import build_job, load_beir, read_trec_run

    first_stage = read_trec_run(folder / "bm25.trec")
    return build_job(load_beir(folder), first_stage, depth=depth, queries=queries), first_stage


def machine() -> str:
    cores = os.cpu_count()
    try:
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        device = "torch not installed"
    return f"{platform.machine()}, {cores} cores, {device}"


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def write_section(name: str, body: str) -> None:
    """Replaces the section between `<!-- bench:NAME -->` markers (or appends it)."""
    DOC.parent.mkdir(exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    stamp = (f"Command: `{command_line()}`  \nMachine: {machine()}; date "
             f"{datetime.date.today().isoformat()}; commit {git_commit()}\n\n")
    block = f"<!-- bench:{name} -->\n{stamp}{body.strip()}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
    DOC.write_text(text)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
