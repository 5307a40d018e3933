"""What the HTTP API adds over calling the SDK: the same requests (a DL19 query with its
BM25 top-20 each), at several concurrencies, through `Reranker.arerank` directly and
through POST /v1/rerank on 127.0.0.1 (uvicorn in a thread of this process, so both
sides share one engine and one machine).

    python bench/api.py --requests 16 --concurrency 1 4 16 --repeats 3
    python bench/api.py --simulated --requests 400 --concurrency 1 4 16 --repeats 3

`--simulated` answers from DL19's qrels at once (no model), so the times are the
orchestration alone and the difference is what the HTTP path costs per request.

After one warm-up request per side, runs alternate (SDK, API, SDK, API, ...) and the
median of `--repeats` is reported with the range. Replies are cached by neither side.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DL19, load_job, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="pointwise")
    parser.add_argument("--simulated", action="store_true",
                        help="no model: the simulated judge answers from the qrels")
    args = parser.parse_args()

    import httpx
    import uvicorn

    from rerankgraph.api import build_app
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.platform import route_engine_logs
    from rerankgraph.serving.server import free_port

    route_engine_logs("/tmp/rerankgraph-bench-api.log")
    job, _ = load_job(DL19, None, 20)
    bodies = [{"query": r.query.text, "documents": [c.full_text for c in r.candidates]}
              for r in (job.requests * -(-args.requests // len(job.requests)))[:args.requests]]
    engine = None
    if args.simulated:
        from rerankgraph.data import load_beir, read_qrels
        from rerankgraph.simulation import SimulatedJudge

        data = load_beir(DL19)
        engine = SimulatedJudge(read_qrels(DL19 / "qrels.tsv"), data.queries, data.corpus)
    reranker = Reranker(args.method, engine=engine)
    _ = reranker.engine
    port = free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(build_app(reranker), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/rerank"

    async def sdk_side(concurrency: int) -> float:
        gate = asyncio.Semaphore(concurrency)

        async def one(body: dict) -> None:
            async with gate:
                await reranker.arerank(body["query"], body["documents"])

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - started

    async def api_side(concurrency: int) -> float:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=600) as client:
            async def one(body: dict) -> None:
                async with gate:
                    reply = await client.post(url, json=body)
                    reply.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(one(b) for b in bodies))
            return time.perf_counter() - started

    asyncio.run(_warm(reranker, url, bodies[0]))
    rows = ["| concurrency | SDK s (median, range) | API s (median, range) | API overhead |",
            "|---|---|---|---|"]
    medians: list[tuple[int, float, float]] = []
    for concurrency in args.concurrency:
        times: dict[str, list[float]] = {"sdk": [], "api": []}
        for _ in range(args.repeats):
            times["sdk"].append(asyncio.run(sdk_side(concurrency)))
            times["api"].append(asyncio.run(api_side(concurrency)))
        sdk, api = (statistics.median(times[k]) for k in ("sdk", "api"))
        medians.append((concurrency, sdk, api))
        rows.append(f"| {concurrency} | {sdk:.1f} ({min(times['sdk']):.1f}-"
                    f"{max(times['sdk']):.1f}) | {api:.1f} ({min(times['api']):.1f}-"
                    f"{max(times['api']):.1f}) | {100 * (api - sdk) / sdk:+.1f}% |")
        print(rows[-1], flush=True)
    per_request = [f"| {c} | {1000 * (a - s) / args.requests:+.1f} |"
                   for c, s, a in medians] if args.simulated else []
    write_section("api-overhead-simulated" if args.simulated else "api-overhead", "\n".join([
        f"{args.requests} requests of 20 DL19 passages each (BM25 top-20), method "
        f"{args.method}, {'SIMULATED judge (no model)' if args.simulated else 'embedded judge'}"
        f"; {args.repeats} interleaved runs per side after a "
        "warm-up; wall time for all requests. " + (
            "With no model the times are the graphs, the parsing and, on the API side, "
            "HTTP and JSON." if args.simulated else
            "Both sides send the same prompts in the same order, so vLLM's prefix cache "
            "treats them alike."), "", *rows,
        *(["", "| concurrency | API minus SDK, ms per request (medians) |", "|---|---|",
            *per_request] if per_request else [])]))
    server.should_exit = True
    reranker.close()


async def _warm(reranker, url: str, body: dict) -> None:
    import httpx

    await reranker.arerank(body["query"], body["documents"])
    async with httpx.AsyncClient(timeout=600) as client:
        (await client.post(url, json=body)).raise_for_status()


if __name__ == "__main__":
    main()
