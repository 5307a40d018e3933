"""The agreement JSON that `rerankgraph assess` writes (LLM labels against human qrels),
read for the report. Reading is tolerant: a missing or malformed key becomes one line
naming it, and the rest still shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankgraph.errors import InputError

GRADES = 4  # the confusion matrix is human grade 0-3 by LLM grade 0-3
# The scalar keys, shown in this order, as (key, row name).
SCALARS = (("labels", "LLM labels"), ("human", "human qrels"), ("pairs", "pairs compared"),
           ("skipped", "pairs skipped"), ("kappa_graded", "Cohen's κ, graded"),
           ("kappa_binary", "Cohen's κ, binary"),
           ("binary_threshold", "binary: relevant from grade"))


@dataclass(frozen=True)
class Agreement:
    """What could be read; `problems` holds one line per key that could not."""

    path: Path
    rows: list[tuple[str, str]]  # (row name, value as shown)
    confusion: list[list[int]] | None
    precision: list[tuple[str, str]]  # (grade, value as shown)
    tau: str | None
    problems: list[str] = field(default_factory=list)


def read_agreement(path: Path) -> Agreement:
    """Raises InputError when the file is missing or not a JSON object; anything else
    wrong is kept in `problems`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--agreement {path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"--agreement {path}: not valid JSON ({exc}); give the file "
                         "`rerankgraph assess` wrote") from None
    if not isinstance(data, dict):
        raise InputError(f"--agreement {path}: expected a JSON object, got "
                         f"{type(data).__name__}")
    problems: list[str] = []
    rows = []
    for key, name in SCALARS:
        if key in data:
            rows.append((name, _shown(data[key])))
        else:
            problems.append(f"{path}: no key {key!r}")
    return Agreement(path=Path(path), rows=rows,
                     confusion=_confusion(data, path, problems),
                     precision=_precision(data, path, problems),
                     tau=_tau(data, path, problems), problems=problems)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _confusion(data: dict, path: Path, problems: list[str]) -> list[list[int]] | None:
    matrix = data.get("confusion")
    if matrix is None:
        problems.append(f"{path}: no key 'confusion'")
        return None
    ok = (isinstance(matrix, list) and len(matrix) == GRADES and all(
        isinstance(row, list) and len(row) == GRADES
        and all(isinstance(v, int) and not isinstance(v, bool) for v in row)
        for row in matrix))
    if not ok:
        problems.append(f"{path}: key 'confusion' is not a {GRADES}x{GRADES} matrix of counts")
        return None
    return matrix


def _precision(data: dict, path: Path, problems: list[str]) -> list[tuple[str, str]]:
    by_grade = data.get("precision_by_grade")
    if not isinstance(by_grade, dict):
        problems.append(f"{path}: no key 'precision_by_grade'" if by_grade is None else
                        f"{path}: key 'precision_by_grade' is not an object")
        return []
    return [(str(g), _shown(by_grade.get(str(g)))) for g in range(GRADES)]


def _tau(data: dict, path: Path, problems: list[str]) -> str | None:
    if "tau" not in data:
        problems.append(f"{path}: no key 'tau'")
        return None
    tau = data["tau"]
    if tau is None:
        return None
    try:
        runs = ", ".join(str(r) for r in tau["runs"])
        return (f"Kendall's τ of the run order by {tau['measure']}: {tau['value']:.4f} "
                f"(p = {tau['p']:.4g}) over {runs}")
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"{path}: key 'tau' lacks or misreads {exc}")
        return None
