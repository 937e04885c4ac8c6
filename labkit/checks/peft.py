"""Checkers for notebook 08 (LoRA, adapters, prompt tuning): a LoRA layer's
initialisation, its forward pass and its merge, on fresh random shapes and weights."""

from __future__ import annotations

import torch

from ..peft import lora_delta, lora_forward, lora_init, lora_merge
from ._core import Wrong, close, exercise, fresh_generator


def _shapes(g: torch.Generator, square: bool = False) -> tuple[int, int, int]:
    """(in, out, r): out != in unless `square`, r in 2..6 (never 1: r and alpha / r
    must differ)."""
    n_in = int(torch.randint(5, 12, (1,), generator=g))
    n_out = n_in if square else n_in + int(torch.randint(1, 6, (1,), generator=g))
    return n_in, n_out, int(torch.randint(2, 7, (1,), generator=g))


def _lora(g: torch.Generator, square: bool = False):
    n_in, n_out, r = _shapes(g, square)
    W = torch.randn(n_out, n_in, generator=g)
    b = torch.randn(n_out, generator=g)
    A = torch.randn(r, n_in, generator=g)
    B = torch.randn(n_out, r, generator=g)       # trained: no longer zero
    while True:   # an alpha whose scales alpha / r, r, 1, alpha and r / alpha all differ,
        alpha = float(torch.randint(2, 33, (1,), generator=g))   # so each mistake has one name
        scales = [alpha / r, r, 1.0, alpha, r / alpha]
        if all(abs(s - t) > 0.25 for i, s in enumerate(scales) for t in scales[i + 1:]):
            break
    x = torch.randn(3, 4, n_in, generator=g)     # (batch, tokens, features)
    return x, W, b, A, B, alpha, r


# --------------------------------------------------------------------------- 08.1
@exercise("08.1", "LoRA's initial A and B", reference=lora_init)
def check_lora_init(fn):
    g = fresh_generator()
    n_in, n_out, r = _shapes(g)
    n_in, n_out = n_in * 16, n_out * 16           # a realistic fan-in for the scale check
    out = fn(n_in, n_out, r)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong("return two tensors, (A, B).")
    A, B = (torch.as_tensor(t) for t in out)
    if tuple(A.shape) == (n_in, r) or tuple(B.shape) == (r, n_out):
        raise Wrong(f"A has shape {tuple(A.shape)} and B {tuple(B.shape)}: transposed. "
                    "Like nn.Linear's weight, a matrix is (out x in): A maps in -> r, B maps "
                    "r -> out.", f"A: ({r}, {n_in}) = (r, in_features); B: ({n_out}, {r}) = "
                    "(out_features, r)")
    if tuple(A.shape) != (r, n_in) or tuple(B.shape) != (n_out, r):
        raise Wrong(f"for in_features={n_in}, out_features={n_out}, r={r}: A has shape "
                    f"{tuple(A.shape)} and B {tuple(B.shape)}; A is (r, in_features) and B "
                    "(out_features, r).")
    if bool((A == 0).all()) and not bool((B == 0).all()):
        raise Wrong("A = 0 with a random B also gives B A = 0, but it is not LoRA's "
                    "convention: the paper and the peft library start A random and B at "
                    "zero, and this notebook compares its layers with peft's.",
                    "A random (like a fresh nn.Linear's weight), B = torch.zeros(out, r)")
    if not bool((B == 0).all()):
        raise Wrong("B is not zero, so B A is not zero: the model would no longer compute "
                    "what the pre-trained one did before the first training step.",
                    "B = torch.zeros(out_features, r); only A is random")
    if bool((A == 0).all()):
        raise Wrong("A and B are both zero: then the gradient of B (proportional to A x) and "
                    "the gradient of A (proportional to B) are both zero, and LoRA never "
                    "learns. Make A random.",
                    "A like a fresh nn.Linear: torch.nn.init.kaiming_uniform_(torch.empty(r, "
                    "in_features), a=math.sqrt(5))")
    want_std = 1 / (3 * n_in) ** 0.5               # Kaiming uniform: U(-1/sqrt(in), 1/sqrt(in))
    std = float(A.float().std())
    if not torch.isfinite(A).all() or not want_std / 4 < std < want_std * 4:
        raise Wrong(f"A's values have standard deviation {std:.3g}, about {std / want_std:.0f}x "
                    "what a fresh nn.Linear would have: too large an A makes the first "
                    "updates explode (or too small, crawl).",
                    "scale like nn.Linear: uniform in +-1/sqrt(in_features), e.g. "
                    "nn.init.kaiming_uniform_(A, a=math.sqrt(5))")
    A2, _ = fn(n_in, n_out, r)
    if torch.equal(torch.as_tensor(A2), A):
        raise Wrong("two calls gave the same A: draw it at random (torch's generator), not "
                    "from a fixed pattern.")


