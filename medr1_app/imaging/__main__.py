"""``python -m medr1_app.imaging``: inspect a DICOM/image file or export a frame as lossless PNG.

Useful for turning PACS exports into the PNGs a training set needs, through exactly the rendering
the app shows. Prints technical metadata only; errors are the clinician-readable messages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import ImagingError, open_study, to_png_bytes


def _window(text: str | None) -> str | tuple[float, float] | None:
    if text is None or "," not in text:
        return text
    centre, width = text.split(",", 1)
    return float(centre), float(width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medr1_app.imaging", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="print the technical (PHI-free) summary as JSON")
    info.add_argument("file", type=Path)
    png = commands.add_parser("png", help="export one frame as lossless PNG")
    png.add_argument("file", type=Path)
    png.add_argument("out", type=Path)
    png.add_argument("--frame", type=int, default=0)
    png.add_argument("--window", help="preset name (e.g. lung, auto) or CENTRE,WIDTH")
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
            image = study.render(args.frame, _window(args.window))
            args.out.write_bytes(to_png_bytes(image))
            for warning in study.warnings:
                print(f"warning: {warning}", file=sys.stderr)
    except (ImagingError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
