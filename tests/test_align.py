"""Learning from preferences: SFT data and loss, sampling, preference pairs, the
Bradley-Terry reward loss, DPO (checked against the `trl` library) and the KL estimate,
on tiny random Llama models, the offline tiny-mlm tokenizer and real review sentences."""

import copy
import math

import pytest
import torch

from labkit import align, data, train
from tiny_models import tiny_llama, tok  # noqa: F401 (tok is a fixture)


@pytest.fixture(scope="module")
def texts():
    return data.load("movie_reviews")["train"].select(range(64))["text"]


def split(texts, words=3):
    prompts = [" ".join(t.split()[:words]) for t in texts]
    rest = [" " + " ".join(t.split()[words:]) for t in texts]
    return prompts, rest


# --------------------------------------------------------------------------- SFT
def test_sft_rows_mask_the_prompt_and_the_loss_matches_hugging_face(tok, texts):
    prompts, rest = split(texts[:4])
    rows = align.sft_rows(tok, prompts, rest, max_completion_tokens=6)
    for r, p in zip(rows, prompts):
        n_prompt = len(tok(p, add_special_tokens=False)["input_ids"])
        assert r["completion_mask"] == [0] * n_prompt + [1] * (len(r["input_ids"]) - n_prompt)
        assert sum(r["completion_mask"]) <= 6
    batch = align.collate(tok.pad_token_id)(rows)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["completion_mask"].shape
    model = tiny_llama(len(tok))
    one = align.collate(tok.pad_token_id)(rows[:1])        # no padding: HF's loss is comparable
    labels = one["input_ids"].masked_fill(one["completion_mask"] == 0, -100)
    hf = model(input_ids=one["input_ids"], attention_mask=one["attention_mask"], labels=labels).loss
    assert torch.allclose(align.sft_loss(model, one), hf, atol=1e-5)
    # logits made only from the first completion position: the same scored numbers
    full = align.token_logps(model, batch["input_ids"], batch["attention_mask"])
    kept = align.token_logps(model, batch["input_ids"], batch["attention_mask"],
                             batch["completion_mask"])
    scored = batch["completion_mask"][:, 1:].bool()
    assert kept.shape == full.shape and torch.allclose(kept[scored], full[scored], atol=1e-5)
    assert batch["completion_mask"][:, 1].sum() == 0 and (kept[:, 0] == 0).all()
    # padding on the right does not change a row's log-probability
    alone = align.sequence_logps(model, one)
    padded = align.sequence_logps(model, batch)[:1]
    assert torch.allclose(alone, padded, atol=1e-4)


def test_sft_rows_fail_clearly(tok):
    with pytest.raises(ValueError, match="one completion per prompt"):
        align.sft_rows(tok, ["a"], ["b", "c"])
    with pytest.raises(ValueError, match="empty prompt or completion"):
        align.sft_rows(tok, ["a film"], [""])


# --------------------------------------------------------------------------- sampling
def test_sample_shapes_repeatable_and_leaves_the_global_stream(tok):
    model = tiny_llama(len(tok))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = align.sample(model, tok, ["a fine", "the worst"], n=3, max_new_tokens=5, seed=1)
    after = torch.rand(1)
    b = align.sample(model, tok, ["a fine", "the worst"], n=3, max_new_tokens=5, seed=1)
    c = align.sample(model, tok, ["a fine", "the worst"], n=3, max_new_tokens=5, seed=2)
    assert len(a) == 2 and all(len(x) == 3 for x in a)
    assert a == b and a != c
    assert torch.equal(before, after)
    assert tok.padding_side == "right"


