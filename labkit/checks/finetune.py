"""Checkers for notebook 04 (head replacement): freezing the encoder for a linear probe,
and the mean-pooled sentence vector a probe can read instead of the [CLS] pooler."""

from __future__ import annotations

import torch

from ..finetune import freeze_encoder as reference_freeze
from ..finetune import head as head_of
from ..finetune import mean_pool as reference_mean_pool
from ._core import Wrong, close, exercise, fresh_generator


def _tiny_classifier(num_labels: int = 3):
    """A small random BERT classifier (a second or two to build): same parts as MiniLM's
    (embeddings, layers, pooler, classifier), fresh weights from the global stream,
    which `checks.run` restores afterwards."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=fresh_generator())))
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                        num_labels=num_labels)
    return BertForSequenceClassification(config)


@exercise("04.1", "freeze the encoder", reference=reference_freeze)
def check_freeze_encoder(fn):
    model = _tiny_classifier()
    out = fn(model)
    if out is None:
        raise Wrong("your function returns None: return the model (frozen in place), so "
                    "it can be used as `probe = freeze_encoder(model)`.")
    if out is not model:
        raise Wrong("return the same model object you were given, frozen in place (no copy).")
    head = {id(p) for p in head_of(model).parameters()}
    head_trainable = [p.requires_grad for p in head_of(model).parameters()]
    rest = {n: p.requires_grad for n, p in model.named_parameters() if id(p) not in head}
    if all(rest.values()) and all(head_trainable):
        if not model.training:
            raise Wrong("model.eval() turns dropout off; it does not stop gradients. Set "
                        "`requires_grad` on the parameters.",
                        ("requires_grad is a flag on each parameter: switch it off for every "
                         "parameter, then back on for the head's."))
        raise Wrong("every parameter still has requires_grad=True: nothing is frozen.",
                    "loop over model.parameters() and set p.requires_grad = False, except "
                    "for the head's (finetune.head(model).parameters()).")
    if not any(head_trainable):
        raise Wrong("the head is frozen too: then nothing can learn. Only the encoder "
                    "(embeddings, layers, pooler) stops; the new head keeps learning.",
                    "after freezing everything, set requires_grad = True on "
                    "finetune.head(model).parameters().")
    if not all(head_trainable):
        raise Wrong("part of the head (its weight or its bias) is frozen; the whole head learns.")
    still = [n for n, trainable in rest.items() if trainable]
    if still:
        pooler = all("pooler" in n for n in still)
        raise Wrong(("the pooler still learns: it belongs to the pre-trained encoder (it was "
                     "in the checkpoint), so a linear probe freezes it too." if pooler else
                     f"{len(still)} encoder tensors still learn (e.g. {still[0]}): freeze every "
                     "parameter outside the head."),
                    "freeze by parameter, not by module name: everything whose id is not "
                    "among the head's parameters gets requires_grad = False.")
    # behaviour: a backward pass reaches the head and nothing else
    ids = torch.randint(1, 60, (2, 7), generator=fresh_generator())
    loss = model(input_ids=ids, labels=torch.tensor([0, 2])).loss
    loss.backward()
    if any(p.grad is not None for n, p in model.named_parameters() if id(p) not in head):
        raise Wrong("gradients still reach the encoder after your function ran.")
    if any(p.grad is None for p in head_of(model).parameters()):
        raise Wrong("no gradient reaches the head: it must stay trainable.")


@exercise("04.2", "mean pooling over real tokens", reference=reference_mean_pool)
def check_mean_pool(fn):
    g = fresh_generator()
    batch, length, hidden = 4, 7, 5
    h = torch.randn(batch, length, hidden, generator=g) + 3.0      # padding rows are not 0
    lengths = torch.tensor([7, 3, 1, 5])
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()   # 1 = real token
    out = fn(h.clone(), mask.clone())
    want = reference_mean_pool(h, mask)
    out = torch.as_tensor(out)
    if out.shape != want.shape:
        raise Wrong(f"the result has shape {tuple(out.shape)}; one vector per sentence is "
                    f"{tuple(want.shape)} (batch, hidden): average over dimension 1, the tokens.")
    if torch.allclose(out.double(), h.mean(1).double(), atol=1e-5):
        raise Wrong("you averaged over every position, padding included: a short sentence "
                    "then mixes in the vectors of its [PAD] tokens.",
                    "multiply by the mask (unsqueezed to (batch, length, 1)) before summing "
                    "over the tokens, then divide by the number of real tokens.")
    if torch.allclose(out.double(), (h * mask[..., None]).sum(1).double(), atol=1e-4):
        raise Wrong("that is the sum of the real tokens' vectors; divide by how many there "
                    "are (mask.sum(1)), so long and short sentences are on one scale.")
    if torch.allclose(out.double(), ((h * mask[..., None]).sum(1) / length).double(), atol=1e-5):
        raise Wrong("you divided by the padded length; divide each sentence by its own number "
                    "of real tokens (mask.sum(1, keepdim=True)).")
    close(out, want, what="the pooled vectors",
          hint="each row is the mean of that sentence's token vectors where the mask is 1.",
          stronger=("zero the padding's vectors with the mask (it needs a last dimension of size 1 "
                    "to broadcast), sum over the positions, divide by each row's count of real "
                    'tokens'))
