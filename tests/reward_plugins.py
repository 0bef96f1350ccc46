"""Rewards registered by a test module, loaded into training with ``--reward_modules reward_plugins``.

They prove the registry works from outside ``train`` and give the random tiny model a reward with
variance (Med-R1's format/accuracy rewards are all zero for a model that never writes the tags).
The ``seen`` reward writes which questions each process scored, for the data-parallel test.
"""

from __future__ import annotations

import json
import os

from train.rewards import completion_text, register_reward


@register_reward("letter_a")
def letter_a_reward(completions, **kwargs):
    """Fraction of characters that are 'a': varies between samples, so GRPO gets a gradient."""
    texts = [completion_text(c) for c in completions]
    return [t.count("a") / max(1, len(t)) for t in texts]


@register_reward("seen")
def seen_reward(completions, id, **kwargs):
    """Log the question ids this process scored to $MEDR1_SEEN_DIR/rank<N>.jsonl; reward 0."""
    folder = os.environ.get("MEDR1_SEEN_DIR")
    if folder:
        rank = os.environ.get("RANK", "0")
        with open(os.path.join(folder, f"rank{rank}.jsonl"), "a") as handle:
            handle.write(json.dumps(list(id)) + "\n")
    return [0.0] * len(completions)


@register_reward("crash")
def crash_reward(completions, trainer_state=None, **kwargs):
    """Kill the process (exit 137, as the OOM killer would) once $MEDR1_CRASH_AT_STEP steps are done."""
    crash_at = os.environ.get("MEDR1_CRASH_AT_STEP")
    if crash_at and trainer_state is not None and trainer_state.global_step >= int(crash_at):
        os._exit(137)
    return [0.0] * len(completions)
