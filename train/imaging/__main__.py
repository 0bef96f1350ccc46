"""``python -m train.imaging``: inspect a DICOM/image file or export a frame as lossless PNG.

Useful for turning PACS exports into PNGs through exactly the rendering the app shows, and, with
``--max-pixels``, for seeing the picture a model receives. Prints technical metadata only; errors are
the clinician-readable messages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import ImagingError
from .files import open_study, to_png_bytes
from .model_input import MEDR1_MAX_PIXELS, MEDR1_MIN_PIXELS, PixelBounds, fit_to_model
from .window import parse_window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.imaging", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="print the technical (PHI-free) summary as JSON")
    info.add_argument("file", type=Path)
    png = commands.add_parser("png", help="export one frame as lossless PNG")
    png.add_argument("file", type=Path)
    png.add_argument("out", type=Path)
    png.add_argument("--frame", type=int, default=0)
    png.add_argument("--window", help="preset name (e.g. lung, auto) or CENTRE,WIDTH")
    png.add_argument(
        "--max-pixels", type=int, help=f"resize to the model's input size under this area (Med-R1: {MEDR1_MAX_PIXELS})"
    )
    png.add_argument("--min-pixels", type=int, default=MEDR1_MIN_PIXELS)
    args = parser.parse_args(argv)
    try:
        study = open_study(args.file)
        if args.command == "info":
            summary = {
                "kind": study.kind,
                "frames": study.num_frames,
                "metadata": study.metadata,
                "warnings": list(study.warnings),
                "default_window": study.default_window,
                "windows": list(study.window_choices),
            }
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
