"""The API under load: N clients post DL19 requests to `rerankgraph api` on 127.0.0.1 for
T seconds, and every request's fate is counted.

    python bench/load.py --clients 64 --duration 300
    python bench/load.py --clients 64 --duration 300 --sigterm-at 120

The server is the real CLI (`rerankgraph api`, embedded judge unless `--model`) in its
own process; with `--url` the clients drive a server already running instead. Each
client loops: post one DL19 query with its BM25 top-`--documents` passages, wait for the
reply, and post again. A 429 is honoured as a client should: it waits `Retry-After`
(capped at 5 s) before the next post. Clients stop starting requests at `--duration`;
those in flight then get `--drain` seconds to be answered.

Every request ends as exactly one of: an HTTP status (counted by code), refused (the
connection was never accepted: nothing was taken), lost (accepted, then the connection
broke or the client timed out with no answer). A lost request is a failure of the API.

With `--sigterm-at S` the server gets SIGTERM S seconds in; clients go on until it has
exited (each refused connection then ends that client), and the server's exit code and
its time from SIGTERM to exit are reported.

Reported: latency p50/p95/p99 of the 200s (and of all answers), throughput (200s per
second of the run), status counts, refused and lost counts, the server's RSS (its process
and children, from /proc) when ready and at the end, and for a run without SIGTERM the
server's own /metrics counts by status next to the clients'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DL19, load_job, write_section  # noqa: E402

RETRY_AFTER_CAP_S = 5.0
RSS_EVERY_S = 60.0


@dataclass
class Tally:
    """What every request came to, and when the replies came."""

    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    lost: int = 0
    lost_reasons: Counter[str] = field(default_factory=Counter)
    ok_latencies: list[float] = field(default_factory=list)
    all_latencies: list[float] = field(default_factory=list)
    sent: int = 0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())


@dataclass
class Server:
    """The API process bench/load.py started, or None when it drives `--url`."""

    process: subprocess.Popen[bytes] | None
    url: str
    ready_s: float = 0.0


def rss_mib(pid: int, children: bool = True) -> float:
    """Resident memory of `pid` and (with `children`) all its descendants (vLLM's engine
    core is a child)."""
    total_kib = 0
    for process in [pid, *(descendants(pid) if children else [])]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def descendants(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        for task in tasks:
            for child in (task / "children").read_text().split():
                children += [int(child), *descendants(int(child))]
    except OSError:
        pass
    return children


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


async def client_loop(client: Any, url: str, bodies: list[dict[str, Any]], start: int,
                      stop_at: float, tally: Tally, server_gone: asyncio.Event,
                      timeout_s: float) -> None:
    """One client: post, wait, post again, until `stop_at` (or the server has gone)."""
    import httpx

    index = start
    while time.monotonic() < stop_at:
        body = bodies[index % len(bodies)]
        index += 1
        tally.sent += 1
        began = time.monotonic()
        try:
            reply = await client.post(url, json=body, timeout=timeout_s)
        except httpx.ConnectError:
            tally.refused += 1
            if server_gone.is_set():
                return
            await asyncio.sleep(0.5)
            continue
        except (httpx.TransportError, httpx.TimeoutException) as error:
            tally.lost += 1
            tally.lost_reasons[type(error).__name__] += 1
            continue
        latency = time.monotonic() - began
        tally.statuses[reply.status_code] += 1
        tally.all_latencies.append(latency)
        if reply.status_code == 200:
            tally.ok_latencies.append(latency)
        elif reply.status_code == 429:
            wait = float(reply.headers.get("retry-after", "1") or 1)
            await asyncio.sleep(min(wait, RETRY_AFTER_CAP_S))


async def drive(url: str, bodies: list[dict[str, Any]], clients: int, duration_s: float,
                drain_s: float, server: Server, sigterm_at: float | None,
                timeout_s: float, rss_every_s: float = RSS_EVERY_S
                ) -> tuple[Tally, float, dict[str, Any]]:
    """Runs the clients; returns the tally, the run's wall time and what SIGTERM did."""
    import httpx

    tally = Tally()
    server_gone = asyncio.Event()
    shutdown: dict[str, Any] = {}
    started = time.monotonic()
    stop_at = started + duration_s
    # One connection per client, as N separate users would hold.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits) as client:
        tasks = [asyncio.create_task(client_loop(client, f"{url}/v1/rerank", bodies, n,
                                                 stop_at, tally, server_gone, timeout_s))
                 for n in range(clients)]
        sampler = (asyncio.create_task(sample_rss(server.process.pid, shutdown, started,
                                                  rss_every_s))
                   if server.process is not None else None)
        if sigterm_at is not None and server.process is not None:
            await asyncio.sleep(sigterm_at)
            shutdown["rss_before_mib"] = rss_mib(server.process.pid)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            while server.process.poll() is None:
                await asyncio.sleep(0.1)
            shutdown["exit_code"] = server.process.returncode
            shutdown["exit_after_s"] = time.monotonic() - signalled
            server_gone.set()
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, stop_at - time.monotonic())
                                           + drain_s)
        for task in pending:  # a client still waiting past the drain: its request hung
            task.cancel()
            tally.lost += 1
            tally.lost_reasons["no answer within the drain"] += 1
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()
        if sampler is not None:
            sampler.cancel()
    return tally, time.monotonic() - started, shutdown