# --------------------------------------------------------------------------- preferences
def test_preference_pairs():
    comps = [["a", "b", "c"], ["d", "e"]]
    scores = [[0.2, 0.9, 0.5], [0.5, 0.5]]
    pairs = align.preference_pairs(["p", "q"], comps, scores)
    assert pairs == [{"prompt": "p", "chosen": "b", "rejected": "a", "margin": pytest.approx(0.7)}]
    every = align.preference_pairs(["p", "q"], comps, scores, mode="all")
    assert {(x["chosen"], x["rejected"]) for x in every} == {("b", "c"), ("b", "a"), ("c", "a")}
    assert len(align.preference_pairs(["p"], comps[:1], scores[:1], min_margin=0.8)) == 0
    with pytest.raises(ValueError, match="at least two"):
        align.preference_pairs(["p"], [["a"]], [[1.0]])
    with pytest.raises(ValueError, match="unknown mode"):
        align.preference_pairs(["p"], comps[:1], scores[:1], mode="best")


# --------------------------------------------------------------------------- reward model
def test_bradley_terry_loss():
    r = torch.tensor([0.3, -1.0])
    assert math.isclose(float(align.bradley_terry_loss(r, r)), math.log(2), rel_tol=1e-6)
    assert float(align.bradley_terry_loss(r + 20, r)) < 1e-6
    assert float(align.bradley_terry_loss(r, r + 20)) == pytest.approx(20, rel=1e-3)
    chosen = torch.zeros(3, requires_grad=True)
    align.bradley_terry_loss(chosen, torch.zeros(3)).backward()
    assert (chosen.grad < 0).all()          # descending the loss raises the chosen reward


def test_features_pool_the_chosen_block_over_real_tokens_only(tok, texts):
    prompts, rest = split(texts[:5])
    model = tiny_llama(len(tok))
    rows = align.sft_rows(tok, prompts, rest, max_completion_tokens=6)
    one = align.collate(tok.pad_token_id)(rows[:1])
    states = model(**{k: one[k] for k in ("input_ids", "attention_mask")},
                   output_hidden_states=True).hidden_states        # 2 blocks: 3 states
    feats = align.features(model, tok, prompts, rest, max_completion_tokens=6, batch_size=2)
    assert feats.shape == (5, 32)
    assert torch.allclose(feats[0], states[1][0].mean(0), atol=1e-5)       # middle by default
    last = align.features(model, tok, prompts, rest, layer=-1, max_completion_tokens=6)
    assert torch.allclose(last[0], states[-1][0].mean(0), atol=1e-5)
    assert torch.allclose(last, align.features(model, tok, prompts, rest, layer=2,
                                               max_completion_tokens=6, batch_size=5), atol=1e-5)


def test_reward_head_learns_a_direction_through_fit():
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(16, generator=g)
    x = torch.randn(400, 16, generator=g)
    y = torch.randn(400, 16, generator=g)
    better = (x @ direction) > (y @ direction)
    chosen = torch.where(better[:, None], x, y)
    rejected = torch.where(better[:, None], y, x)
    rows = [{"chosen": c, "rejected": r} for c, r in zip(chosen, rejected)]
    head = align.RewardHead(16, seed=0)
    before = train.evaluate(head, rows[300:], batch_size=50)["loss"]
    assert before == pytest.approx(math.log(2), abs=0.05)       # small random weights
    train.fit(head, rows[:300], epochs=20, batch_size=32, lr=1e-2, device="cpu", seed=0)
    after = align.pair_accuracy(head, chosen[300:], rejected[300:])
    ev = train.evaluate(head, rows[300:], batch_size=50)
    assert after > 0.9 and ev["loss"] < before - 0.3


