"""Adaptive pre-training on real data: the 4.4M-parameter offline masked LM, movie text."""

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from labkit import adapt, data, models


@pytest.fixture(scope="module")
def texts():
    reviews = data.load("movie_reviews", source="bundled")
    return {"train": list(reviews["train"].select(range(256))["text"]),
            "held": list(reviews["validation"].select(range(96))["text"])}


@pytest.fixture()
def lm():
    return models.load("tiny-mlm", task="masked-lm")


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return models.load("tiny-mlm", task="sequence-classification", num_labels=2)[0]


def test_perplexity_uses_the_same_masks_every_time(lm, texts):
    model, tok = lm
    a = adapt.perplexity(model, tok, texts["held"], block_size=32)
    b = adapt.perplexity(model, tok, texts["held"], block_size=32)
    assert a == b
    assert a["perplexity"] == pytest.approx(torch.tensor(a["loss"]).exp().item(), rel=1e-6)
    few = adapt.perplexity(model, tok, texts["held"], block_size=32, max_blocks=5)
    assert few["blocks"] == 5 < a["blocks"]


def test_continue_pretraining_lowers_held_out_perplexity(lm, texts):
    model, tok = lm
    before = adapt.perplexity(model, tok, texts["held"], block_size=32)["perplexity"]
    hist = adapt.continue_pretraining(model, tok, texts["train"], steps=12, batch_size=16,
                                      block_size=32, lr=5e-4, seed=0, device="cpu")
    after = adapt.perplexity(model, tok, texts["held"], block_size=32)["perplexity"]
    assert hist.steps == 12 and all(torch.isfinite(torch.tensor(r["loss"])) for r in hist.train)
    assert after < 0.8 * before, (before, after)


def test_continue_pretraining_is_repeatable(texts):
    runs = []
    for _ in range(2):
        model, tok = models.load("tiny-mlm", task="masked-lm")
        adapt.continue_pretraining(model, tok, texts["train"][:64], steps=2, batch_size=8,
                                   block_size=32, seed=3, device="cpu")
        runs.append(model.bert.encoder.layer[0].output.dense.weight.detach().clone())
    assert torch.equal(*runs)


def test_continue_pretraining_on_blocks_tokenised_once_is_the_same_run(texts):
    """A corpus packed once (`blocks=`) trains exactly as the same texts do."""
    from labkit import mlm

    runs = []
    for how in ("texts", "blocks"):
        model, tok = models.load("tiny-mlm", task="masked-lm")
        corpus = texts["train"][:64]
        kw = ({"blocks": mlm.tokenize_blocks(tok, corpus, 32)} if how == "blocks"
              else {"texts": corpus})
        adapt.continue_pretraining(model, tok, steps=2, batch_size=8, block_size=32, seed=3,
                                   device="cpu", **kw)
        runs.append(model.bert.encoder.layer[0].output.dense.weight.detach().clone())
    assert torch.equal(*runs)
    with pytest.raises(ValueError, match="takes the corpus once"):
        adapt.continue_pretraining(model, tok, corpus, blocks=[], steps=1)
    with pytest.raises(ValueError, match="takes the corpus once"):
        adapt.continue_pretraining(model, tok, steps=1)


def test_continue_pretraining_refuses_bad_input(lm, classifier, texts):
    model, tok = lm
    with pytest.raises(ValueError, match="at least one step"):
        adapt.continue_pretraining(model, tok, texts["train"], steps=0)
    with pytest.raises(ValueError, match="task='masked-lm'"):
        adapt.continue_pretraining(classifier, tok, texts["train"], steps=1)
    with pytest.raises(ValueError, match="no text"):
        adapt.continue_pretraining(model, tok, ["", "  "], steps=1)
    small = BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64))
    with pytest.raises(ValueError, match="tokenizer that was loaded with the model"):
        adapt.perplexity(small, tok, texts["held"])


def test_transplant_copies_the_encoder_and_keeps_pooler_and_head(lm, classifier, texts):
    model, tok = lm
    adapt.continue_pretraining(model, tok, texts["train"][:64], steps=2, batch_size=8,
                               block_size=32, lr=1e-3, seed=0, device="cpu")
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    out = adapt.transplant_encoder(model, classifier)
    assert out is not classifier
    assert torch.equal(out.bert.embeddings.word_embeddings.weight,
                       model.bert.embeddings.word_embeddings.weight)
    assert torch.equal(out.bert.encoder.layer[1].output.dense.weight,
                       model.bert.encoder.layer[1].output.dense.weight)
    assert not torch.equal(out.bert.encoder.layer[1].output.dense.weight,
                           before["bert.encoder.layer.1.output.dense.weight"])
    assert torch.equal(out.bert.pooler.dense.weight, before["bert.pooler.dense.weight"])
    assert torch.equal(out.classifier.weight, before["classifier.weight"])
    for k, v in classifier.state_dict().items():       # the original is left unchanged
        assert torch.equal(v, before[k])
    enc = tok(["A fine film."], return_tensors="pt")
    assert out(**enc).logits.shape == (1, 2)


def test_transplant_refuses_a_different_checkpoint(classifier):
    other = BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=128))
    with pytest.raises(ValueError, match="same one"):
        adapt.transplant_encoder(other, classifier)
    with pytest.raises(ValueError, match="do not share an encoder"):
        adapt.transplant_encoder(torch.nn.Linear(2, 2), classifier)


def test_perplexity_is_exp_of_the_token_weighted_mean(lm, texts):
    model, tok = lm
    seen = []

    def nll(logits, labels):
        out = adapt.token_nll(logits, labels)
        seen.append(out)
        return out

    res = adapt.perplexity(model, tok, texts["held"], block_size=32, batch_size=5, nll_fn=nll)
    total, n = sum(float(s) for s, _ in seen), sum(c for _, c in seen)
    assert n == res["tokens"] and len({c for _, c in seen}) > 1     # batches differ in size
    assert res["perplexity"] == pytest.approx(float(torch.tensor(total / n).exp()), rel=1e-6)
    assert res["perplexity"] == adapt.perplexity(model, tok, texts["held"], block_size=32,
                                                 batch_size=5)["perplexity"]
    picked = adapt.perplexity(model, tok, texts["held"], block_size=32, batch_size=5,
                              combine=lambda s, c: -1.0)
    assert picked["perplexity"] == -1.0
