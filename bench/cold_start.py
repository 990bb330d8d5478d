"""Cold start: seconds from ``python app.py`` to ``/api/health`` OK, with an index that already exists.

Builds the index once (not timed), then starts the real server ``--runs`` times on a free loopback port
and reports each start-to-ready time (the API answers), the time until the chat page is served too (it is
built just after), and the load average at that moment. Because a shared machine
slows everything down, each run also times a reference in a fresh process — ``import gradio`` (about
1.6 s on a quiet 2-core machine) — so runs on busy and quiet machines can be compared by their ratio.
Run: ``python -m bench.cold_start [--runs 5] [--workers 1]`` (more workers need ``BOT_CHROMA_URL``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_result
from bench.http_load import start_server, torch_loaded
from bench.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def start_to_ready(env: dict[str, str]) -> tuple[float, float, bool]:
    """Seconds from ``python app.py`` to ``/api/health`` ready and to the chat page served; torch loaded?"""
    server, ready_s, page_s = start_server(free_port(), env)
    uses_torch = torch_loaded(server.pid)
    server.terminate()
    server.wait(timeout=60)
    return ready_s, page_s, uses_torch


def reference_import() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gradio"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bot-cold-") as scratch:
        env = {**os.environ, "BOT_INDEX_DIR": os.environ.get("BOT_INDEX_DIR", f"{scratch}/index"),
               "BOT_DATA_DIR": f"{scratch}/data", "BOT_WORKERS": str(args.workers)}  # fmt: skip
        subprocess.run([sys.executable, "-m", "bot", "index"], cwd=ROOT, env=env, check=True, capture_output=True)
        runs = []
        for _ in range(args.runs):
            ready, page, uses_torch = start_to_ready(env)
            reference = reference_import()
            runs.append({"ready_s": round(ready, 2), "page_s": round(page, 2), "import_gradio_s": round(reference, 2),
                         "torch_loaded": uses_torch,
                         "load_average_1m": round(os.getloadavg()[0], 2)})  # fmt: skip
            print(runs[-1], flush=True)
    ready = statistics.median(r["ready_s"] for r in runs)
    page = statistics.median(r["page_s"] for r in runs)
    reference = statistics.median(r["import_gradio_s"] for r in runs)
    result = {
        "workers": args.workers,
        "runs": runs,
        "median_ready_s": round(ready, 2),
        "median_page_s": round(page, 2),
        "median_import_gradio_s": round(reference, 2),
        "ready_in_quiet_machine_gradio_imports": round(ready / reference, 2),
        "estimated_quiet_ready_s": round(ready / reference * 1.6, 2),
        "torch_loaded_in_any_run": any(r["torch_loaded"] for r in runs),
    }
    path = write_result("cold_start", result)
    print(f"start to ready: median {ready:.2f} s (= {ready / reference:.1f} × `import gradio` in the same runs, "
          f"≈ {ready / reference * 1.6:.1f} s where that import takes 1.6 s); chat page served at {page:.2f} s  "
          f"torch loaded: {result['torch_loaded_in_any_run']}  → {path}")  # fmt: skip


if __name__ == "__main__":
    main()
