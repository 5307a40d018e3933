"""One request of 1,000 documents of 1 MB each (1 GB of JSON, streamed) to the API on
127.0.0.1, with `--max-bytes` above it: what status it gets, how long it takes and the
process's peak memory. The simulated judge answers (no model), so the time is the API's
own: reading, parsing, cutting every document to its budget.

    python bench/big_request.py [--documents 1000] [--megabytes 1]
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DL19, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--megabytes", type=int, default=1)
    args = parser.parse_args()

    import httpx
    import uvicorn

    from rerankgraph.api import build_app
    from rerankgraph.data import load_beir, read_qrels
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.server import free_port
    from rerankgraph.simulation import SimulatedJudge

    data = load_beir(DL19)
    judge = SimulatedJudge(read_qrels(DL19 / "qrels.tsv"), data.queries, data.corpus)
    document = b'"' + b"word " * (args.megabytes * 200_000) + b'"'
    head, tail = b'{"query": "what is a physician\'s assistant", "documents": [', b"]}"
    size = len(head) + args.documents * len(document) + args.documents - 1 + len(tail)
    port = free_port("127.0.0.1")
    app = build_app(Reranker("pointwise", engine=judge), max_bytes=size + 1,
                    max_documents=args.documents)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    def body():
        yield head
        for n in range(args.documents):
            yield (b"," if n else b"") + document
        yield tail

    started = time.monotonic()
    reply = httpx.post(f"http://127.0.0.1:{port}/v1/rerank", content=body(), timeout=900,
                       headers={"Content-Type": "application/json",
                                "Content-Length": str(size)})
    wall = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meta = reply.json().get("meta", {}) if reply.status_code == 200 else reply.json()
    server.should_exit = True
    lines = [f"One request of {args.documents:,} documents of {args.megabytes} MB each "
             f"({size:,} bytes of JSON, streamed with Content-Length), `--max-bytes` just "
             "above it, SIMULATED judge (no model), method pointwise; client and server "
             "in one process.", "",
             "| status | wall s | peak RSS MiB | LLM calls | truncated docs |", "|---|---|---|---|---|",
             f"| {reply.status_code} | {wall:.1f} | {peak_mib:,.0f} | "
             f"{meta.get('llm_calls', '-')} | {meta.get('truncated_docs', '-')} |"]
    print("\n".join(lines))
    write_section("big-request", "\n".join(lines))


if __name__ == "__main__":
    main()
