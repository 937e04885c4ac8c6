"""The batch-and-loss contract of `fit`: dim 0 of a batch is the example (a preference
pair is one example) and a loss says its denominator, so the first SGD update is the same
whole or in micro-batches, for SFT, DPO, a causal LM with labels, a masked LM and a
classifier, and equals the gradient of the mean over the whole batch."""

import copy

import pytest
import torch
import transformers

import tiny_models
from labkit import align, batching, train

VOCAB = 40


def tiny_llama(seed=0):
    return tiny_models.tiny_llama(VOCAB, seed, hidden=16, layers=1, heads=2, kv_heads=1,
                                  positions=64)


def tiny_bert(task, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32,
                                  num_hidden_layers=1, num_attention_heads=2,
                                  max_position_embeddings=64, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0, num_labels=3)
    cls = (transformers.BertForMaskedLM if task == "mlm"
           else transformers.BertForSequenceClassification)
    return cls(cfg).eval()


def frozen_mode(model):
    model.train = lambda mode=True: model       # keep dropout off inside fit
    return model


def first_update(make, data, **kw):
    """The change of every parameter after one plain-SGD step of `fit` (lr 1)."""
    model = frozen_mode(make())
    before = {k: v.clone() for k, v in model.named_parameters()}
    train.fit(model, data, max_steps=1, batch_size=len(data), warmup=0, clip=None,
              rollback=False, device="cpu", optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
              **kw)
    return {k: v.detach() - before[k] for k, v in model.named_parameters()}


def assert_same(a, b, what):
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-4), (what, k,
                                                                  float((a[k] - b[k]).abs().max()))


def manual_update(make, loss_of_whole_batch):
    """-grad of the loss written out over the whole batch (what one SGD step at lr 1 does)."""
    model = make()
    loss_of_whole_batch(model).backward()
    return {k: -p.grad if p.grad is not None else torch.zeros_like(p)
            for k, p in model.named_parameters()}


