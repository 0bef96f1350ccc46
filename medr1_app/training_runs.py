"""Fine-tuning runs launched from the app: the ``medr1-train grpo`` CLI in a child process.

Running the training kit's own CLI (not a copy of it) guarantees the tab uses the same rewards, data
loaders and trainer as ``train/``. The run's settings are a recipe YAML written into its folder
(``recipe.yaml``, keys checked against the CLI's dataclasses by ``train.config.write_recipe``) and
passed with ``--config``, so the run can be repeated from a shell with the same file. A separate
process means a crash or an out-of-memory kill cannot take the app down, and the GPU memory is
returned when it ends. The app follows the run through the files the CLI writes anyway:
``metrics.jsonl`` for curves and samples, ``checkpoint-N/`` for resuming, the final adapter and
``medr1_card.json`` for the result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.callbacks import read_metrics
from train.config import write_recipe

LOG_NAME = "train.log"


RECIPE_NAME = "recipe.yaml"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process that trains or builds a model: this one's, plus ``extra``.

    Without a GPU, one torch thread (``OMP_NUM_THREADS=1``) unless the environment already sets it. The
    models that train on a CPU (tiny, demo) multiply small matrices, where a second thread gains little
    and, on a machine doing other work, loses a lot: a demo GRPO step took 0.91 s with one thread and
    8.5 s with two on a 2-core machine under other load (docs/benchmarks.md, "The Fine-tune demo").
    """
    import torch

    env = {**os.environ, **(extra or {}), "PYTHONUNBUFFERED": "1"}
    if not torch.cuda.is_available():
        env.setdefault("OMP_NUM_THREADS", "1")
    return env


def grpo_command(recipe: Path, resume: bool = False) -> list[str]:
    """The exact command line a run executes: the kit's own CLI on the run's recipe."""
    command = [sys.executable, "-m", "train.cli", "grpo", "--config", str(recipe)]
    return command + (["--resume_from_checkpoint", "auto"] if resume else [])


@dataclass
class RunStatus:
    """A snapshot for the UI."""

    state: str  # idle | running | stopping | finished | stopped | failed
    message: str
    step: int = 0
    max_steps: int = 0
    eta_seconds: float | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    adapter_dir: str | None = None
    log_tail: str = ""


class TrainingRun:
    """One ``medr1-train grpo`` child process on a recipe (a dict of CLI options), and the files it writes."""

    def __init__(self, recipe: dict[str, Any], env: dict[str, str] | None = None):
        if not recipe.get("output_dir"):
            raise ValueError("A run's recipe needs an output_dir.")
        self.recipe = dict(recipe)
        self.output_dir = Path(recipe["output_dir"])
        self.env = env
        self.process: subprocess.Popen | None = None
        self.stop_requested = False

    @property
    def recipe_path(self) -> Path:
        return self.output_dir / RECIPE_NAME

    @property
    def max_steps(self) -> int:
        return int(self.recipe.get("max_steps") or 0)

    @property
    def log_path(self) -> Path:
        return self.output_dir / LOG_NAME

    def start(self, resume: bool = False) -> None:
        if self.running:
            raise RuntimeError("This run is already going.")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.stop_requested = False
        write_recipe(self.recipe_path, self.recipe)
        log = self.log_path.open("a", encoding="utf-8")
        env = child_env(self.env)
        # A session of its own: a signal meant for the run never reaches the app, and vice versa.
        self.process = subprocess.Popen(
            grpo_command(self.recipe_path, resume=resume),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def request_stop(self) -> None:
        """Ask the run to stop after the current step (it then saves its adapter); returns at once."""
        if self.running:
            self.stop_requested = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 120.0) -> None:
        """Ask the run to stop after the current step and save its adapter; kill it if it will not."""
        if not self.running:
            return
        self.request_stop()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait(self, timeout: float | None = None) -> int | None:
        return None if self.process is None else self.process.wait(timeout)

    def status(self) -> RunStatus:
        metrics = read_metrics(self.output_dir / "metrics.jsonl")
        steps = [r for r in metrics if "reward" in r or "loss" in r]
        step = steps[-1]["step"] if steps else 0
        max_steps = next((r["max_steps"] for r in reversed(metrics) if r.get("max_steps")), self.max_steps)
        adapter = str(self.output_dir) if (self.output_dir / "adapter_config.json").is_file() else None
        eta = _eta(steps, max_steps)
        tail = _tail(self.log_path)
        if self.process is None:
            state, message = "idle", "Not started."
        elif self.running:
            state = "stopping" if self.stop_requested else "running"
            message = f"Step {step} of {max_steps}" + (" (stopping after this step)" if self.stop_requested else "")
        else:
            code = self.process.returncode
            if code == 0 and self.stop_requested:
                state, message = "stopped", f"Stopped at step {step}; the adapter trained so far is saved."
            elif code == 0:
                state, message = "finished", f"Finished {step} steps; the adapter is saved."
            else:
                state, message = "failed", _failure(code, tail)
        return RunStatus(state, message, step, max_steps, eta, metrics, adapter, tail)