# --------------------------------------------------------------------------- 08.2
@exercise("08.2", "a LoRA layer's forward pass", reference=lora_forward, blocked=(lora_delta,))
def check_lora_forward(fn):
    g = fresh_generator()
    x, W, b, A, B, alpha, r = _lora(g)
    out = fn(x.clone(), W.clone(), b.clone(), A.clone(), B.clone(), alpha)
    want = lora_forward(x, W, b, A, B, alpha)
    out_t = torch.as_tensor(out)
    if out_t.shape == want.shape and not torch.allclose(out_t, want, atol=1e-4, rtol=1e-4):
        base = torch.nn.functional.linear(x, W, b)
        update = x @ A.T @ B.T
        for scale, hint, stronger in (
                (r, "the low-rank path is scaled by r; LoRA scales it by alpha / r.",
                 "the rank belongs in the denominator: a larger rank must not make the "
                 "update larger"),
                (r / alpha, "the scale is inverted: it is alpha / r, not r / alpha.",
                 "alpha goes on top of the fraction, the rank below"),
                (alpha, "the low-rank path is scaled by alpha; LoRA divides it by the rank: "
                 "alpha / r keeps the update's size comparable when r changes.",
                 "the rank is A.shape[0]; divide by it"),
                (1.0, "the low-rank path is not scaled: multiply it by alpha / r.",
                 "scale only the low-rank path, not the frozen layer's output")):
            if torch.allclose(out_t, base + scale * update, atol=1e-4, rtol=1e-4):
                raise Wrong(hint, stronger)
        if torch.allclose(out_t, base - b + (alpha / r) * update, atol=1e-4, rtol=1e-4):
            raise Wrong("the bias of the frozen layer is missing: y = x W^T + b + ...",
                        'the frozen layer is a whole nn.Linear: its bias is part of its output')
        if torch.allclose(out_t, (alpha / r) * update + b, atol=1e-4, rtol=1e-4) or \
                torch.allclose(out_t, (alpha / r) * update, atol=1e-4, rtol=1e-4):
            raise Wrong("the frozen layer's own output x W^T + b is missing: LoRA ADDS an "
                        "update to it.", ("compute the frozen layer's output first, then add the "
                                          'scaled low-rank path to it'))
    close(out_t, want, what="the layer's output",
          hint="y = x W^T + b plus the low-rank path x -> A -> B, scaled by alpha / r "
               "(r = A.shape[0]).",
          stronger=('check the shapes: x (n, in) through A (r, in) gives (n, r), through B (out, '
                    "r) gives (n, out); scale that path, then add it to the frozen layer's output"),
          atol=1e-4, rtol=1e-4)
    # B = 0 (a fresh LoRA layer): exactly the frozen layer
    zero = fn(x, W, b, A, torch.zeros_like(B), alpha)
    close(zero, torch.nn.functional.linear(x, W, b), what="the output with B = 0",
          hint="with B = 0 the layer must compute exactly the frozen layer x W^T + b.",
          atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- 08.3
@exercise("08.3", "merging LoRA into the weight", reference=lora_merge, blocked=(lora_delta,))
def check_lora_merge(fn):
    g = fresh_generator()
    for square in (True, False):                 # square first: a transpose still fits
        _, W, _, A, B, alpha, r = _lora(g, square=square)
        W_before = W.clone()
        try:
            out = fn(W, A.clone(), B.clone(), alpha)
        except RuntimeError as e:
            if "shape" in str(e) or "size" in str(e):
                raise Wrong(f"a {tuple(W.shape)} weight with A {tuple(A.shape)} and B "
                            f"{tuple(B.shape)} failed ({e}). B @ A is (out, r) @ (r, in) = "
                            "(out, in), the shape of W.",
                            "the update must have W's shape (out, in): which order of B "
                            "(out x r) and A (r x in) gives that?") from None
            raise
        out_t = torch.as_tensor(out)
        want = lora_merge(W_before, A, B, alpha)
        delta = lora_delta(A, B, alpha)
        if out_t.shape == want.shape and not torch.allclose(out_t, want, atol=1e-4, rtol=1e-4):
            if torch.allclose(out_t, W_before + delta.T, atol=1e-4, rtol=1e-4):
                raise Wrong("the update is transposed (A^T B^T instead of B A). It only fits "
                            "because this W is square; on a real (out x in) layer it fails "
                            "or, worse, silently changes the wrong weights.",
                            'B comes first in the product: (out x r) times (r x in)')
            for scale, hint in ((r, "the update is scaled by r; LoRA scales it by alpha / r."),
                                (1.0, "the update is not scaled: multiply B @ A by alpha / r."),
                                (alpha, "the update is scaled by alpha; divide by the rank too: "
                                 "alpha / r.")):
                if torch.allclose(out_t, W_before + scale * (B @ A), atol=1e-4, rtol=1e-4):
                    raise Wrong(hint, ('the scale is alpha divided by the rank, and the rank is '
                                       'A.shape[0]'))
        close(out_t, want, what="the merged weight",
              hint="the merged layer must compute x W'^T = x W^T + (alpha / r) x A^T B^T, "
                   "so W' = W + (alpha / r) * B @ A.",
              stronger=("the merged weight must make x W'^T equal to the LoRA layer's output for "
                        'every x: write that output as x times one matrix'), atol=1e-4, rtol=1e-4)
    # the merged weight computes what the LoRA layer computes
    x, W, b, A, B, alpha, _ = _lora(g)
    merged = torch.nn.functional.linear(x, torch.as_tensor(fn(W.clone(), A, B, alpha)), b)
    close(merged, lora_forward(x, W, b, A, B, alpha), what="the merged layer's output",
          hint="one linear layer with the merged weight must give the LoRA layer's output.",
          atol=1e-4, rtol=1e-4)