async def sample_rss(pid: int, into: dict[str, Any], started: float, every_s: float) -> None:
    """The server's RSS every `every_s` seconds: growth that levels off is warm-up,
    growth that does not is a leak."""
    samples: list[tuple[float, float, float]] = into.setdefault("rss_samples", [])
    while True:  # (seconds in, all processes, the API process alone)
        samples.append((time.monotonic() - started, rss_mib(pid), rss_mib(pid, children=False)))
        await asyncio.sleep(every_s)


def start_server(port: int, method: str, model: str | None, max_in_flight: int,
                 grace_s: float, log: Path) -> Server:
    import httpx

    command = ["rerankgraph", "api", "--port", str(port), "--method", method,
               "--max-in-flight", str(max_in_flight), "--shutdown-grace", str(grace_s)]
    if model:
        command += ["--model", model]
    began = time.monotonic()
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return Server(process, url, time.monotonic() - began)
        except httpx.TransportError:
            time.sleep(1)
    raise SystemExit(f"rerankgraph api exited with {process.returncode} before it was ready;"
                     f" see {log}")


def server_status_counts(url: str) -> dict[str, float]:
    """Requests to /v1/rerank by status, as the server's /metrics counted them."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if (sample.name.endswith("requests_total") and
                    sample.labels.get("route") == "/v1/rerank"):
                counts[sample.labels["status"]] = sample.value
    return counts


def report(args: argparse.Namespace, tally: Tally, wall_s: float, server: Server,
           rss_start: float | None, rss_end: float | None, shutdown: dict[str, Any],
           server_counts: dict[str, float] | None) -> str:
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(tally.statuses.items()))
    ok = tally.statuses.get(200, 0)
    judge = args.model or "embedded judge SmolLM2-135M-Instruct"
    lines = [
        f"{args.clients} clients for {args.duration:.0f} s against `rerankgraph api` "
        f"(method {args.method}, {judge}, --max-in-flight {args.max_in_flight}) on 127.0.0.1; "
        f"each request one DL19 query with its BM25 top-{args.documents} passages, the "
        f"{len(set(b['query'] for b in args.bodies))} queries in turn. A client waits "
        f"Retry-After (at most {RETRY_AFTER_CAP_S:.0f} s) after a 429. The server was ready "
        f"{server.ready_s:.0f} s after it started (engine load).",
        "",
        "| measure | value |", "|---|---|",
        f"| requests sent | {tally.sent} |",
        f"| answered, by status | {statuses or 'none'} |",
        f"| refused (connection not accepted) | {tally.refused} |",
        f"| lost (accepted, no answer) | {tally.lost}"
        f"{' (' + ', '.join(f'{k}: {v}' for k, v in tally.lost_reasons.items()) + ')' if tally.lost else ''} |",
        f"| latency of 200s p50 / p95 / p99 s | {percentile(tally.ok_latencies, .5):.2f} / "
        f"{percentile(tally.ok_latencies, .95):.2f} / {percentile(tally.ok_latencies, .99):.2f} |",
        f"| latency of all answers p50 / p95 / p99 s | {percentile(tally.all_latencies, .5):.2f}"
        f" / {percentile(tally.all_latencies, .95):.2f} / "
        f"{percentile(tally.all_latencies, .99):.2f} |",
        f"| throughput (200s per second) | {ok / wall_s:.2f} |",
        f"| wall time (run and drain) s | {wall_s:.1f} |",
    ]
    if rss_start is not None:
        end = f"{rss_end:.0f}" if rss_end is not None else "(exited)"
        lines.append(f"| server RSS when ready / at the end MiB | {rss_start:.0f} / {end} |")
    samples = [sample for sample in shutdown.get("rss_samples", []) if sample[1] > 0]
    if samples:
        lines.append("| server RSS over the run MiB, all (API process alone) | " + ", ".join(
            f"{mib:.0f} ({own:.0f}) at {t:.0f} s" for t, mib, own in samples) + " |")
    if "exit_code" in shutdown:
        lines += [f"| SIGTERM at s | {args.sigterm_at:.0f} |",
                  f"| server RSS at SIGTERM MiB | {shutdown['rss_before_mib']:.0f} |",
                  f"| server exit code | {shutdown['exit_code']} |",
                  f"| SIGTERM to exit s | {shutdown['exit_after_s']:.1f} |"]
    if server_counts is not None:
        counted = ", ".join(f"{k}: {v:.0f}" for k, v in sorted(server_counts.items()))
        lines.append(f"| the server's /metrics, /v1/rerank by status | {counted} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds")
    parser.add_argument("--drain", type=float, default=360.0,
                        help="seconds the requests in flight at the end get to be answered")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="a client's wait for one reply, seconds")
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--queries", type=int, default=43)
    parser.add_argument("--method", default="pointwise")
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument("--shutdown-grace", type=float, default=30.0)
    parser.add_argument("--sigterm-at", type=float, default=None, help="seconds")
    parser.add_argument("--rss-every", type=float, default=RSS_EVERY_S,
                        help="seconds between RSS samples")
    parser.add_argument("--url", default=None, help="drive this running server instead")
    parser.add_argument("--section", default=None,
                        help="docs/benchmarks.md section to write (default: load, or "
                             "load-sigterm with --sigterm-at)")
    args = parser.parse_args()

    from rerankgraph.serving.server import free_port

    job, _ = load_job(DL19, args.queries, args.documents)
    args.bodies = [{"query": r.query.text, "documents": [c.full_text for c in r.candidates]}
                   for r in job.requests]
    if args.url:
        server = Server(None, args.url.rstrip("/"))
    else:
        server = start_server(free_port("127.0.0.1"), args.method, args.model,
                              args.max_in_flight, args.shutdown_grace,
                              Path("/tmp/rerankgraph-bench-load.log"))
    rss_start = rss_mib(server.process.pid) if server.process else None
    print(f"server ready at {server.url}; driving {args.clients} clients for "
          f"{args.duration:.0f} s", flush=True)
    try:
        tally, wall_s, shutdown = asyncio.run(drive(
            server.url, args.bodies, args.clients, args.duration, args.drain, server,
            args.sigterm_at, args.timeout, args.rss_every))
        alive = server.process is None or server.process.poll() is None
        rss_end = rss_mib(server.process.pid) if server.process and alive else None
        server_counts = server_status_counts(server.url) if alive else None
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=120)
    body = report(args, tally, wall_s, server, rss_start, rss_end, shutdown, server_counts)
    print(body)
    if not args.url:
        write_section(args.section or ("load-sigterm" if args.sigterm_at else "load"), body)
    sys.exit(1 if tally.lost else 0)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
