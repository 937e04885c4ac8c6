"""Parameter-efficient fine-tuning, built from scratch: LoRA, bottleneck adapters and
soft prompt tuning.

    >>> from labkit import models, peft
    >>> model, tok = models.load("minilm", task="sequence-classification", num_labels=2)
    >>> peft.apply_lora(model, r=8, alpha=16, target_modules=("query", "value"))
    >>> peft.trainable_parameters(model)          # (trainable, total)
    (74498, 22787714)
    >>> peft.merge_lora(model)                    # W <- W + (alpha / r) B A: no extra cost

All three freeze the pre-trained weights and add a few new ones; only the new ones and
the task head (`modules_to_save`, peft's word for it) learn:

* **LoRA** (Hu et al., 2021) adds to a frozen linear layer `W` a low-rank update:
  `y = W x + (alpha / r) * B (A dropout(x))`, with `A` (r x in) random and `B` (out x r)
  zero, so training starts from the pre-trained model exactly. After training, `B A`
  can be merged into `W`: the model is as fast as before and the update can be removed
  again (`unmerge_lora`). Weight names follow the `peft` library (`base_layer`,
  `lora_A`, `lora_B`), so `copy_lora_from_peft` can check this code against it.
* **Bottleneck adapters** (Houlsby et al., 2019) put a small residual MLP after a layer:
  `h + up(act(down(h)))`, `down` to a few dimensions, `up` back, `up` zero-initialised.
  In BERT, `target_modules=("output.dense",)` places one after the attention output and
  one after the feed-forward block of every layer, where Houlsby put them. (Houlsby also
  trained the layer norms; here only the adapters and `modules_to_save` learn.)
* **Prompt tuning** (Lester et al., 2021) leaves the whole network frozen and learns
  `num_virtual_tokens` input embeddings, inserted into every input (after [CLS] for an
  encoder, so the classifier still reads [CLS]).

`training_memory` says what a training step costs in bytes, by part (weights,
gradients, AdamW state, activations that autograd keeps for the backward pass).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn


# --------------------------------------------------------------------------- shared
def _matches(name: str, targets: Sequence[str]) -> bool:
    """peft's rule: a target matches a module whose name is it or ends with '.' + it."""
    return any(name == t or name.endswith("." + t) for t in targets)


def find_modules(model: nn.Module, target_modules: Sequence[str], kind=nn.Linear) -> list[str]:
    """Names of the `kind` modules whose name matches one of `target_modules`.

    Fails with the names that could have matched when nothing does (the usual mistake:
    Llama calls them `q_proj`/`v_proj`, BERT `query`/`value`)."""
    if isinstance(target_modules, str):
        target_modules = (target_modules,)
    names = [n for n, m in model.named_modules()
             if isinstance(m, kind) and _matches(n, target_modules)]
    if not names:
        available = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                            if isinstance(m, kind)})
        raise ValueError(f"no {kind.__name__} layer matches target_modules="
                         f"{list(target_modules)}; this model's {kind.__name__} layers end in: "
                         f"{', '.join(available)}")
    return names


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def freeze(model: nn.Module, modules_to_save: Sequence[str] = ()) -> None:
    """Freeze every weight, then unfreeze the modules named in `modules_to_save` (the
    task head, e.g. 'classifier'). A name that matches nothing is an error."""
    for p in model.parameters():
        p.requires_grad = False
    if isinstance(modules_to_save, str):
        modules_to_save = (modules_to_save,)
    for target in modules_to_save:
        found = [m for n, m in model.named_modules() if n and _matches(n, (target,))]
        if not found:
            raise ValueError(f"modules_to_save: no module named {target!r} in "
                             f"{type(model).__name__}; its top-level modules are "
                             f"{[n for n, _ in model.named_children()]} (pass "
                             "modules_to_save=() to train none)")
        for m in found:
            for p in m.parameters():
                p.requires_grad = True


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, as peft's `get_nb_trainable_parameters`."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def describe(model: nn.Module) -> str:
    """One line: trainable / total parameters and the trainable share."""
    trainable, total = trainable_parameters(model)
    return f"trainable params: {trainable:,} || all params: {total:,} || trainable%: " \
           f"{100 * trainable / total:.4f}"


