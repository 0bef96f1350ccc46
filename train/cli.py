"""``medr1-train``: one entry point for training (grpo, sft) and the offline helpers (tiny-model, synthetic-data)."""

from __future__ import annotations

import sys

COMMANDS = {
    "grpo": ("train.grpo", "GRPO fine-tuning (Med-R1), LoRA by default"),
    "sft": ("train.sft", "supervised fine-tuning baseline on the answers, LoRA by default"),
    "tiny-model": ("train.tiny_model", "build a tiny random Qwen2-VL offline (for tests and demos)"),
    "synthetic-data": ("train.synthetic", "write the synthetic visual multiple-choice task"),
}


def usage() -> str:
    lines = ["usage: medr1-train COMMAND [options]   (medr1-train COMMAND --help for the options)", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.exit(f"medr1-train: unknown command {command!r}.\n\n{usage()}")
    import importlib

    importlib.import_module(COMMANDS[command][0]).main(rest)


if __name__ == "__main__":
    main()
