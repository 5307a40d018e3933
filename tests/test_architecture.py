"""The house's layer rules (import-linter contract in pyproject.toml) hold, and they
have teeth: an engine module that imports the SDK breaks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(package_parent: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=package_parent, capture_output=True, text=True,
                          env={"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin"},
                          timeout=300)


def test_the_layer_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_an_engine_that_imports_a_judge_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "rerankgraph", tmp_path / "rerankgraph",
                    ignore=shutil.ignore_patterns("__pycache__"))
    engine = tmp_path / "rerankgraph" / "serving" / "factory.py"
    engine.write_text(engine.read_text() + "\nfrom rerankgraph.sdk import Reranker  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "rerankgraph.serving.factory -> rerankgraph.sdk" in result.stdout