# --------------------------------------------------------------------------- LoRA
# The three formulas of LoRA, as plain functions of tensors; `LoRALinear` is built on
# them. Shapes: x (..., in), W (out, in), A (r, in), B (out, r); the rank r is A's rows.
def lora_init(in_features: int, out_features: int, r: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh LoRA matrices (A, B): A (r x in) random like a new nn.Linear (Kaiming
    uniform, values within +-1/sqrt(in)), B (out x r) zero. B = 0 makes the update B A
    zero, so training starts from the pre-trained model exactly; A random lets B's
    gradient, which is proportional to A x, be non-zero from the first step."""
    if int(r) != r or r < 1:
        raise ValueError(f"LoRA rank r must be a positive integer, got {r}")
    A = torch.empty(int(r), in_features)
    nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)
    return A, torch.zeros(out_features, int(r))


def lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 lora_A: torch.Tensor, lora_B: torch.Tensor, alpha: float,
                 dropout=None) -> torch.Tensor:
    """A LoRA layer's output: y = x W^T + b + (alpha / r) * (x A^T) B^T, with dropout
    (if given) on the input of the low-rank path only. The frozen W is never changed."""
    r = lora_A.shape[0]
    h = x if dropout is None else dropout(x)
    update = nn.functional.linear(nn.functional.linear(h, lora_A), lora_B)
    return nn.functional.linear(x, weight, bias) + (alpha / r) * update


def lora_delta(lora_A: torch.Tensor, lora_B: torch.Tensor, alpha: float) -> torch.Tensor:
    """The update LoRA adds to W: (alpha / r) * B @ A, shape (out, in)."""
    return (alpha / lora_A.shape[0]) * (lora_B @ lora_A)


def lora_merge(weight: torch.Tensor, lora_A: torch.Tensor, lora_B: torch.Tensor,
               alpha: float) -> torch.Tensor:
    """The merged weight W + (alpha / r) * B @ A (out, in): one plain linear layer that
    computes what the LoRA layer computes (without dropout, as at inference)."""
    return weight + lora_delta(lora_A, lora_B, alpha)


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable low-rank update, scaled by alpha / r.

    `lora_A` starts like a fresh nn.Linear (Kaiming uniform), `lora_B` at zero: at step 0
    the layer computes exactly what the pre-trained one did."""

    def __init__(self, base_layer: nn.Linear, r: int = 8, alpha: float = 16,
                 dropout: float = 0.0):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"LoRALinear wraps nn.Linear, not {type(base_layer).__name__}")
        if int(r) != r or r < 1:
            raise ValueError(f"LoRA rank r must be a positive integer, got {r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
        self.base_layer = base_layer
        self.r, self.alpha, self.scaling = int(r), alpha, alpha / r
        w = base_layer.weight
        self.lora_A = nn.Linear(base_layer.in_features, self.r, bias=False,
                                device=w.device, dtype=w.dtype)
        self.lora_B = nn.Linear(self.r, base_layer.out_features, bias=False,
                                device=w.device, dtype=w.dtype)
        A, B = lora_init(base_layer.in_features, base_layer.out_features, self.r)
        with torch.no_grad():
            self.lora_A.weight.copy_(A)
            self.lora_B.weight.copy_(B)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update this layer adds to W: (alpha / r) * B @ A, shape (out, in)."""
        return lora_delta(self.lora_A.weight, self.lora_B.weight, self.alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        return lora_forward(x, self.base_layer.weight, self.base_layer.bias,
                            self.lora_A.weight, self.lora_B.weight, self.alpha,
                            self.lora_dropout)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight: inference costs what it did before."""
        if self.merged:
            raise RuntimeError("this LoRA layer is already merged; unmerge() it first")
        self.base_layer.weight.copy_(lora_merge(self.base_layer.weight, self.lora_A.weight,
                                                self.lora_B.weight, self.alpha))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the base weight again (back to the pre-trained W)."""
        if not self.merged:
            raise RuntimeError("this LoRA layer is not merged; nothing to unmerge")
        self.base_layer.weight -= self.delta_weight()
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def apply_lora(model: nn.Module, *, r: int = 8, alpha: float = 16, dropout: float = 0.0,
               target_modules: Sequence[str] = ("query", "value"),
               modules_to_save: Sequence[str] = ("classifier",), seed: int | None = None):
    """Freeze `model`, wrap each matching linear layer in a `LoRALinear` and keep
    `modules_to_save` trainable. Works in place and returns the model.

    The arguments mean what peft's `LoraConfig` calls `r`, `lora_alpha`, `lora_dropout`,
    `target_modules` and `modules_to_save`."""
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("this model already has LoRA layers: load a fresh model to apply "
                         "another configuration")
    names = find_modules(model, target_modules)
    freeze(model, modules_to_save)
    if seed is not None:
        torch.manual_seed(seed)
    for name in names:
        _replace(model, name, LoRALinear(model.get_submodule(name), r, alpha, dropout))
    return model


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The LoRA layers of a model, by name."""
    layers = {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    if not layers:
        raise ValueError("this model has no LoRA layers: call apply_lora(model, ...) first")
    return layers


def merge_lora(model: nn.Module):
    """Merge every LoRA update into its base weight (in place; returns the model)."""
    for layer in lora_layers(model).values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module):
    """Undo `merge_lora` (in place; returns the model)."""
    for layer in lora_layers(model).values():
        layer.unmerge()
    return model


@torch.no_grad()
def copy_lora_from_peft(model: nn.Module, peft_model, adapter: str = "default") -> int:
    """Copy lora_A / lora_B (and the trained copies of modules_to_save) from a model made
    by the `peft` library into the same model made by `apply_lora`, so the two can be
    compared output for output. Returns the number of tensors copied."""
    inner = peft_model.get_base_model()
    copied = 0
    for name, layer in lora_layers(model).items():
        try:
            theirs = inner.get_submodule(name)
        except AttributeError:
            raise ValueError(f"the peft model has no layer {name!r}: were both made with the "
                             "same target_modules?") from None
        if not hasattr(theirs, "lora_A") or adapter not in theirs.lora_A:
            raise ValueError(f"peft layer {name!r} has no LoRA adapter {adapter!r}")
        layer.lora_A.weight.copy_(theirs.lora_A[adapter].weight)
        layer.lora_B.weight.copy_(theirs.lora_B[adapter].weight)
        copied += 2
    for name, module in inner.named_modules():
        saved = getattr(module, "modules_to_save", None)
        if isinstance(saved, nn.ModuleDict) and adapter in saved:
            ours = model.get_submodule(name)
            ours.load_state_dict(saved[adapter].state_dict())
            copied += len(saved[adapter].state_dict())
    return copied


# --------------------------------------------------------------------------- adapters
class BottleneckAdapter(nn.Module):
    """h + up(act(down(h))): a residual MLP through a narrow bottleneck. `up` starts at
    zero, so a new adapter is the identity and training starts from the pre-trained
    model."""

    def __init__(self, dim: int, bottleneck: int = 16, activation: str = "gelu"):
        super().__init__()
        if int(bottleneck) != bottleneck or bottleneck < 1:
            raise ValueError(f"adapter bottleneck must be a positive integer, got {bottleneck}")
        acts = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}
        if activation not in acts:
            raise ValueError(f"unknown activation {activation!r}; use one of {', '.join(acts)}")
        self.down = nn.Linear(dim, int(bottleneck))
        self.act = acts[activation]()
        self.up = nn.Linear(int(bottleneck), dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h)))


