"""The report opened in headless Chromium: the page paints (a screenshot of many
colours), and after the browser has parsed it the DOM holds the tables and the plots."""

import shutil
import subprocess

import numpy as np
import pytest

from rerankgraph.report import ReportSettings, build_report
from tests.report.html import Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`make browser` installs it)")]


def chromium(tmp_path, *args):
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120)


@pytest.fixture
def page_file(case, tmp_path):
    return build_report(ReportSettings(
        runs=[case.bm25, case.pointwise, case.listwise], qrels=case.qrels, rel=2,
        data=case.data, out=tmp_path / "report.html")).path


def test_the_report_paints_in_chromium(page_file, tmp_path):
    import matplotlib.image

    shot = tmp_path / "shot.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000",
                    page_file.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    # Text, table borders, grade badges and coloured bars: a blank page has one colour.
    assert len(colours) > 50


def test_the_parsed_dom_holds_the_tables_and_plots(page_file, tmp_path):
    done = chromium(tmp_path, "--dump-dom", page_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Page(done.stdout)
    assert dom.tags["svg"] == 3 and dom.tags["details"] == 6
    assert list(dom.rows("summary"))[0] == "bm25 (baseline)"
    assert set(dom.rows("significance")) == {"pointwise", "listwise"}
    assert len(dom.tables["drill-q1-listwise"]) == 1 + 12  # header and every document
