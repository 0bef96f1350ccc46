"""Imaging benchmark: decode + window latency and the memory cost of showing one frame of a huge file.

Run: ``python benchmarks/bench_imaging.py`` (about a minute; writes a 1 GiB temporary file).

1. A 512 x 512 16-bit CT slice (signed, rescaled to HU): median time of ``render`` with the frame
   cache dropped, i.e. decode + modality LUT + window + RGB (goal: under 20 ms); also open + render.
2. Frame 15 of a 30-frame compressed series: pydicom's bundled JPEG baseline ultrasound clip and a
   generated 512 x 512 16-bit CT series in JPEG-LS and RLE.
3. A 1 GiB uncompressed multi-frame CT opened to show one frame, in a fresh process: peak resident
   memory while opening and rendering (Linux: VmHWM, reset just before through /proc/self/clear_refs),
   its increase over the resident memory before opening, and the Python-tracked allocation peak
   (goal: well under the file's size). ``--naive`` also measures ``dcmread(...).pixel_array``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pydicom
import pydicom.examples
from pydicom.uid import JPEGLSLossless, RLELossless

from train.imaging import open_study
from train.imaging.synthetic import ct_phantom, make_dataset, save, write_large_multiframe


def median_ms(function, repeat: int) -> tuple[float, float]:
    """Median and 90th percentile in milliseconds, after one warm-up call."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def cold_render(study, frame: int, window=None):
    def run():
        study.drop_cache()
        study.render(frame, window)

    return run


def bench_ct_slice(tmp: Path, repeat: int) -> None:
    hu = ct_phantom(512, 512)
    ds = make_dataset(hu, modality="CT", RescaleSlope=1, RescaleIntercept=0, BodyPartExamined="HEAD")
    path = save(ds, tmp / "ct512.dcm")
    study = open_study(path)
    print(f"CT slice 512x512 int16 ({path.stat().st_size / 1e6:.2f} MB, uncompressed, brain window):")
    med, p90 = median_ms(cold_render(study, 0), repeat)
    print(f"  decode+window (render, cache dropped): median {med:.2f} ms, p90 {p90:.2f} ms  [goal < 20 ms]")
    med, p90 = median_ms(lambda: open_study(path).render(0, "lung"), repeat)
    print(f"  open_study + render (header parse, validation, decode, window): median {med:.2f} ms, p90 {p90:.2f} ms")
    med, p90 = median_ms(lambda: study.render(0, (40 + np.random.randint(10), 400)), repeat)
    print(f"  re-window only (frame cached, e.g. a slider move): median {med:.2f} ms, p90 {p90:.2f} ms")


def bench_series(tmp: Path, repeat: int) -> None:
    path = pydicom.examples.get_path("ybr_color")
    study = open_study(path)
    print(f"Frame 15 of a 30-frame compressed series ({study.metadata['transfer_syntax']}, {study.size[0]}x"
          f"{study.size[1]} RGB, pydicom example '{Path(path).name}'):")  # fmt: skip
    med, p90 = median_ms(cold_render(study, 15), repeat)
    print(f"  decode+convert (render(15), cache dropped): median {med:.2f} ms, p90 {p90:.2f} ms")
    med, p90 = median_ms(lambda: open_study(path).render(15), repeat)
    print(f"  open_study + render(15): median {med:.2f} ms, p90 {p90:.2f} ms")
    frames = np.stack([ct_phantom(512, 512, seed=i) for i in range(30)])
    for syntax in (JPEGLSLossless, RLELossless):
        ds = make_dataset(frames, modality="CT", multi_frame=True, RescaleSlope=1, RescaleIntercept=0,
                          WindowCenter=40, WindowWidth=400, transfer_syntax=syntax)  # fmt: skip
        series = save(ds, tmp / f"series-{syntax.name[:6]}.dcm")
        study = open_study(series)
        med, p90 = median_ms(cold_render(study, 15), repeat)
        print(f"  generated 30 x 512x512 int16 CT, {study.metadata['transfer_syntax']} "
              f"({series.stat().st_size / 1e6:.1f} MB): render(15) median {med:.2f} ms, p90 {p90:.2f} ms")  # fmt: skip


_CHILD = r"""
import json, sys, time, tracemalloc
import numpy as np
import pydicom
from train.imaging import open_study


def status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


path, frame, naive = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
before = status_kib("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) so it covers only what follows
    f.write("5")
tracemalloc.start()
start = time.perf_counter()
if naive:
    image = pydicom.dcmread(path).pixel_array[frame]
else:
    study = open_study(path)
    image = study.render(frame)
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"before_kb": before, "after_kb": status_kib("VmHWM"), "traced": traced, "seconds": seconds}))
"""


def bench_large(tmp: Path, frames: int, size: int, naive: bool) -> None:
    path = tmp / "large-multiframe.dcm"
    start = time.perf_counter()
    write_large_multiframe(path, frames=frames, rows=size, columns=size)
    file_mb = path.stat().st_size / 2**20
    written = time.perf_counter() - start
    print(
        f"Large multi-frame file: {frames} x {size}x{size} int16 = {file_mb:,.0f} MiB (written in {written:.1f} s); "
        f"showing frame {frames // 2} in a fresh process:"
    )
    runs = [("medr1 open_study + render", False)] + ([("naive dcmread().pixel_array", True)] if naive else [])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for label, flag in runs:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(frames // 2), "1" if flag else "0"],
            capture_output=True, text=True, env=env, check=True,
        ).stdout  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        peak, base = result["after_kb"] / 1024, result["before_kb"] / 1024
        traced, ms = result["traced"] / 2**20, result["seconds"] * 1000
        print(
            f"  {label}: peak RSS {peak:,.1f} MiB (RSS before opening {base:,.1f} MiB, increase "
            f"{peak - base:,.1f} MiB = {100 * (peak - base) / file_mb:.2f} % of the file); "
            f"Python-tracked peak {traced:,.1f} MiB; {ms:,.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50, help="timed repetitions per measurement")
    parser.add_argument("--large-frames", type=int, default=512, help="frames of the large file (1024^2 each)")
    parser.add_argument("--large-size", type=int, default=1024)
    parser.add_argument("--naive", action="store_true", help="also measure reading the whole large file")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, pydicom {pydicom.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPU(s): {platform.processor() or platform.machine()}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="medr1-bench-") as tmp:
        bench_ct_slice(Path(tmp), args.repeat)
        bench_series(Path(tmp), args.repeat)
        if not args.skip_large:
            bench_large(Path(tmp), args.large_frames, args.large_size, args.naive)


if __name__ == "__main__":
    main()
