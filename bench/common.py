"""Helpers shared by the benchmarks: the rows of methods they run, machine facts and
writing tables into docs/benchmarks.md."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RERANKGRAPH_DATA", ROOT.parent / "shared" / "data"))
DOC = ROOT / "docs" / "benchmarks.md"
DL19 = DATA / "trec-dl19-passage"


def load_job(folder: Path, queries: int | None, depth: int) -> tuple[Any, Any]:
    """The first `queries` queries of the folder's BM25 run at `depth`, and that run."""
    from rerankgraph.data import build_job, load_beir, read_trec_run

    first_stage = read_trec_run(folder / "bm25.trec")
    return build_job(load_beir(folder), first_stage, depth=depth, queries=queries), first_stage


class Row(NamedTuple):
    """One benched method: its label in the tables (and saved files), its registered name
    and the parameters it is given."""

    label: str
    method: str
    params: dict[str, Any]


def load_rows(path: Path) -> list[Row]:
    """The rows of a TOML or JSON file: `[[rows]]` tables (JSON: a list, or an object with
    "rows"), each with `method`, optional `params` (nested tables and arrays allowed, e.g.
    a cascade's stages) and optional `label`. Each row is checked as the SDK checks it; a
    bad one raises InputError naming the file and the row."""
    from rerankgraph.errors import InputError

    try:
        data = (tomllib.loads(path.read_text()) if path.suffix == ".toml"
                else json.loads(path.read_text()))
    except (OSError, ValueError) as error:  # TOMLDecodeError and JSONDecodeError are both
        raise InputError(f"{path}: {error}") from None
    return read_rows(data.get("rows") if isinstance(data, dict) else data, str(path))


def read_rows(entries: Any, where: str) -> list[Row]:
    """Rows from already-parsed data (a list of row objects, as `load_rows` reads them);
    `where` names their source in errors."""
    from rerankgraph.errors import InputError

    if not isinstance(entries, list) or not entries:
        raise InputError(f"{where}: give a non-empty list of rows ([[rows]] in TOML)")
    rows: list[Row] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("method"), str):
            raise InputError(f"{where}: row {number}: give a table with a `method` name")
        unknown = set(entry) - {"method", "params", "label"}
        if unknown:
            raise InputError(f"{where}: row {number} ({entry['method']}): unknown key(s) "
                             f"{', '.join(sorted(unknown))}; a row takes method, params, label")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise InputError(f"{where}: row {number} ({entry['method']}): `params` must be "
                             "a table")
        label = entry.get("label") or row_label(entry["method"], params)
        rows.append(check_row(Row(str(label), entry["method"], params), where, number))
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        if row.label in seen:  # saved rankings are keyed by label
            raise InputError(f"{where}: row {number} ({row.label}): the label is taken by "
                             "an earlier row; give the row a `label`")
        seen.add(row.label)
    return rows


def parse_rows(text: str, where: str = "--methods") -> list[Row]:
    """Rows written on one line: `name[:name=value,...]` joined by ";", values read as
    JSON where they parse. A comma always ends a value, so a cascade's stages carry one
    parameter each here; a rows file has no such limit. The label is the row as written."""
    rows = []
    for number, part in enumerate(filter(None, (p.strip() for p in text.split(";"))),
                                  start=1):
        name, _, pairs = part.partition(":")
        params: dict[str, Any] = {}
        for pair in filter(None, (p.strip() for p in pairs.split(","))):
            key, _, value = pair.partition("=")
            try:
                params[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                params[key.strip()] = value.strip()
        rows.append(check_row(Row(part, name.strip(), params), where, number))
    return rows


def row_label(method: str, params: dict[str, Any]) -> str:
    """`method:name=value,...`, as the one-line form writes the row."""
    shown = ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}"
                     for k, v in params.items())
    return f"{method}:{shown}" if shown else method


def check_row(row: Row, where: str, number: int) -> Row:
    """`row`, once the registry knows its method and the method takes its parameters
    (a cascade's stages are built, so theirs are checked too)."""
    from rerankgraph.errors import InputError
    from rerankgraph.registry import get_method

    try:
        spec = get_method(row.method)
        # What the SDK's Reranker does before it loads an engine.
        spec.graph(spec.make_params(row.params), get_method)
    except InputError as error:
        raise InputError(f"{where}: row {number} ({row.label}): {error}") from None
    return row


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
