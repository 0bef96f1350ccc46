"""Load test: N concurrent clients asking the app (tiny model) on loopback for a fixed time.

Run: ``python benchmarks/app_load.py`` (defaults: 8 clients, 60 s, ``medr1-app --model tiny`` started
as a separate process so its memory can be read from ``/proc``).

What it checks and prints:

- **errors**: any exception or ``{"error": ...}`` result;
- **ownership**: each answer must belong to its own request. Every request carries a unique question
  and seed; the answer's record must echo them, and its raw text must equal the text the same
  (question, seed, image) produced when asked alone before the load started (a reference pass), so a
  stream crossed between users, or a stop/seed leaking from one request into another, shows up;
- **memory**: the server's resident memory after warm-up, its peak and at the end;
- throughput and latency (queue wait included: one GPU slot serves everyone in turn).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pydicom.examples
from PIL import Image

OPTIONS = ("CT", "MRI", "X-ray", "Ultrasound")
RESULT = 8  # /ask's ninth output is the answer record (see medr1_app.ui_ask)


def ask_args(question: str, seed: int, max_new_tokens: int) -> list:
    """Positional ``/ask`` arguments (see ``medr1_app.ui_ask``): sampled, so each seed gives its own text."""
    return [None, "default", 0, 1, 0, question, 4, *OPTIONS, "", "", 1.0, 1.0, max_new_tokens, "think", seed, 1]


def rss_of(pid: int) -> float:
    """Resident memory of a process in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_images(folder: Path) -> list[Path]:
    """One DICOM (pydicom's CT) and one PNG: clients alternate between them."""
    png = folder / "gradient.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (120, 1))).save(png)
    return [Path(pydicom.examples.get_path("ct")), png]


@dataclass
class LoadReport:
    clients: int
    seconds: float
    answers: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)

    def rss_summary(self) -> tuple[float, float, float]:
        """(after warm-up, peak, end) in MiB."""
        values = [v for _, v in self.rss]
        if not values:
            return (float("nan"),) * 3
        return values[0], max(values), values[-1]

    def lines(self) -> list[str]:
        start, peak, end = self.rss_summary()
        lat = sorted(self.latencies) or [float("nan")]
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        return [
            f"clients: {self.clients}, duration: {self.seconds:.1f} s",
            f"answers: {self.answers} ({self.answers / self.seconds:.2f}/s), errors: {len(self.errors)}, "
            f"answers not matching their own request: {len(self.mismatches)}",
            f"latency per answer (queue included): median {statistics.median(lat):.2f} s, p95 {p95:.2f} s, "
            f"max {lat[-1]:.2f} s",
            f"server RSS: {start:.0f} MiB after warm-up, peak {peak:.0f} MiB, end {end:.0f} MiB "
            f"(change {end - start:+.0f} MiB)",
            "server RSS every 10 s (MiB): " + ", ".join(f"{v:.0f}" for v in self.rss_trend(10.0)),
        ]

    def rss_trend(self, every: float) -> list[float]:
        """The first sample at or after each multiple of ``every`` seconds, then the last sample."""
        trend, mark = [], 0.0
        for at, value in self.rss:
            if at >= mark:
                trend.append(value)
                mark += every
        if self.rss and (not trend or self.rss[-1][1] != trend[-1]):
            trend.append(self.rss[-1][1])
        return trend


def reference_pass(url: str, images: list[Path], pool: list[tuple[str, int]], max_new_tokens: int) -> dict:
    """Each (image, question, seed) asked alone: the text every later answer must reproduce."""
    from gradio_client import Client, handle_file

    expected = {}
    for index, image in enumerate(images):
        client = Client(url, verbose=False)
        client.predict([handle_file(str(image))], api_name="/open")
        for question, seed in pool:
            result = client.predict(*ask_args(question, seed, max_new_tokens), api_name="/ask")[RESULT]
            if "error" in result:
                raise RuntimeError(f"reference pass failed: {result['error']}")
            expected[(index, question, seed)] = result["samples"][0]["raw_output"]
    return expected


def run_load(
    url: str,
    clients: int,
    seconds: float,
    images: list[Path],
    pool: list[tuple[str, int]],
    expected: dict,
    max_new_tokens: int,
    rss: Callable[[], float] | None = None,
) -> LoadReport:
    """``clients`` threads, each with its own session, asking questions from ``pool`` until time is up."""
    from gradio_client import Client, handle_file

    report = LoadReport(clients, seconds)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    done = threading.Event()

    def sample_memory() -> None:
        start = time.monotonic()
        while not done.is_set():
            if rss is not None:
                report.rss.append((time.monotonic() - start, rss()))
            done.wait(0.5)

    def worker(number: int) -> None:
        rng = random.Random(number)
        image_index = number % len(images)
        try:
            client = Client(url, verbose=False)
            client.predict([handle_file(str(images[image_index]))], api_name="/open")
        except Exception as exc:
            with lock:
                report.errors.append(f"client {number} could not open its image: {exc!r}")
            return
        while time.monotonic() < stop_at:
            question, seed = rng.choice(pool)
            started = time.monotonic()
            try:
                result = client.predict(*ask_args(question, seed, max_new_tokens), api_name="/ask")[RESULT]
            except Exception as exc:
                with lock:
                    report.errors.append(f"client {number}: {exc!r}")
                continue
            elapsed = time.monotonic() - started
            with lock:
                if not isinstance(result, dict) or "error" in result:
                    report.errors.append(f"client {number}: {result!r}"[:300])
                    continue
                report.answers += 1
                report.latencies.append(elapsed)
                own = (
                    result["question"] == question
                    and result["settings"]["seed"] == seed
                    and (result["image"]["kind"] == "dicom") == (image_index == 0)
                    and result["samples"][0]["raw_output"] == expected[(image_index, question, seed)]
                )
                if not own:
                    report.mismatches.append(f"client {number}: asked {question!r} seed {seed}")

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - started
    done.set()
    sampler.join()
    return report


def question_pool(size: int) -> list[tuple[str, int]]:
    return [(f"Question {n}: what imaging technique was used to obtain this image?", 1000 + n) for n in range(size)]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"medr1-app exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"medr1-app did not answer at {url} within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--port", type=int, default=7891)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--pool", type=int, default=12, help="distinct (question, seed) pairs")
    args = parser.parse_args(argv)

    url = f"http://127.0.0.1:{args.port}/"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "medr1_app.cli", "--model", args.model, "--port", str(args.port)]
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until_up(url, server)
            images = make_images(Path(folder))
            pool = question_pool(args.pool)
            t0 = time.monotonic()
            expected = reference_pass(url, images, pool, args.max_new_tokens)
            print(f"reference pass: {len(expected)} answers asked one at a time in {time.monotonic() - t0:.1f} s")
            report = run_load(
                url, args.clients, args.duration, images, pool, expected, args.max_new_tokens,
                rss=lambda: rss_of(server.pid),
            )  # fmt: skip
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    for line in report.lines():
        print(line)
    for problem in itertools.islice(itertools.chain(report.errors, report.mismatches), 5):
        print("  ", problem)
    return 0 if not report.errors and not report.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
