"""Which models the app can answer with, and loading the chosen one once, lazily.

Why a registry object and not a module-level list: the Fine-tune tab adds the adapter a run
has just written while the app is running, and tests build apps with their own model lists, so the
list lives in a :class:`ModelRegistry` that the app owns. :meth:`ModelRegistry.list_models` also scans
a runs directory, so a finished ``medr1-train grpo`` output appears in the picker without a restart.

Why one loaded model at a time (:class:`ModelManager`): a 2B model in bf16 takes ~5 GB of GPU memory;
switching models frees the previous one instead of stacking them. Loading happens on first use, under
a lock, so two users asking at once never load the same weights twice. The loaded model is the only
thing shared between users; it holds no user data.

Med-R1's released checkpoints (https://huggingface.co/yuxianglai117/Med-R1) are one repository holding
one folder per training modality or task. The model card lists the modalities and tasks but not the
folder names; the names below were seen in third-party scripts and notes that load them (``VQA_CT``,
``VQA_MRI`` at the top level; ``Qwen_2.5_3B_nothink/VQA_CT``, ``VQA_MRI``, ``VQA_X-Ray``, ``VQA_Fundus``,
``VQA_AI``, ``VQA_LG``, ``VQA_MR`` for the Qwen2.5-VL-3B release). They are marked *unverified* in the
UI. Any other folder can be named as ``yuxianglai117/Med-R1:FOLDER`` or downloaded and passed as a path.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from train.demo_model import DEMO_VERSION, DemoFiles, is_demo_model
from train.generation import use_fast_path
from train.imaging import PixelBounds
from train.model_io import (
    ModelLoadError,
    adapter_base,
    load_for_inference,
    load_processor,
    pixel_bounds,
    read_model_card,
    trained_prompt,
)
from train.protocol import DEFAULT_PROMPT
from train.tiny_model import TINY_MARKER, build_tiny_model, is_tiny_random

logger = logging.getLogger(__name__)

MEDR1_REPO = "yuxianglai117/Med-R1"
MEDR1_CARD = f"https://huggingface.co/{MEDR1_REPO}"
TINY_KEY = "tiny"
DEMO_KEY = "tiny-demo"
_UNVERIFIED = (
    "Folder name seen in third-party scripts, not in the model card: unverified. If it fails to load, "
    f"download the repository (`hf download {MEDR1_REPO}`) and pass the folder with --model PATH."
)

_MEDR1_PROMPT = " Trained with Med-R1's training prompt as published (medr1-train in train.protocol.PROMPTS)."


@dataclass(frozen=True)
class ModelSpec:
    """One choice in the model picker.

    ``source`` is a hub repository id or a local directory; ``subfolder`` a folder inside a hub
    repository (Med-R1 keeps one checkpoint per folder); ``adapter`` a local LoRA adapter directory
    applied on top of ``source``. ``prompt_style`` (think / no_think) and ``prompt`` (the text's name in
    ``train.protocol.PROMPTS``) are what the checkpoint was trained with, so it is asked the same way.
    """

    key: str
    label: str
    source: str
    kind: str  # "base", "medr1", "local", "adapter", "tiny", "demo"
    subfolder: str | None = None
    adapter: str | None = None
    prompt_style: str = "think"
    note: str = ""
    tiny: bool = False
    prompt: str = DEFAULT_PROMPT
    demo: bool = False
    """The Fine-tune demo's start model (``train.demo_model``) or an adapter trained from it: tiny, and its
    answers mean something about the synthetic task's pictures only."""
    demo_files: DemoFiles | None = field(default=None, compare=False)
    """For the demo start model: where it is built on first use, with which settings."""

    @property
    def choice(self) -> tuple[str, str]:
        """(label, key) for a ``gr.Dropdown``."""
        return (self.label, self.key)


