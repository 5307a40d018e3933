"""The benches' rows: bench/common.py's loader of TOML/JSON rows and of the one-line
`--methods` form, and its one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rerankgraph.errors import InputError

BENCH = Path(__file__).resolve().parents[2] / "bench"
# bench/ is scripts, not a package: load its common.py under a name of its own.
_spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)

CASCADE_ROWS = """
[[rows]]
method = "rubric"
params = { samples = 4 }

[[rows]]
label = "deep cascade"
method = "cascade"

[rows.params]
fusion = "rrf"

[[rows.params.stages]]
depth = 20
method = "rubric"
params = { samples = 1, reasoning_tokens = 48 }

[[rows.params.stages]]
depth = 10
method = "listwise"
params = { window = 10, stride = 5, passes = 2 }
"""


def write(tmp_path: Path, text: str, name: str = "rows.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_toml_cascade_row_keeps_every_parameter_of_every_stage(tmp_path):
    rows = common.load_rows(write(tmp_path, CASCADE_ROWS))
    assert rows == [
        common.Row("rubric:samples=4", "rubric", {"samples": 4}),
        common.Row("deep cascade", "cascade", {"fusion": "rrf", "stages": [
            {"depth": 20, "method": "rubric",
             "params": {"samples": 1, "reasoning_tokens": 48}},
            {"depth": 10, "method": "listwise",
             "params": {"window": 10, "stride": 5, "passes": 2}}]})]


def test_json_rows_read_as_toml_rows_do(tmp_path):
    toml_rows = common.load_rows(write(tmp_path, CASCADE_ROWS))
    as_json = [dict(r._asdict()) for r in toml_rows]
    assert common.load_rows(write(tmp_path, json.dumps({"rows": as_json}), "r.json")) == \
        toml_rows
    assert common.load_rows(write(tmp_path, json.dumps(as_json), "bare.json")) == toml_rows


def test_the_one_line_form_labels_rows_as_written():
    rows = common.parse_rows("first; rubric:samples=4,temperature=0.6;"
                             "cascade:stages=20@rubric -> 10@listwise")
    assert rows == [
        common.Row("first", "first", {}),
        common.Row("rubric:samples=4,temperature=0.6", "rubric",
                   {"samples": 4, "temperature": 0.6}),
        common.Row("cascade:stages=20@rubric -> 10@listwise", "cascade",
                   {"stages": "20@rubric -> 10@listwise"})]
    # A file row without a label gets the label its one-line form has, so --reuse finds
    # the rankings either form saved.
    assert common.row_label("rubric", {"samples": 4, "temperature": 0.6}) == rows[1].label


def test_the_example_rows_file_holds_the_recorded_table_and_a_multi_parameter_cascade():
    rows = common.load_rows(BENCH / "rows" / "dl19-methods.toml")
    recorded = ("first;listwise;pointwise;rubric;rubric:samples=4;cascade:stages=20@rubric "
                "-> 10@rubric:samples=4 -> 10@listwise;dear;setwise;groupwise;pairwise")
    assert rows[:10] == common.parse_rows(recorded)
    stages = rows[10].params["stages"]
    assert rows[10].method == "cascade" and [len(s["params"]) for s in stages] == [2, 2, 3]


@pytest.mark.parametrize(("text", "message"), [
    ('[[rows]]\nmethod = "nope"\n',
     "rows.toml: row 1 (nope): unknown method 'nope'; registered methods: "),
    ('[[rows]]\nmethod = "first"\n[[rows]]\nmethod = "rubric"\nparams = { sample = 4 }\n',
     "rows.toml: row 2 (rubric:sample=4): method 'rubric' parameter 'sample': Extra inputs "
     "are not permitted (known parameters: "),
    ('[[rows]]\nmethod = "cascade"\n[[rows.params.stages]]\ndepth = 10\nmethod = "rubric"\n'
     'params = { samples = 4, beam = 2 }\n',
     "rows.toml: row 1 (cascade:stages=[{\"depth\":10,\"method\":\"rubric\",\"params\":"
     "{\"samples\":4,\"beam\":2}}]): method 'rubric' parameter 'beam': Extra inputs are not "
     "permitted"),
    ('[[rows]]\nmethod = "cascade"\n[[rows.params.stages]]\ndepth = 10\nmethod = "nope"\n',
     "rows.toml: row 1 (cascade:stages=[{\"depth\":10,\"method\":\"nope\"}]): unknown method "
     "'nope'"),
    ('[[rows]]\nmethod = "first"\nparam = { window = 4 }\n',
     "rows.toml: row 1 (first): unknown key(s) param; a row takes method, params, label"),
    ('[[rows]]\nmethod = "first"\n[[rows]]\nmethod = "first"\n',
     "rows.toml: row 2 (first): the label is taken by an earlier row"),
    ('[[rows]]\nparams = { window = 4 }\n', "rows.toml: row 1: give a table with a `method`"),
    ('method = "first"\n', "rows.toml: give a non-empty list of rows"),
    ('[[rows]]\nmethod = "first\n', "rows.toml: "),
])
def test_a_bad_row_is_one_line_naming_the_file_and_the_row(tmp_path, text, message):
    with pytest.raises(InputError) as caught:
        common.load_rows(write(tmp_path, text))
    shown = str(caught.value)
    assert "\n" not in shown and shown.startswith(str(tmp_path / "rows.toml"))
    assert shown.removeprefix(str(tmp_path) + "/").startswith(message), shown


def test_a_bad_one_line_row_names_its_place():
    with pytest.raises(InputError, match=r"^--methods: row 2 \(listwise:windows=4\): method "
                                         r"'listwise' parameter 'windows'"):
        common.parse_rows("first;listwise:windows=4")


def test_the_methods_bench_stops_on_a_bad_row_before_it_reads_data_or_loads_a_model(
        tmp_path):
    rows = write(tmp_path, '[[rows]]\nmethod = "rubric"\nparams = { sample = 4 }\n')
    done = subprocess.run(
        [sys.executable, str(BENCH / "methods.py"), "--rows", str(rows),
         "--data", str(tmp_path / "no-data")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RERANKGRAPH_NO_ENGINE": "1"})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (
        f"{rows}: row 1 (rubric:sample=4): method 'rubric' parameter 'sample': Extra "
        "inputs are not permitted (known parameters: batch_size, max_doc_tokens, definition, "
        "reasoning_tokens, samples, temperature, top_logprobs, fusion, fusion_weight, "
        "fusion_norm, rrf_k)")


@pytest.mark.parametrize("table", sorted((BENCH.parent / "docs").glob("methods*.json")),
                         ids=lambda p: p.name)
def test_the_recorded_tables_rows_read_back_from_their_labels(table):
    # bench/fitted.py reads a table written before it kept its rows this way.
    real = json.loads(table.read_text())
    labels = [label for label in real["ndcg"] if not label.startswith("bm25")
              and "+" not in label]
    rows = common.parse_rows(";".join(labels), table.name)
    assert [r.label for r in rows] == labels and labels
