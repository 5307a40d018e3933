"""The in-process engine starts from scripts that vLLM's spawned engine process cannot
re-run: a file without an `if __name__ == "__main__":` guard, a script fed on stdin,
and code with no __file__ at all (`python -c`, as a Jupyter kernel runs cells)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# No main guard, on purpose: before the fix the engine process re-ran this file (and
# from stdin failed with FileNotFoundError '<stdin>').
SCRIPT = textwrap.dedent("""
    import os
    from rerankgraph import Reranker

    print("RUN", os.getpid(), flush=True)
    reranker = Reranker("pointwise", engine_options={"max_model_len": 1024})
    result = reranker.rerank("what is a cat", ["Stocks fell today.", "A cat is a feline."])
    print("RESULT", len(result.ranking), result.provenance.llm_calls, flush=True)
    reranker.close()
""")


def _run(argv: list[str], stdin: str | None = None, cwd: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=400,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.engine
@pytest.mark.parametrize("how", ["file without a main guard", "stdin", "python -c"])
def test_the_engine_starts_from_scripts_spawn_cannot_rerun(tmp_path, how):
    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT)
    argv = {"file without a main guard": [sys.executable, str(script)],
            "stdin": [sys.executable, "-"],
            "python -c": [sys.executable, "-c", SCRIPT]}[how]
    output = _run(argv, stdin=SCRIPT if how == "stdin" else None, cwd=str(tmp_path))
    # The script ran once (the engine process did not run it again) and reranked.
    assert output.count("RUN ") == 1, output
    assert "RESULT 2 2" in output
