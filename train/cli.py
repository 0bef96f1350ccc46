"""``medr1-train``: one entry point for training (grpo, sft) and the offline helpers (tiny-model, synthetic-data)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping

COMMANDS = {
    "grpo": ("train.grpo", "GRPO fine-tuning (Med-R1), LoRA by default"),
    "sft": ("train.sft", "supervised fine-tuning baseline on the answers, LoRA by default"),
    "tiny-model": ("train.tiny_model", "build a tiny random Qwen2-VL offline (for tests and demos)"),
    "synthetic-data": ("train.synthetic", "write the synthetic visual multiple-choice task"),
    "demo": ("train.demo_model", "build the Fine-tune demo: start model and questions (offline, about a minute)"),
}


def usage(prog: str = "medr1-train", commands: Mapping[str, tuple[str, str]] = COMMANDS) -> str:
    lines = [f"usage: {prog} COMMAND [options]   ({prog} COMMAND --help for the options)", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in commands.items()]
    return "\n".join(lines)


def dispatch(prog: str, commands: Mapping[str, tuple[str, str]], argv: list[str] | None = None) -> None:
    """Run ``commands[argv[0]]``'s module ``main`` with the rest of the arguments (modules imported on use)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(prog, commands))
        return
    command, rest = argv[0], argv[1:]
    if command not in commands:
        sys.exit(f"{prog}: unknown command {command!r}.\n\n{usage(prog, commands)}")
    importlib.import_module(commands[command][0]).main(rest)


def main(argv: list[str] | None = None) -> None:
    dispatch("medr1-train", COMMANDS, argv)


if __name__ == "__main__":
    main()