# --------------------------------------------------------------------------- DPO
def test_dpo_loss_by_hand():
    pc, pr = torch.tensor([-5.0, -3.0]), torch.tensor([-6.0, -2.0])
    rc, rr = torch.tensor([-5.5, -3.0]), torch.tensor([-5.0, -2.5])
    losses = align.dpo_loss(pc, pr, rc, rr, beta=0.5)
    margin = 0.5 * ((pc - rc) - (pr - rr))
    assert torch.allclose(losses, torch.log1p(torch.exp(-margin)))
    assert torch.allclose(align.implicit_reward(pc, rc, 0.5), 0.5 * (pc - rc))
    same = align.dpo_loss(pc, pr, pc, pr, beta=0.1)     # policy = reference
    assert torch.allclose(same, torch.full((2,), math.log(2)))
    with pytest.raises(ValueError, match="beta"):
        align.DPOLoss(beta=0)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_matches_trl(tok, texts, beta):
    pytest.importorskip("trl")
    reference = tiny_llama(len(tok), seed=0)
    policy = tiny_llama(len(tok), seed=1)              # a different model: the loss is not log 2
    prompts, rest = split(texts[:8])
    pairs = [{"prompt": p, "chosen": c, "rejected": r}
             for p, c, r in zip(prompts[:4], rest[:4], rest[4:8])]
    diff = align.trl_loss_parity(policy, reference, tok, pairs, beta=beta, batch_size=2)
    assert diff < 1e-5
    if beta == 0.1:    # a wrong loss of the learner's is caught, not replaced by ours
        wrong = align.trl_loss_parity(policy, reference, tok, pairs, beta=beta, batch_size=2,
                                      loss=lambda pc, pr, rc, rr, b: align.dpo_loss(pr, pc, rr, rc, b))
        assert wrong > 1e-3


def test_kl_estimate_and_best_of_n(tok):
    model = tiny_llama(len(tok))
    other = tiny_llama(len(tok), seed=3)
    prompts = ["a fine film", "the worst"] * 4
    comps = [c[0] for c in align.sample(model, tok, prompts, max_new_tokens=6, seed=0)]
    comps = [c if c.strip() else " film" for c in comps]
    assert align.kl_estimate(model, model, tok, prompts, comps) == pytest.approx(0, abs=1e-6)
    assert align.kl_estimate(model, other, tok, prompts, comps) != pytest.approx(0, abs=1e-3)
    assert align.best_of_n_kl(1) == 0
    assert align.best_of_n_kl(4) == pytest.approx(math.log(4) - 0.75)
    assert align.best_of_n([["a", "b"], ["c", "d"]], [[0, 1], [5, -1]]) == ["b", "c"]


# --------------------------------------------------------------------------- end to end
def test_sft_then_dpo_end_to_end_on_a_tiny_model(tok, texts):
    """SFT lowers the demonstrations' loss; DPO then makes the policy prefer the chosen
    continuations over the rejected ones more than the reference does."""
    pad = tok.pad_token_id
    prompts, rest = split(texts[:32])
    model = tiny_llama(len(tok))
    rows = align.sft_rows(tok, prompts, rest, max_completion_tokens=8)
    before = train.evaluate(model, rows, loss_fn=align.sft_loss, collate_fn=align.collate(pad))
    train.fit(model, rows, loss_fn=align.sft_loss, collate_fn=align.collate(pad), epochs=5,
              batch_size=8, lr=3e-3, device="cpu", seed=0)
    after = train.evaluate(model, rows, loss_fn=align.sft_loss, collate_fn=align.collate(pad))
    assert after["loss"] < before["loss"] - 0.5

    reference = copy.deepcopy(model)
    pairs = [{"prompt": p, "chosen": c, "rejected": r}
             for p, c, r in zip(prompts[:16], rest[:16], rest[16:32])]
    prow = align.add_reference_logps(reference, align.pair_rows(tok, pairs, max_completion_tokens=8), pad)
    assert {"ref_chosen_logps", "ref_rejected_logps"} <= set(prow[0])
    loss_fn = align.DPOLoss(beta=0.5)
    start = train.evaluate(model, prow, loss_fn=loss_fn, collate_fn=align.pair_collate(pad))
    assert start["loss"] == pytest.approx(math.log(2), abs=1e-4)    # policy = reference
    train.fit(model, prow, loss_fn=loss_fn, collate_fn=align.pair_collate(pad), epochs=4,
              batch_size=4, lr=3e-3, device="cpu", seed=0)
    end = train.evaluate(model, prow, loss_fn=loss_fn, collate_fn=align.pair_collate(pad))
    assert end["loss"] < math.log(2) - 0.1 and end["accuracy"] > 0.8