def builtin_models() -> list[ModelSpec]:
    """The checkpoints the app knows by name: Qwen base models and Med-R1's released folders."""
    specs = [
        ModelSpec(
            "qwen2-vl-2b",
            "Qwen2-VL-2B-Instruct (base model, not medically trained)",
            "Qwen/Qwen2-VL-2B-Instruct",
            "base",
            note="The general-purpose model Med-R1 starts from.",
        ),
        ModelSpec(
            "qwen2.5-vl-3b",
            "Qwen2.5-VL-3B-Instruct (base model, not medically trained)",
            "Qwen/Qwen2.5-VL-3B-Instruct",
            "base",
            note="Base of Med-R1's Qwen2.5-VL-3B release.",
        ),
    ]
    for folder, what in (("VQA_CT", "trained on CT"), ("VQA_MRI", "trained on MRI")):
        specs.append(
            ModelSpec(
                f"medr1-2b-{folder.lower()}",
                f"Med-R1 (Qwen2-VL-2B) {what} [{folder}, unverified]",
                MEDR1_REPO,
                "medr1",
                subfolder=folder,
                note=_UNVERIFIED + _MEDR1_PROMPT,
                prompt="medr1-train",
            )
        )
    for folder, what in (
        ("VQA_CT", "trained on CT"),
        ("VQA_MRI", "trained on MRI"),
        ("VQA_X-Ray", "trained on X-ray"),
        ("VQA_Fundus", "trained on fundus photography"),
        ("VQA_AI", "trained on anatomy identification"),
        ("VQA_LG", "trained on lesion grading"),
        ("VQA_MR", "trained on modality recognition"),
    ):
        specs.append(
            ModelSpec(
                f"medr1-3b-nothink-{folder.lower()}",
                f"Med-R1 (Qwen2.5-VL-3B, no-think) {what} [{folder}, unverified]",
                MEDR1_REPO,
                "medr1",
                subfolder=f"Qwen_2.5_3B_nothink/{folder}",
                prompt_style="no_think",
                note=_UNVERIFIED + " Trained without reasoning: it answers with the answer block only." + _MEDR1_PROMPT,
                prompt="medr1-train",
            )
        )
    return specs