class AdaptedLinear(nn.Module):
    """A frozen linear layer followed by a bottleneck adapter."""

    def __init__(self, base_layer: nn.Linear, bottleneck: int = 16, activation: str = "gelu"):
        super().__init__()
        self.base_layer = base_layer
        w = base_layer.weight
        self.adapter = BottleneckAdapter(base_layer.out_features, bottleneck, activation).to(
            device=w.device, dtype=w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base_layer(x))


def apply_adapters(model: nn.Module, *, bottleneck: int = 16, activation: str = "gelu",
                   target_modules: Sequence[str] = ("output.dense",),
                   modules_to_save: Sequence[str] = ("classifier",), seed: int | None = None):
    """Freeze `model` and put a bottleneck adapter after each matching linear layer
    (BERT: 'output.dense' = after attention and after the feed-forward block, Houlsby's
    places; Llama: ('o_proj', 'down_proj')). In place; returns the model."""
    if any(isinstance(m, AdaptedLinear) for m in model.modules()):
        raise ValueError("this model already has adapters: load a fresh model to add others")
    names = find_modules(model, target_modules)
    freeze(model, modules_to_save)
    if seed is not None:
        torch.manual_seed(seed)
    for name in names:
        _replace(model, name, AdaptedLinear(model.get_submodule(name), bottleneck, activation))
    return model


