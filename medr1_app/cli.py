"""``medr1-app``: start the clinician app on 127.0.0.1.

    medr1-app                       # Qwen2-VL-2B-Instruct, loaded on the first question
    medr1-app --model tiny          # built-in tiny random model: offline checks, meaningless answers
    medr1-app --model tiny-demo     # the Fine-tune demo's start model (0.5 M parameters, synthetic task)
    medr1-app --model PATH          # a local checkpoint, or a `medr1-train grpo` output (LoRA adapter)
    medr1-app --model yuxianglai117/Med-R1:VQA_CT

The app listens on loopback only unless --host says otherwise; there is no share link option, since a
public tunnel is no place for medical images.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from train.generation import FAST_MODES

from .models import ModelLoadError, builtin_models


def make_parser() -> argparse.ArgumentParser:
    keys = ", ".join(s.key for s in builtin_models())
    parser = argparse.ArgumentParser(prog="medr1-app", description=__doc__.split("\n\n")[0].strip("`: "))
    parser.add_argument(
        "--model",
        default=os.environ.get("MEDR1_MODEL", "qwen2-vl-2b"),
        help=f"tiny, tiny-demo, a local folder (checkpoint or LoRA adapter), owner/repo[:folder], or one of: {keys}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--runs-dir", default="runs", help="folder scanned for fine-tuned adapters (default: runs)")
    parser.add_argument("--cache-dir", default=None, help="where the tiny model is built (default: ~/.cache/medr1)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default=None, help="bfloat16, float16 or float32 (default: bf16 on GPU, else fp32)")
    parser.add_argument(
        "--fast-generation",
        choices=FAST_MODES,
        default=os.environ.get("MEDR1_FAST_GENERATION", "off"),
        help="static KV cache with a compiled decode step: auto (on CUDA), on, off (default: off; not yet "
        "measured on a GPU, see docs/benchmarks.md)",
    )
    parser.add_argument("--max-file-size", default="512mb", help="largest upload accepted (default: 512mb)")
    parser.add_argument("--preload", action="store_true", help="load the model at start-up instead of first use")
    parser.add_argument("--no-add-models", action="store_true", help="hide the 'Add a model' box")
    parser.add_argument("--ask-only", action="store_true", help="only the Ask tab (no Fine-tune, no Evaluate)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # HTTP client logs carry URLs (Gradio's upload paths hold file names): keep them out of the log.
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from .app import AppConfig, build_app, default_tabs, launch_kwargs

    config = AppConfig(
        model=args.model,
        runs_dir=args.runs_dir,
        cache_dir=args.cache_dir,
        device=args.device,
        dtype=args.dtype,
        fast_generation=args.fast_generation,
        allow_add_models=not args.no_add_models,
        max_file_size=args.max_file_size,
        public=args.host not in ("127.0.0.1", "localhost", "::1"),
    )
    try:
        demo = build_app(config, extra_tabs=[] if args.ask_only else default_tabs())
        ctx = demo.medr1_context
        if args.preload:
            ctx.manager.get(ctx.default_model)
    except ModelLoadError as exc:
        print(f"medr1-app: {exc}", file=sys.stderr)
        return 2
    spec = ctx.registry.get(ctx.default_model)
    print(f"medr1-app: model {spec.label}")
    if spec.demo:
        print("medr1-app: DEMO MODEL (0.5 M parameters, synthetic task only): meaningless on real images.")
    elif spec.tiny:
        print("medr1-app: TINY RANDOM MODEL: its answers are meaningless (offline checks only).")
    print("medr1-app: research use only; not for clinical decisions.")
    demo.launch(**launch_kwargs(config, server_name=args.host, server_port=args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