def default_cache_dir() -> Path:
    """Where the app keeps what it builds (the tiny model): ``$MEDR1_CACHE`` or ``~/.cache/medr1``."""
    if os.environ.get("MEDR1_CACHE"):
        return Path(os.environ["MEDR1_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "medr1"


def ensure_tiny_model(cache_dir: str | Path | None = None, arch: str = "qwen2_vl") -> Path:
    """The built-in tiny random model's directory, built on first use (about 10 s, offline).

    Built into a temporary folder and renamed, so a crash mid-build never leaves a half model that
    later loads with a confusing error.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    target = root / f"medr1-tiny-random-{arch}"
    if (target / "config.json").is_file() and is_tiny_random(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        build_tiny_model(staging / "model", arch=arch, seed=0)
        try:
            (staging / "model").rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


_demo_lock = threading.Lock()


def demo_files(cache_dir: str | Path | None = None) -> DemoFiles:
    """Where the demo start model and its questions live (built or not): ``CACHE/medr1-demo-vN``."""
    return DemoFiles((Path(cache_dir) if cache_dir else default_cache_dir()) / f"medr1-demo-v{DEMO_VERSION}")


def ensure_demo(files: DemoFiles | None = None) -> DemoFiles:
    """The demo's start model and questions, built on first use (about a minute on 2 CPU cores, offline).

    Built into a temporary folder and renamed, like the tiny model, so a crash mid-build never leaves a
    half model; one build at a time in this process (the Ask and Fine-tune tabs may both ask for it).
    """
    files = files or demo_files()
    if files.complete():
        return files
    with _demo_lock:
        if files.complete():
            return files
        files.root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-demo-", dir=files.root.parent))
        try:
            logger.info("Building the demo model (once; about a minute on a CPU) in %s", files.root)
            build_demo_in_child(staging / "demo", files)
            if files.root.exists():  # an incomplete or outdated build
                shutil.rmtree(files.root)
            try:
                (staging / "demo").rename(files.root)
            except OSError:  # another process finished first
                if not files.complete():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return files


def build_demo_in_child(folder: Path, files: DemoFiles) -> None:
    """``medr1-train demo FOLDER`` in a child process: the warm-up's threads and memory never touch the app's."""
    from .training_runs import child_env

    command = [sys.executable, "-m", "train.demo_model", str(folder), "--settings", json.dumps(asdict(files.settings))]
    done = subprocess.run(command, env=child_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no output")
        raise ModelLoadError(f"Building the demo model failed (exit code {done.returncode}): {last}")


DEMO_LABEL = "Demo model: 0.5 M parameters, synthetic task only (not a medical model)"
DEMO_NOTE = (
    "medr1's Fine-tune demo start model: a random 0.5 M-parameter Qwen2-VL taught only the answer layout "
    "(train.demo_model). It answers the synthetic task's questions at chance until GRPO trains it; about "
    "any real image its answers are meaningless."
)


def demo_spec(files: DemoFiles) -> ModelSpec:
    """The demo start model as a picker choice; its folder may not exist yet (:func:`ensure_demo` builds it)."""
    return ModelSpec(
        DEMO_KEY,
        DEMO_LABEL,
        str(files.model),
        "demo",
        prompt_style="no_think",
        note=DEMO_NOTE,
        tiny=True,
        demo=True,
        demo_files=files,
    )


def tiny_spec(path: str | Path) -> ModelSpec:
    return ModelSpec(
        TINY_KEY,
        "Tiny random model (offline checks only: answers are meaningless)",
        str(path),
        "tiny",
        note="Random weights, about 0.2 M parameters. Its answers are meaningless.",
        tiny=True,
    )


def spec_for_path(path: str | Path, key: str | None = None) -> ModelSpec:
    """Describe a local checkpoint or LoRA adapter directory (an output dir of ``medr1-train``).

    An adapter directory holds ``adapter_config.json`` (naming its base model) and, from medr1's
    trainers, ``medr1_card.json`` with the prompt (name and style) it was trained with.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise ModelLoadError(f"{path} is not a folder: pass a checkpoint or adapter directory with --model PATH.")
    card = read_model_card(path)
    prompt, style = trained_prompt(path)
    prompt, style = prompt or DEFAULT_PROMPT, style or "think"
    tiny = is_tiny_random(path) or bool(card.get("tiny_random_base"))
    demo = is_demo_model(path)
    if (path / "adapter_config.json").is_file():
        base = adapter_base(path) or card.get("base_model")
        if not base:
            raise ModelLoadError(f"{path.name}: adapter_config.json names no base model.")
        return ModelSpec(
            key or f"adapter:{path}",
            f"Fine-tuned adapter {path.name} (on {Path(base).name})"
            + (" [demo model, synthetic task]" if demo else " [tiny random base]" if tiny else ""),
            str(base),
            "adapter",
            adapter=str(path),
            prompt_style=style,
            note=f"LoRA adapter at {path}, base model {base}.",
            tiny=tiny,
            prompt=prompt,
            demo=demo,
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path} holds neither config.json (a checkpoint) nor adapter_config.json (a LoRA adapter)."
        )
    return ModelSpec(
        key or f"local:{path}",
        f"Local checkpoint {path.name}"
        + (" [demo model, synthetic task]" if demo else " [tiny random]" if tiny else ""),
        str(path),
        "demo" if demo else "tiny" if tiny else "local",
        prompt_style=style,
        note=f"Loaded from {path}.",
        tiny=tiny,
        prompt=prompt,
        demo=demo,
    )


def spec_from_argument(value: str, cache_dir: str | Path | None = None) -> ModelSpec:
    """Turn a ``--model`` value into a spec: ``tiny``, a registry key, a path, ``repo`` or ``repo:folder``."""
    value = value.strip()
    if value == TINY_KEY:
        return tiny_spec(ensure_tiny_model(cache_dir))
    if value == DEMO_KEY:
        return demo_spec(ensure_demo(demo_files(cache_dir)))
    for spec in builtin_models():
        if value in (spec.key, spec.source) and spec.subfolder is None:
            return spec
        if spec.subfolder and value == f"{spec.source}:{spec.subfolder}":
            return spec
    if Path(value).expanduser().exists():
        return spec_for_path(value)
    repo, _, folder = value.partition(":")
    if repo.count("/") != 1:
        raise ModelLoadError(
            f"{value!r} is neither a folder nor a hub repository id (owner/name): pass --model PATH, "
            "--model tiny, or one of: " + ", ".join(s.key for s in builtin_models())
        )
    return ModelSpec(
        f"hub:{value}",
        value,
        repo,
        "medr1" if repo == MEDR1_REPO else "base",
        subfolder=folder or None,
        prompt_style="no_think" if "nothink" in folder.lower() else "think",
        note=_UNVERIFIED + _MEDR1_PROMPT if repo == MEDR1_REPO else "",
        prompt="medr1-train" if repo == MEDR1_REPO else DEFAULT_PROMPT,
    )


class ModelRegistry:
    """The picker's choices: built-ins, models added at run time, and what a runs directory holds.

    Thread-safe; one per app. ``runs_dir`` is scanned on every :meth:`list_models` call (cheap: two
    ``stat`` calls per run folder), so the Fine-tune tab only has to refresh the dropdown.
    """

    def __init__(self, specs: Iterable[ModelSpec] = (), runs_dir: str | Path | None = None):
        self._specs: dict[str, ModelSpec] = {}
        self._lock = threading.Lock()
        self.runs_dir = Path(runs_dir) if runs_dir else None
        for spec in specs:
            self.add(spec)

    def add(self, spec: ModelSpec) -> ModelSpec:
        """Add or replace a choice (by key)."""
        with self._lock:
            self._specs[spec.key] = spec
        return spec

    def add_path(self, path: str | Path) -> ModelSpec:
        """Add a local checkpoint or adapter directory; returns its spec (its ``key`` selects it)."""
        return self.add(spec_for_path(path))

    def get(self, key: str) -> ModelSpec:
        with self._lock:
            spec = self._specs.get(key)
        if spec is None:
            spec = next((s for s in self._scan_runs() if s.key == key), None)
        if spec is None:
            raise ModelLoadError(f"Unknown model {key!r}: pick one from the list or add it with --model PATH.")
        return spec

    def _scan_runs(self) -> list[ModelSpec]:
        if self.runs_dir is None or not self.runs_dir.is_dir():
            return []
        found = []
        for child in sorted(self.runs_dir.iterdir()):
            if not child.is_dir():
                continue
            if (child / "adapter_config.json").is_file() or (
                (child / "config.json").is_file() and (child / "medr1_card.json").is_file()
            ):
                with contextlib.suppress(ModelLoadError, OSError, ValueError):
                    found.append(spec_for_path(child))
        return found

    def list_models(self) -> list[ModelSpec]:
        """Every choice: explicitly added ones first (in order), then runs found in ``runs_dir``."""
        with self._lock:
            specs = list(self._specs.values())
        known = {s.key for s in specs}
        return specs + [s for s in self._scan_runs() if s.key not in known]

    def choices(self) -> list[tuple[str, str]]:
        """``(label, key)`` pairs for ``gr.Dropdown(choices=...)``."""
        return [s.choice for s in self.list_models()]


@dataclass
class LoadedModel:
    """A model ready to generate, with the processor and image bounds that go with it."""

    spec: ModelSpec
    model: Any
    processor: Any
    device: str
    dtype: torch.dtype
    bounds: PixelBounds
    """The input-size rule of its pictures (``train.model_io.pixel_bounds`` of its processor)."""
    load_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    fast: str = "off"
    """The fast generation path (``train.generation.FAST_MODES``): static KV cache, compiled on CUDA."""

    @property
    def tiny(self) -> bool:
        return self.spec.tiny


def resolve_source(spec: ModelSpec) -> str:
    """A local directory (or a hub id ``from_pretrained`` resolves itself) for ``spec.source``.

    A hub subfolder is fetched with ``snapshot_download(allow_patterns=FOLDER/*)`` so only that
    checkpoint is downloaded; offline (``HF_HUB_OFFLINE=1``) only the local cache is consulted.
    """
    if spec.demo_files is not None:  # the registry's demo start model, built on first use
        ensure_demo(spec.demo_files)
    if spec.subfolder is None or Path(spec.source).is_dir():
        local = Path(spec.source) / spec.subfolder if spec.subfolder else Path(spec.source)
        return str(local) if local.exists() else spec.source
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        root = snapshot_download(spec.source, allow_patterns=[f"{spec.subfolder}/*"], local_files_only=offline)
    except Exception as exc:  # hub errors come in many types; all mean "not available here"
        hint = "The model hub is not reachable and this folder is not in the local cache. " if offline else ""
        raise ModelLoadError(
            f"Could not fetch {spec.source}/{spec.subfolder}. {hint}Download it once where the hub is reachable "
            f"(`hf download {spec.source} --include '{spec.subfolder}/*'`) and pass the folder with --model PATH.",
            cause=f"{type(exc).__name__}: {exc}",
            unreachable=True,
        ) from exc
    local = Path(root) / spec.subfolder
    if not (local / "config.json").is_file():
        raise ModelLoadError(
            f"{spec.source} has no checkpoint in folder {spec.subfolder!r} (the folder names are unverified). "
            f"See {MEDR1_CARD} for the folders that exist, then use --model {spec.source}:FOLDER or a local path."
        )
    return str(local)


def _has_processor(folder: str | Path) -> bool:
    return any((Path(folder) / name).is_file() for name in ("processor_config.json", "preprocessor_config.json"))


class ModelManager:
    """Loads the selected model on first use and keeps exactly one in memory.

    ``device`` defaults to CUDA when present (bf16 where supported, else float32 on CPU), matching
    ``train.model_io.load_for_inference``.
    """

    def __init__(self, registry: ModelRegistry, device: str | None = None, dtype: str | None = None, fast: str = "off"):
        self.registry = registry
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype
        use_fast_path(fast, self.device)  # an unknown mode fails here, at start-up
        self.fast = fast
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def get(self, key: str) -> LoadedModel:
        """The loaded model for ``key``, loading it (and unloading any other) if needed."""
        current = self._loaded
        if current is not None and current.spec.key == key:
            return current
        spec = self.registry.get(key)
        with self._lock:
            if self._loaded is not None and self._loaded.spec.key == key:
                return self._loaded
            self.unload()
            self._loaded = self._load(spec)
            return self._loaded

    def unload(self) -> None:
        """Free the current model (GPU memory included)."""
        self._loaded = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _load(self, spec: ModelSpec) -> LoadedModel:
        start = time.perf_counter()
        source = resolve_source(spec)
        model = load_for_inference(source, adapter=spec.adapter, dtype=self.dtype, device=self.device)
        # medr1's trainers save the processor next to the adapter; use it (same image bounds as training).
        processor = load_processor(spec.adapter if spec.adapter and _has_processor(spec.adapter) else source)
        bounds = pixel_bounds(processor) or PixelBounds()
        seconds = time.perf_counter() - start
        dtype = next(model.parameters()).dtype
        tiny = spec.tiny or bool(getattr(model.config, TINY_MARKER, False))
        logger.info("Loaded model %s on %s (%s) in %.1f s", spec.key, self.device, dtype, seconds)
        return LoadedModel(
            replace(spec, tiny=tiny),
            model,
            processor,
            self.device,
            dtype,
            bounds,
            load_seconds=seconds,
            info={"parameters": sum(p.numel() for p in model.parameters())},
            fast=self.fast,
        )