# --------------------------------------------------------------------------- prompt tuning
class PromptTuning(nn.Module):
    """A frozen model that reads `num_virtual_tokens` trainable embeddings with every
    input: they are inserted at position `insert_at` (1 = right after [CLS] for BERT-like
    encoders, 0 for a causal LM), and the attention mask grows to cover them.

    It is called like the model it wraps (input_ids, attention_mask, token_type_ids,
    labels, ...) and returns the wrapped model's output."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int = 20, *, insert_at: int = 1,
                 init_ids: torch.Tensor | None = None,
                 modules_to_save: Sequence[str] = ("classifier",), seed: int | None = None):
        super().__init__()
        if int(num_virtual_tokens) != num_virtual_tokens or num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be a positive integer, got "
                             f"{num_virtual_tokens}")
        if insert_at < 0:
            raise ValueError(f"insert_at must be >= 0, got {insert_at}")
        embed = model.get_input_embeddings()
        if embed is None:
            raise ValueError(f"{type(model).__name__} has no input embeddings to prepend to")
        freeze(model, modules_to_save)
        self.model, self.insert_at = model, insert_at
        n = int(num_virtual_tokens)
        if init_ids is None:
            # Lester et al.: start from the embeddings of real (here: random) vocabulary
            # words, which trains better than random vectors
            g = torch.Generator().manual_seed(0 if seed is None else seed)
            init_ids = torch.randint(2000, min(embed.num_embeddings, 5000), (n,), generator=g)
        init_ids = torch.as_tensor(init_ids).flatten()
        if len(init_ids) < n:   # repeat an init text shorter than the prompt
            init_ids = init_ids.repeat(math.ceil(n / len(init_ids)))
        self.prompt = nn.Parameter(embed.weight[init_ids[:n].to(embed.weight.device)]
                                   .detach().clone())
        max_pos = getattr(model.config, "max_position_embeddings", None)
        self.max_length = None if max_pos is None else max_pos - n

    @property
    def config(self):
        return self.model.config

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **kwargs):
        if self.max_length is not None and input_ids.shape[1] > self.max_length:
            raise ValueError(f"inputs of {input_ids.shape[1]} tokens plus "
                             f"{len(self.prompt)} virtual tokens exceed the model's "
                             f"{self.config.max_position_embeddings} positions: truncate to "
                             f"max_length={self.max_length}")
        b, k = input_ids.shape[0], self.insert_at
        embeds = self.model.get_input_embeddings()(input_ids)
        prompt = self.prompt.unsqueeze(0).expand(b, -1, -1).to(embeds.dtype)
        embeds = torch.cat([embeds[:, :k], prompt, embeds[:, k:]], dim=1)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        ones = attention_mask.new_ones(b, len(self.prompt))
        attention_mask = torch.cat([attention_mask[:, :k], ones, attention_mask[:, k:]], 1)
        if token_type_ids is not None:
            zeros = token_type_ids.new_zeros(b, len(self.prompt))
            kwargs["token_type_ids"] = torch.cat([token_type_ids[:, :k], zeros,
                                                  token_type_ids[:, k:]], 1)
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)


def apply_prompt_tuning(model: nn.Module, num_virtual_tokens: int = 20, **kwargs) -> PromptTuning:
    """Freeze `model` (but `modules_to_save`) and return it wrapped in `PromptTuning`."""
    return PromptTuning(model, num_virtual_tokens, **kwargs)


# --------------------------------------------------------------------------- memory
def training_memory(model: nn.Module, batch: Mapping, loss_fn=None) -> dict[str, int]:
    """Bytes one AdamW training step holds, by part:

    * `weights`: every parameter; `gradients`: one per trainable parameter;
    * `optimizer`: AdamW's two moments per trainable parameter;
    * `activations`: measured, the tensors autograd saves during one forward pass on
      `batch` for the backward pass (autograd's saved-tensor hooks; each storage counted
      once, parameters not counted). Frozen layers save less: no input is kept to
      compute a weight gradient that is not needed.

    It is torch's own bookkeeping, so it works on the CPU, where process memory (RSS)
    mixes in the allocator's caches and only ever grows."""
    from .train import default_loss, to_device

    params = list(model.parameters())
    dev = params[0].device
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in param_ptrs and ptr not in seen:
                seen[ptr] = storage.nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    was_training = model.training
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = (loss_fn or default_loss)(model, to_device(dict(batch), dev))
    del loss
    model.train(was_training)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    out = {"weights": sum(p.numel() * p.element_size() for p in params),
           "gradients": trainable, "optimizer": 2 * trainable,
           "activations": sum(seen.values())}
    out["total"] = sum(out.values())
    return out
