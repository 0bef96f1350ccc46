"""``medr1-data``: tools that look at datasets before any model does (``audit`` for now)."""

from __future__ import annotations

from train.cli import dispatch

COMMANDS = {
    "audit": ("train.audit", "train/test overlap by image path, pixels and question text; --resplit OUT"),
}


def main(argv: list[str] | None = None) -> None:
    dispatch("medr1-data", COMMANDS, argv)


if __name__ == "__main__":
    main()
