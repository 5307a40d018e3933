"""The README's runnable examples (its Python blocks with a main guard) run as written:
each from stdin, and the quick start from a file too, on the embedded judge."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
SCRIPTS = [b for b in BLOCKS if 'if __name__ == "__main__":' in b]
EXPECTED = {  # what each example prints, in README order
    "quick start": r"\['d[01]', 'd[01]'\]\n\d+ \d+\n",
    "langchain": r"\{'id': [12], 'relevance_score': [0-9.]+, 'rerankgraph': \{",
    "llamaindex": r"(Paris is the capital of France|Bananas are rich in potassium)\. [0-9.]+\n",
}


def test_the_readme_has_its_three_runnable_examples():
    assert len(SCRIPTS) == 3
    assert "Reranker(" in SCRIPTS[0] and "RerankgraphCompressor" in SCRIPTS[1]
    assert "RerankgraphPostprocessor" in SCRIPTS[2]


def _run(argv: list[str], stdin: str | None, cwd: Path) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=400,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.engine
@pytest.mark.parametrize(("name", "how"), [("quick start", "file"), ("quick start", "stdin"),
                                           ("langchain", "stdin"), ("llamaindex", "stdin")])
def test_a_readme_example_runs_as_written(tmp_path, name, how):
    script = SCRIPTS[list(EXPECTED).index(name)]
    (tmp_path / "example.py").write_text(script)
    argv = [sys.executable, "example.py"] if how == "file" else [sys.executable, "-"]
    output = _run(argv, script if how == "stdin" else None, tmp_path)
    assert re.search(EXPECTED[name], output), output
