"""Series and volume benchmark: a 300-slice 512 x 512 CT as a ZIP of DICOM files and as NIfTI.

Run: ``python benchmarks/bench_series.py`` (a few minutes, most of it writing the test files; about
0.7 GB of temporary files).

For each source, in a fresh process (so imports and earlier allocations do not count):

1. **First slice shown**: ``open_study`` (for the ZIP: every entry's header read in place, grouped,
   ordered, checked; for .nii.gz: inflated into an anonymous temporary file) plus ``model_picture`` of the
   middle slice, the picture the viewer shows (goal: under 2 s).
2. **Per slice change**: ``model_picture`` of another slice (decode, window, resize to the model's input
   size), slices not shown before, scrolling and jumping (goal: under 100 ms).
3. **Peak memory**: the peak resident set (Linux VmHWM, reset through /proc/self/clear_refs just before
   opening) minus the resident set before opening, and the Python-tracked peak (goal: under a quarter of
   the series' uncompressed pixel data).

The NIfTI volume also gets its sagittal reformat timed (each sagittal slice reads the whole volume, plane
by plane).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from train.imaging.synthetic import ct_phantom, ct_series, write_nifti  # noqa: E402

_CHILD = r"""
import json, random, statistics, sys, time, tracemalloc
started = time.perf_counter()
import nibabel  # imported on first use by train.imaging.nifti: a one-off cost, measured apart
from train.imaging import model_picture, open_study
imports = time.perf_counter() - started


def status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


path, view = sys.argv[1], sys.argv[2] or None
before = status_kib("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) so it covers only what follows
    f.write("5")
tracemalloc.start()
start = time.perf_counter()
study = open_study(path)
opened = time.perf_counter() - start
middle = study.num_frames // 2
model_picture(study, middle)
first = time.perf_counter() - start
rng = random.Random(0)
scroll = [i for i in range(middle + 1, middle + 21) if i < study.num_frames]
rest = [i for i in range(study.num_frames) if i not in scroll and i != middle]
jumps = rng.sample(rest, min(20, len(rest)))
times = []
for index in scroll + jumps:
    t = time.perf_counter()
    model_picture(study, index)
    times.append((time.perf_counter() - t) * 1000)
result = {
    "slices": study.num_frames, "size": study.size, "open_s": opened, "first_s": first,
    "scroll_ms": statistics.median(times[: len(scroll)]), "jump_ms": statistics.median(times[len(scroll) :]),
    "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))], "max_ms": max(times),
}
result["traced_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
result["peak_rss_increase_mib"] = (status_kib("VmHWM") - before) / 1024
if view:
    before_reformat = status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    tracemalloc.reset_peak()
    t = time.perf_counter()
    other = study.reformat(view)
    model_picture(other, other.num_frames // 2)
    result["reformat_first_ms"] = (time.perf_counter() - t) * 1000
    reformat = []
    for index in range(other.num_frames // 2 + 1, min(other.num_frames, other.num_frames // 2 + 6)):
        t = time.perf_counter()
        model_picture(other, index)
        reformat.append((time.perf_counter() - t) * 1000)
    result["reformat_ms"] = statistics.median(reformat)
    result["reformat_slices"] = other.num_frames
    result["reformat_traced_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    result["reformat_rss_increase_mib"] = (status_kib("VmHWM") - before_reformat) / 1024
result["rss_before_mib"] = before / 1024
result["imports_s"] = imports
print(json.dumps(result))
"""


def measure(path: Path, view: str = "") -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), view], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"measuring {path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(label: str, path: Path, uncompressed: int, result: dict) -> None:
    mib = uncompressed / 2**20
    print(f"{label}: {path.stat().st_size / 2**20:,.0f} MiB on disk, {mib:,.0f} MiB of pixels uncompressed")
    print(
        f"  first slice shown: {result['first_s']:.2f} s (open {result['open_s']:.2f} s)  [goal < 2 s]\n"
        f"  slice change: median {result['scroll_ms']:.1f} ms scrolling, {result['jump_ms']:.1f} ms jumping, "
        f"p90 {result['p90_ms']:.1f} ms, max {result['max_ms']:.1f} ms  [goal < 100 ms]\n"
        f"  peak memory: +{result['peak_rss_increase_mib']:,.1f} MiB resident "
        f"({100 * result['peak_rss_increase_mib'] / mib:.1f} % of the pixels; before opening "
        f"{result['rss_before_mib']:,.0f} MiB, after importing the kit in {result['imports_s']:.1f} s), "
        f"Python-tracked peak {result['traced_mib']:,.1f} MiB  "
        f"[goal < {mib / 4:,.0f} MiB = 25 %]"
    )
    if "reformat_ms" in result:
        print(
            f"  sagittal reformat ({result['reformat_slices']} slices): first {result['reformat_first_ms']:.0f} ms, "
            f"then median {result['reformat_ms']:.0f} ms a slice; peak +{result['reformat_rss_increase_mib']:,.1f} "
            f"MiB resident, Python-tracked {result['reformat_traced_mib']:,.1f} MiB"
        )


def write_ct_zip(path: Path, slices: int, size: int) -> int:
    """A CT series as a deflated ZIP of single-frame files with random names, written in batches."""
    import zipfile

    from train.imaging.synthetic import to_bytes

    study_uid, series_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    rng = np.random.default_rng(0)
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for start in range(0, slices, 25):
            batch = ct_series(25, rows=size, columns=size, spacing=1.0, first_position=-150.0 + start,
                              study_uid=study_uid, series_uid=series_uid, seed=start)  # fmt: skip
            for offset, ds in enumerate(batch[: slices - start]):
                ds.InstanceNumber = start + offset + 1
                total += len(ds.PixelData)
                bundle.writestr(f"DICOM/{rng.integers(1 << 48):012x}", to_bytes(ds))  # names say nothing
    return total


def write_ct_nifti(folder: Path, slices: int, size: int) -> tuple[Path, Path, int]:
    base = ct_phantom(size, size).astype(np.int16)
    volume = np.empty((size, size, slices), np.int16)
    for k in range(slices):
        volume[:, :, k] = np.roll(base, k % 17, axis=0).T + np.int16(k % 50)
    plain = write_nifti(folder / "ct300.nii", volume, zooms=(0.7, 0.7, 1.0))
    start = time.perf_counter()
    gz = folder / "ct300.nii.gz"
    nib.save(nib.load(plain), gz)
    print(f"(wrote the .nii.gz in {time.perf_counter() - start:.0f} s)")
    return plain, gz, volume.nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--skip-nifti", action="store_true")
    args = parser.parse_args()
    print(
        f"{datetime.date.today()}, python {platform.python_version()}, pydicom {pydicom.__version__}, nibabel "
        f"{nib.__version__}, numpy {np.__version__}, {os.cpu_count()} CPU(s): "
        f"{platform.processor() or platform.machine()}"
    )
    with tempfile.TemporaryDirectory(prefix="medr1-bench-series-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        archive = folder / "ct300.zip"
        pixels = write_ct_zip(archive, args.slices, args.size)
        print(f"(wrote the ZIP in {time.perf_counter() - start:.0f} s)")
        label = f"DICOM series, {args.slices} x {args.size}x{args.size} int16 in a ZIP"
        report(label, archive, pixels, measure(archive))
        if not args.skip_nifti:
            plain, gz, voxels = write_ct_nifti(folder, args.slices, args.size)
            report(f"NIfTI .nii.gz, {args.slices} slices", gz, voxels, measure(gz))
            report(f"NIfTI .nii, {args.slices} slices", plain, voxels, measure(plain, "sagittal"))


if __name__ == "__main__":
    main()
