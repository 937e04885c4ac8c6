"""Checkers for notebook 00 set-up's exercise: where a BERT encoder's parameters are."""

from __future__ import annotations

import torch

from ._core import Wrong, exercise, fresh_generator


def encoder_parameters(config) -> int:
    """Reference for exercise 00.1: the parameters of a BERT encoder (embeddings and
    layers, no pooler and no task head) with this config, counted on the model itself."""
    from transformers import BertModel

    from ..models import count_parameters

    return count_parameters(BertModel(config, add_pooling_layer=False))


def random_config(g: torch.Generator, layers: int | None = None):
    """A small BertConfig with sizes drawn from `g` (every size different, so that a
    formula that swaps two of them gives a different count)."""
    from transformers import BertConfig

    def draw(lo, hi):
        return int(torch.randint(lo, hi, (1,), generator=g))

    heads = draw(1, 4)
    return BertConfig(vocab_size=draw(50, 400), hidden_size=heads * draw(3, 9),
                      num_hidden_layers=draw(1, 4) if layers is None else layers,
                      num_attention_heads=heads, intermediate_size=draw(20, 90),
                      max_position_embeddings=draw(10, 45), type_vocab_size=draw(1, 4))


def _mistakes(c) -> list[tuple[int, str, str]]:
    """(count the mistake gives, hint, stronger hint) for the common mistakes."""
    H, L, I = c.hidden_size, c.num_hidden_layers, c.intermediate_size
    return [
        (-(L * (4 * H + I + H)),
         "your count misses the biases of the linear layers.",
         "every nn.Linear(n_in, n_out) has n_in*n_out weights plus n_out biases: per layer "
         "Q, K, V and the attention output (4 * (H*H + H)) and the feed-forward pair "
         "(H*I + I and I*H + H)."),
        (-(2 * H + L * 4 * H),
         "your count misses the LayerNorms.",
         "each LayerNorm has a scale and a shift of size H: one after the embeddings, two "
         "per layer (after attention, after the feed-forward)."),
        (-((c.max_position_embeddings + c.type_vocab_size) * H),
         "your count has only the word embeddings.",
         "BERT adds three embeddings: words (vocab_size x H), positions "
         "(max_position_embeddings x H) and token types (type_vocab_size x H)."),
    ] + [
        (-(L * (H * I + extra)),
         "your feed-forward block is missing a matrix.",
         "the feed-forward block goes H -> I -> H: two linear layers, H*I + I and I*H + H.")
        for extra in (0, I, H)           # the matrix alone, or with either bias
    ] + [
        (-(L * 2 * H),
         "your layers have one LayerNorm too few.",
         "each layer has two LayerNorms (after attention, after the feed-forward), 2*H "
         "parameters each."),
    ]


@exercise("00.1", "parameters of a BERT encoder", reference=encoder_parameters)
def check_encoder_parameters(fn):
    g = fresh_generator()
    for layers in (None, None, 0):                  # layers=0: the embeddings alone
        c = random_config(g, layers)
        mine, true = fn(c), encoder_parameters(c)
        if isinstance(mine, torch.Tensor):
            mine = mine.item()
        if not isinstance(mine, (int, float)) or mine != int(mine):
            raise Wrong(f"return a whole number (an int); got {mine!r}.")
        if int(mine) == true:
            continue
        for offset, hint, stronger in _mistakes(c):
            if offset and int(mine) == true + offset:
                raise Wrong(hint, stronger)
        raise Wrong(f"for a config with hidden size {c.hidden_size}, "
                    f"{c.num_hidden_layers} layer(s), intermediate size {c.intermediate_size}, "
                    f"vocabulary {c.vocab_size}, {c.max_position_embeddings} positions and "
                    f"{c.type_vocab_size} token type(s) you count {int(mine):,}, and the "
                    f"model has {true:,}.",
                    "count the embeddings (three tables and a LayerNorm), then one layer: "
                    "four H x H linear layers with biases, a LayerNorm, the two feed-forward "
                    "linear layers with biases, a LayerNorm; multiply by the layers.")
