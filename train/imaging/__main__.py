"""``python -m train.imaging``: inspect a DICOM/image file, a DICOM series or a NIfTI volume; export a frame as PNG.

Useful for turning PACS exports into PNGs through exactly the rendering the app shows, and, with
``--max-pixels``, for seeing the picture a model receives; ``series`` lists what a ZIP, folder or
NIfTI holds, with the index a dataset record's ``"series"`` takes. Prints technical metadata only;
errors are the clinician-readable messages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import ImagingError
from .files import list_series, open_study, to_png_bytes
from .model_input import MEDR1_MAX_PIXELS, MEDR1_MIN_PIXELS, PixelBounds, fit_to_model
from .window import parse_window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.imaging", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="print the technical (PHI-free) summary as JSON")
    info.add_argument("file", type=Path, help="a file, a ZIP or folder of DICOM files, or a .nii/.nii.gz")
    listing = commands.add_parser("series", help="list the series (or 4-D volumes) a ZIP, folder or NIfTI holds")
    listing.add_argument("file", type=Path)
    png = commands.add_parser("png", help="export one frame or slice as lossless PNG")
    png.add_argument("file", type=Path)
    png.add_argument("out", type=Path)
    png.add_argument("--frame", "--slice", dest="frame", type=int, default=0, help="frame, or slice of a series")
    png.add_argument(
        "--max-pixels", type=int, help=f"resize to the model's input size under this area (Med-R1: {MEDR1_MAX_PIXELS})"
    )
    png.add_argument("--min-pixels", type=int, default=MEDR1_MIN_PIXELS)
    png.add_argument("--window", help="preset name (e.g. lung, auto) or CENTRE,WIDTH")
    for command in (info, png):
        command.add_argument("--series", help="which series (index from 'series', or UID), or a 4-D volume's index")
        command.add_argument("--view", choices=("axial", "coronal", "sagittal"), help="plane of a NIfTI volume")
    args = parser.parse_args(argv)
    try:
        if args.command == "series":
            found = list_series(args.file)
            listed = {"series": [info.as_dict() for info in found], "warnings": list(found.warnings)}
            print(json.dumps(listed, indent=2, ensure_ascii=False))
            return 0
        study = open_study(args.file, series=args.series, view=args.view)
        if args.command == "info":
            summary = {
                "kind": study.kind,
                "frames": study.num_frames,
                "metadata": study.metadata,
                "warnings": list(study.warnings),
                "default_window": study.default_window,
                "windows": list(study.window_choices),
            }
            if study.views:
                summary["views"] = list(study.views)
            print(json.dumps(summary, indent=2, default=str))
        else:
            image = study.render(args.frame, parse_window(args.window))
            if args.max_pixels:
                image = fit_to_model(image, PixelBounds(args.min_pixels, args.max_pixels), name=study.name)
            args.out.write_bytes(to_png_bytes(image))
            for warning in study.warnings:
                print(f"warning: {warning}", file=sys.stderr)
    except (ImagingError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
