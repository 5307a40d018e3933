"""Outputs cannot destroy inputs or finished work: checked before any LLM call, written
atomically, and a failed write says where the judged queries are kept."""

from __future__ import annotations

import pytest

from rerankgraph.data import check_outputs, read_trec_run, write_atomic
from rerankgraph.errors import InputError
from tests.conftest import CRANFIELD, DL19
from tests.test_cli import run_cli


def _error_line(done) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_a_folder_as_out_is_refused_before_any_work(tmp_path):
    done = run_cli("rerank", "--data", DL19, "--run", DL19 / "bm25.trec", "--out", tmp_path,
                   "--queries", "1", "--depth", "2")
    assert done.returncode == 2
    assert f"--out {tmp_path} is a folder" in _error_line(done)
    assert "loading engine" not in done.stderr


def test_out_equal_to_run_is_refused_and_the_run_kept(tmp_path):
    run = tmp_path / "bm25.trec"
    run.write_bytes((DL19 / "bm25.trec").read_bytes())
    before = run.read_bytes()
    done = run_cli("batch", "--data", DL19, "--run", run, "--out", run, "--queries", "1",
                   "--depth", "2", "--simulate", DL19 / "qrels.tsv")
    assert done.returncode == 2
    assert "is one of this command's inputs" in _error_line(done) and "--force" in done.stderr
    assert run.read_bytes() == before


def test_provenance_over_the_qrels_is_refused(tmp_path):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_bytes((DL19 / "qrels.tsv").read_bytes())
    done = run_cli("batch", "--data", DL19, "--run", DL19 / "bm25.trec", "--out",
                   tmp_path / "o.trec", "--provenance", qrels, "--simulate", qrels,
                   "--queries", "1", "--depth", "2")
    assert done.returncode == 2 and "--provenance" in _error_line(done)


def test_force_writes_over_an_input(tmp_path):
    run = tmp_path / "bm25.trec"
    run.write_bytes((CRANFIELD / "bm25.trec").read_bytes())
    done = run_cli("batch", "--data", CRANFIELD, "--run", run, "--out", run, "--queries", "1",
                   "--depth", "3", "--simulate", CRANFIELD / "qrels.tsv", "--force")
    assert done.returncode == 0, done.stderr
    assert list(read_trec_run(run)) == ["1"]


def test_an_unwritable_parent_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write in .*a-file"):
        check_outputs({"--out": blocker / "sub" / "o.trec"}, [])
    done = run_cli("retrieve", "--index", tmp_path / "none", "--data", CRANFIELD, "--out",
                   blocker / "o.trec")
    assert done.returncode == 2 and "cannot write in" in _error_line(done)


def test_a_crash_mid_write_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "run.trec"
    target.write_text("old line\n")

    def lines():
        yield "new line 1\n"
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, lines())
    assert target.read_text() == "old line\n"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_a_failed_final_write_names_the_state_file(tmp_path, monkeypatch):
    """The judged queries survive a write that fails after the work: the state file
    holds them, and a rerun writes the run from it without new calls."""
    out = tmp_path / "o.trec"
    args = ["batch", "--data", CRANFIELD, "--run", CRANFIELD / "bm25.trec", "--out", out,
            "--queries", "2", "--depth", "3", "--simulate", CRANFIELD / "qrels.tsv"]
    # A folder appears where the run goes after the checks passed: the rename fails.
    from rerankgraph.errors import OutputError
    from rerankgraph.jobs import rerank as job_module
    from rerankgraph.jobs.rerank import JobSettings, run_rerank_job

    real_check = job_module._check_output_paths

    def check_then_block(settings):
        real_check(settings)
        out.mkdir()

    monkeypatch.setattr(job_module, "_check_output_paths", check_then_block)
    settings = JobSettings(data=CRANFIELD, run=CRANFIELD / "bm25.trec", out=out, queries=2,
                           depth=3, durable=True, simulate=CRANFIELD / "qrels.tsv")
    with pytest.raises(OutputError, match=r"judged queries are kept in .*o.trec.state.sqlite"):
        run_rerank_job(settings)
    out.rmdir()
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "2 resumed" in done.stderr and len(read_trec_run(out)) == 2
