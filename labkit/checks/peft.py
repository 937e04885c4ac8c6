"""Checkers for notebook 08 LoRA, adapters, prompt tuning's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def lora_parameter_count(model, answer: int, *, r: int, target_modules) -> bool:
    """Exercise 08: how many parameters LoRA with rank `r` adds to `target_modules`."""
    from ..peft import find_modules

    layers = [model.get_submodule(n) for n in find_modules(model, target_modules)]
    true = sum(r * (m.in_features + m.out_features) for m in layers)
    return verdict(int(answer) == true,
                    "each adapted linear layer W (out x in) gets A (r x in) and B (out x r), "
                    "so r x (in + out) new numbers; no biases. Count the matching layers in "
                    "every block (how many blocks does MiniLM have?)")
