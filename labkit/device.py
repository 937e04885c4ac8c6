"""Where the computation runs: device, precision, seeds and an environment report.

    >>> from labkit import device
    >>> dev = device.pick()            # cuda, then mps, then cpu
    >>> device.precision(dev)          # 'bf16', 'fp16' or 'fp32'
    >>> device.scoring_batch_size(dev) # rows per scoring batch: 32 on a CPU
    >>> device.seed_everything(0)
    >>> print(device.report())
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


def pick(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU.

    `prefer` (or the environment variable LABKIT_DEVICE) forces one, e.g. "cpu".
    """
    prefer = prefer or os.environ.get("LABKIT_DEVICE")
    if prefer:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is visible; "
                               "use device='cpu' or unset LABKIT_DEVICE")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def precision(dev: torch.device | str) -> str:
    """The mixed precision to train with on `dev`.

    bf16 on GPUs of compute capability 8.0 and newer (Ampere: A100, RTX 30xx, and
    later), fp16 with a gradient scaler on older ones (T4, V100: there
    `torch.cuda.is_bf16_supported()` may say yes, but bf16 is emulated and slow), fp32
    everywhere else (CPU autocast gains little for small models).
    """
    dev = torch.device(dev)
    if dev.type == "cuda":
        major, _ = torch.cuda.get_device_capability(dev)
        return "bf16" if major >= 8 else "fp16"
    return "fp32"


def autocast_dtype(prec: str) -> torch.dtype | None:
    """The dtype autocast uses for a precision name, None for fp32 (autocast off)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[prec]


def scoring_batch_size(dev: torch.device | str) -> int:
    """How many rows one scoring forward pass takes on `dev` (no autograd, rows sorted by
    length). A GPU wants large batches; a CPU core does not: scoring MiniLM on 250 rows
    of up to 64 tokens with one thread took 2.0 s in batches of 16 or 32, 2.3 s in 64,
    3.1 s in 128 and 4.7 s in 256 (the activations of a large batch fall out of the
    cache)."""
    return 32 if torch.device(dev).type == "cpu" else 128


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def info(dev: torch.device | str | None = None) -> dict:
    """Facts about this machine as a dict (they go into every ledger row)."""
    import transformers

    dev = torch.device(dev) if dev is not None else pick()
    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": dev.type,
        "device_name": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "precision": precision(dev),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        out["device_name"] = props.name
        out["device_memory_gb"] = round(props.total_memory / 2**30, 1)
    else:
        try:
            pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            out["device_memory_gb"] = round(pages * page_size / 2**30, 1)
        except (ValueError, OSError, AttributeError):
            pass
    return out


def report(dev: torch.device | str | None = None) -> str:
    """A short human-readable environment report."""
    import datasets
    import tokenizers

    i = info(dev)
    lines = [
        f"python        {i['python']}",
        f"torch         {i['torch']}",
        f"transformers  {i['transformers']}",
        f"datasets      {datasets.__version__}",
        f"tokenizers    {tokenizers.__version__}",
        f"device        {i['device']} ({i['device_name']})",
        f"memory        {i.get('device_memory_gb', '?')} GB",
        f"precision     {i['precision']}",
        f"threads       {i['threads']} torch threads, {i['cpu_count']} CPUs",
        f"hub           {'offline (HF_HUB_OFFLINE=1)' if os.environ.get('HF_HUB_OFFLINE') == '1' else 'allowed if reachable'}",
    ]
    if "CUDA_VISIBLE_DEVICES" in os.environ:      # on a class server, the GPU the hub gave you
        lines.append(f"gpus          CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}")
    return "\n".join(lines)