# --------------------------------------------------------------------------- rows
def sft_rows(n=6):
    """Prompts and completions of very different lengths (1 to 6 completion tokens)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        p, c = 2 + i % 3, 1 + (5 * i) % 6
        ids = torch.randint(1, VOCAB, (p + c,), generator=g).tolist()
        rows.append({"input_ids": ids, "completion_mask": [0] * p + [1] * c})
    return rows


def pair_rows(n=6):
    rows = sft_rows(2 * n)
    pairs = [{"chosen": rows[i], "rejected": rows[n + i]} for i in range(n)]
    return align.add_reference_logps(tiny_llama(seed=1), pairs, pad_id=0)


def lm_rows(n=6):
    g = torch.Generator().manual_seed(2)
    out = []
    for i in range(n):
        ids = torch.randint(1, VOCAB, (8,), generator=g)
        mask = torch.ones(8, dtype=torch.long)
        mask[2 + i:] = 0                             # 2 to 7 real tokens
        out.append({"input_ids": ids, "attention_mask": mask,
                    "labels": ids.masked_fill(mask == 0, -100)})
    return out


def mlm_rows(n=6):
    out = []
    for row in lm_rows(n):
        labels = torch.full_like(row["input_ids"], -100)
        k = int(row["attention_mask"].sum())
        labels[: 1 + k // 3] = row["input_ids"][: 1 + k // 3]   # 1 to 3 masked tokens
        out.append({**row, "labels": labels})
    return out


def clf_rows(n=6):
    return [{**{k: v for k, v in r.items() if k != "labels"}, "labels": torch.tensor(i % 3)}
            for i, r in enumerate(lm_rows(n))]


def summed(model, batch):
    """A loss that returns its sum and its number of items (the other way to say it)."""
    loss, out = batching.default_loss(model, batch)
    n = batching.loss_weight(batch, model)
    return batching.LossSum(loss * n, n, out)


# --------------------------------------------------------------------------- tests
def test_sft_loss_micro_batches_give_the_update_of_the_token_mean():
    rows, pad = sft_rows(), align.collate(0)
    whole = first_update(tiny_llama, rows, loss_fn=align.sft_loss, collate_fn=pad)
    expected = manual_update(tiny_llama, lambda m: align.sft_loss(m, pad(rows)))
    assert_same(whole, expected, "whole batch vs the token mean")
    for micro in (1, 2, 4):
        cut = first_update(tiny_llama, rows, loss_fn=align.sft_loss, collate_fn=pad,
                           micro_batch_size=micro)
        assert_same(whole, cut, f"sft micro {micro}")


@pytest.mark.parametrize("micro", [1, 2])
def test_dpo_pairs_stay_whole_in_micro_batches(micro):
    rows, pad = pair_rows(), align.pair_collate(0)
    batch = pad(rows)
    assert batch["input_ids"].shape[:2] == (len(rows), 2)     # dim 0 is the pair
    loss_fn = align.DPOLoss(beta=0.5)
    whole = first_update(tiny_llama, rows, loss_fn=loss_fn, collate_fn=pad)
    expected = manual_update(tiny_llama, lambda m: loss_fn(m, batch)[0])
    assert_same(whole, expected, "whole batch vs the pair mean")
    cut = first_update(tiny_llama, rows, loss_fn=loss_fn, collate_fn=pad, micro_batch_size=micro)
    assert_same(whole, cut, f"dpo micro {micro}")


def test_causal_lm_with_labels_counts_the_shifted_labels():
    rows = lm_rows()
    assert batching.loss_weight(train.default_collate(rows), tiny_llama()) == sum(
        int(r["attention_mask"].sum()) - 1 for r in rows)
    whole = first_update(tiny_llama, rows)
    expected = manual_update(tiny_llama, lambda m: m(**train.default_collate(rows)).loss)
    assert_same(whole, expected, "whole batch vs Hugging Face's loss")
    for micro in (1, 4):
        assert_same(whole, first_update(tiny_llama, rows, micro_batch_size=micro), micro)


@pytest.mark.parametrize("loss_fn", [None, summed], ids=["mean", "sum-and-items"])
@pytest.mark.parametrize("kind", ["masked-lm", "classifier"])
def test_masked_lm_and_classifier_micro_batches(kind, loss_fn):
    make, rows = ((lambda: tiny_bert("mlm")), mlm_rows()) if kind == "masked-lm" else \
        ((lambda: tiny_bert("clf")), clf_rows())
    whole = first_update(make, rows, loss_fn=loss_fn)
    expected = manual_update(make, lambda m: m(**train.default_collate(rows)).loss)
    assert_same(whole, expected, f"{kind}: whole batch vs the model's mean")
    for micro in (1, 4):
        assert_same(whole, first_update(make, rows, loss_fn=loss_fn, micro_batch_size=micro),
                    (kind, micro))


def test_a_batch_whose_tensors_disagree_on_dim_0_is_named():
    """The old pair layout (2B sequences, B labels) cut into micro-batches: a clear error
    instead of pairing chosen rows with chosen rows."""
    def old_layout(rows):
        return {"input_ids": torch.zeros(2 * len(rows), 3, dtype=torch.long),
                "labels": torch.ones(len(rows), dtype=torch.long)}

    with pytest.raises(ValueError, match="dim 0 of every tensor must be the example"):
        first_update(tiny_llama, list(range(4)), collate_fn=old_layout, micro_batch_size=2,
                     loss_fn=lambda m, b: m(input_ids=b["input_ids"]).logits.sum())


class EchoForCausalLM(torch.nn.Module):
    """A 'causal LM' that knows the next token: its logits at t point at token t + 1."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(5.0))

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = torch.nn.functional.one_hot(input_ids.roll(-1, 1), VOCAB).float() * self.scale
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1),
                                                 labels[:, 1:].flatten())
        return transformers.modeling_outputs.CausalLMOutput(loss=loss, logits=logits)


def test_evaluate_scores_a_causal_lm_on_the_next_token():
    rows = lm_rows()
    out = train.evaluate(EchoForCausalLM(), rows, device="cpu")
    assert out["accuracy"] == 1.0                 # unshifted, it would be about 1 / VOCAB
    model = tiny_llama()
    batch = train.default_collate(rows)
    with torch.no_grad():
        assert train.evaluate(model, rows, device="cpu")["loss"] == pytest.approx(
            float(model(**batch).loss), rel=1e-5)


def test_a_rollback_restores_a_hugging_face_model():
    """Snapshots hold the trainable parameters and the persistent buffers; a transformers
    model also has non-persistent ones (position ids), which must not get in the way."""
    calls = {"n": 0}

    def spiky(model, batch):
        calls["n"] += 1
        loss, out = batching.default_loss(model, batch)
        return (loss + 50.0, out) if calls["n"] == 14 else (loss, out)

    hist = train.fit(tiny_bert("clf"), clf_rows(), loss_fn=spiky, max_steps=16, batch_size=2,
                     lr=1e-3, snapshot_every=5, device="cpu")
    assert any("loss spike" in e and "rolled back to step 10" in e for e in hist.events)
    assert hist.steps == 16