def _eta(steps: list[dict[str, Any]], max_steps: int) -> float | None:
    timed = [r for r in steps if "time" in r]
    if len(timed) < 2 or not max_steps:
        return None
    per_step = (timed[-1]["time"] - timed[0]["time"]) / max(1, timed[-1]["step"] - timed[0]["step"])
    return max(0.0, per_step * (max_steps - timed[-1]["step"]))


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _failure(code: int, tail: str) -> str:
    if code in (-signal.SIGKILL, 137):
        return (
            "The training process was killed (SIGKILL), most often by the system running out of memory. "
            "Lower the batch size, num_generations or max_pixels, then Resume from the last checkpoint."
        )
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "no output")
    return f"Training failed (exit code {code}): {last}"


class RunManager:
    """At most one run at a time for the whole app: runs share the GPU with each other and with Ask."""

    def __init__(self, runs_dir: str | Path):
        self.runs_dir = Path(runs_dir)
        self.current: TrainingRun | None = None
        self._lock = threading.Lock()

    def new_run_dir(self, name: str = "run") -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.runs_dir / f"{name}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = self.runs_dir / f"{name}-{stamp}-{suffix}"
        return path

    def start(self, recipe: dict[str, Any], resume: bool = False, env: dict[str, str] | None = None) -> TrainingRun:
        with self._lock:
            if self.current is not None and self.current.running:
                raise RuntimeError("A training run is already going: stop it first (one run at a time).")
            run = TrainingRun(recipe, env=env)
            run.start(resume=resume)
            self.current = run
            return run

    def adapters(self) -> list[Path]:
        """Finished (or stopped) runs whose adapter can be loaded, newest first."""
        if not self.runs_dir.is_dir():
            return []
        found = [p.parent for p in self.runs_dir.glob("*/adapter_config.json")]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


# Parameter counts of the registry's real models (their configs are not on disk until downloaded).
KNOWN_SIZES = {
    "Qwen/Qwen2-VL-2B-Instruct": 2.2e9,
    "Qwen/Qwen2.5-VL-3B-Instruct": 3.8e9,
    "Qwen/Qwen2-VL-7B-Instruct": 8.3e9,
}


def parameter_count(model: str) -> float | None:
    """Parameters of a local checkpoint (from its weights' headers) or of a known hub model."""
    path = Path(model)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if files:
        from safetensors import safe_open

        total = 0
        for file in files:
            with safe_open(str(file), "pt") as handle:
                total += sum(_numel(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118
        return float(total)
    return KNOWN_SIZES.get(model)


def _numel(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def check_hardware(model: str, cuda_available: bool | None = None) -> tuple[bool, str]:
    """Whether this machine can run LoRA-GRPO on ``model``, and what the run will need (a rough guide)."""
    import torch

    from train.demo_model import is_demo_model
    from train.tiny_model import is_tiny_random

    if Path(model).is_dir() and is_demo_model(model):
        return (
            True,
            "Demo model (0.5 M parameters, synthetic task only): trains on this CPU. With the demo's settings the "
            "reward rises within minutes; the result answers the synthetic task's questions, nothing else.",
        )
    if Path(model).is_dir() and is_tiny_random(model):
        return (
            True,
            "Tiny random model: runs on the CPU in seconds per step (for trying the tab; it learns nothing useful).",
        )
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    params = parameter_count(model)
    need = f"about {params * 2 / 1024**3 + 8:.0f} GB of GPU memory" if params else "a GPU with 24 GB or more"
    if not cuda:
        return False, (
            f"No GPU found. LoRA-GRPO on {model} needs {need} (bf16 weights, sampled answers, activations); "
            "on a CPU one step would take hours. Run the app on a GPU machine, or pick the tiny model to try the tab."
        )
    free, total = torch.cuda.mem_get_info()
    return True, f"GPU found ({total / 1024**3:.0f} GB, {free / 1024**3:.0f} GB free). This run needs {need}."
