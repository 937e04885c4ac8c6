"""Checkers for notebook 06 (behavioural fine-tuning): swapping a trained head for a new
one sized for the target task, and the main direction of a set of sentence vectors."""

from __future__ import annotations

import torch

from ..finetune import head as head_of
from ..finetune import principal_direction as reference_direction
from ..finetune import replace_head as reference_replace
from ._core import Wrong, exercise, fresh_generator


def _trained_news_model():
    """A small random BERT classifier with a 5-way head standing in for the news model."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=fresh_generator())))
    config = BertConfig(vocab_size=60, hidden_size=64, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=32,
                        num_labels=5)
    model = BertForSequenceClassification(config)
    with torch.no_grad():               # a "trained" head: far from a fresh initialisation
        head_of(model).weight.normal_(0, 0.5)
        head_of(model).bias.normal_(0, 0.5)
    return model


@exercise("06.1", "swap the head for the target task", reference=reference_replace)
def check_replace_head(fn):
    model = _trained_news_model()
    old = head_of(model)
    old_w = old.weight.detach().clone()
    encoder = {k: v.clone() for k, v in model.base_model.state_dict().items()}
    out = fn(model, 2, seed=3)
    if out is None:
        raise Wrong("your function returns None: return the model (changed in place).")
    new = head_of(out)
    if new.out_features != 2:
        raise Wrong(f"the head still has {new.out_features} outputs: changing "
                    "config.num_labels alone does not rebuild the layer.",
                    "make a new torch.nn.Linear(old.in_features, num_labels) and assign it "
                    "to model.classifier.")
    if new.in_features != old_w.shape[1]:
        raise Wrong("the new head must read the same sentence vector: in_features = "
                    "the old head's in_features (the hidden size).")
    w = new.weight.detach()
    if torch.allclose(w, old_w[:2]) or torch.allclose(w, old_w[-2:]):
        raise Wrong("the new head reuses rows of the old, news-topic head: those weights "
                    "mean 'business' and 'sport', not negative and positive. A new head "
                    "starts random.",
                    "torch.nn.Linear(old.in_features, num_labels), initialised the way the "
                    "architecture does it: model._init_weights(new_layer).")
    if out.num_labels != 2 or out.config.num_labels != 2:
        raise Wrong("set model.num_labels and model.config.num_labels to the new count: the "
                    "model's loss reshapes its logits with them.",
                    ('two places hold the label count: the model itself and its config; update '
                     'both'))
    if any(not torch.equal(v, out.base_model.state_dict()[k]) for k, v in encoder.items()):
        raise Wrong("the encoder changed: head replacement keeps every encoder weight as "
                    "it was; only the head is new.")
    if w.abs().max() > 1.0 or new.bias.detach().abs().max() > 1.0:
        raise Wrong("the new head's weights are large; start them small, as the architecture "
                    "does (model._init_weights(layer): normal with std 0.02, bias 0).")
    ids = torch.randint(1, 60, (3, 6), generator=fresh_generator())
    result = out(input_ids=ids, labels=torch.tensor([0, 1, 1]))
    if tuple(result.logits.shape) != (3, 2) or not torch.isfinite(result.loss):
        raise Wrong("the model does not give (batch, 2) logits and a loss after your change.")
    again = fn(_trained_news_model(), 2, seed=3)
    if not torch.allclose(head_of(again).weight.detach(), w):
        raise Wrong("the same seed must give the same new head (each seed of the notebook "
                    "draws its own): call torch.manual_seed(seed) before making the layer "
                    "when a seed is given.")


@exercise("06.2", "main direction of the features", reference=reference_direction)
def check_principal_direction(fn):
    g = fresh_generator()
    n, d = 200, 12
    u = torch.randn(d, generator=g)
    u = u / u.norm()
    x = (torch.randn(n, 1, generator=g) * 4) * u + torch.randn(n, d, generator=g) * 0.5
    offset = torch.randn(d, generator=g)
    offset = 20 * (offset - (offset @ u) * u) / (offset - (offset @ u) * u).norm()  # far off-centre
    x = x + offset
    got = torch.as_tensor(fn(x.clone())).double().flatten()
    want = reference_direction(x).double()
    if got.numel() == n:
        raise Wrong("you returned one number per row (a column of U); the direction lives "
                    "in feature space: a vector of length d (a row of Vh).",
                    ("in an SVD x = U S Vh, the rows of Vh are directions in feature space; U's "
                     'columns are per-row weights'))
    if got.numel() != d:
        raise Wrong(f"return one vector of length {d} (the feature dimension).")
    if abs(got.norm().item() - 1) > 1e-4:
        raise Wrong("return a unit vector (norm 1): a direction, not a scaled one.")
    cos = abs(float(got @ want))
    if cos < 0.99:
        plain = torch.linalg.svd(x, full_matrices=False).Vh[0].double()
        if abs(float(got @ plain)) > 0.99:
            raise Wrong("centre the rows first (subtract their mean): without it the first "
                        "singular vector points at the mean of the features, not along "
                        "their spread.",
                        'subtract the mean row from every row before the SVD')
        raise Wrong("that is not the direction of largest variance (its |cosine| with it is "
                    f"{cos:.2f}).",
                    ('centre the rows, then take the first right singular vector (the first row of '
                     'Vh from torch.linalg.svd)'))
