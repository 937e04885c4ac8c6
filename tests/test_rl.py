"""On-policy RL: sampling that keeps token ids, the exact KL, RLOO advantages, the RL loss
(checked against trl's RLOOTrainer), PPO's clip, best-of-n without bias and the paired
bootstrap, on tiny random Llama models and the offline tiny-mlm tokenizer."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch

from labkit import align, peft, rl
from tiny_models import tiny_llama, tok  # noqa: F401 (tok is a fixture)


PROMPTS = ["a sensitive and astute", "the film is", "it never quite"]


def test_generate_keeps_the_sampled_ids_and_is_repeatable(tok):
    model = tiny_llama(len(tok))
    b = rl.generate(model, tok, PROMPTS, n=2, max_new_tokens=5, seed=3)
    assert b["input_ids"].shape[0] == 6 and len(b["texts"]) == 6
    assert (b["completion_mask"].sum(1) == 5).all()
    for i, p in enumerate(PROMPTS):      # rows of a prompt are next to each other
        ids = tok(p, add_special_tokens=False)["input_ids"]
        for j in (2 * i, 2 * i + 1):
            assert b["input_ids"][j, :len(ids)].tolist() == ids
    again = rl.generate(model, tok, PROMPTS, n=2, max_new_tokens=5, seed=3)
    assert torch.equal(b["input_ids"], again["input_ids"])
    assert not torch.equal(b["input_ids"], rl.generate(model, tok, PROMPTS, n=2, max_new_tokens=5,
                                                       seed=4)["input_ids"])


def test_sample_next_draws_each_index_with_its_probability_and_never_a_zero_one():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    torch.manual_seed(0)
    draws = torch.stack([rl.sample_next(probs) for _ in range(20_000)])    # (draws, rows)
    freq = torch.bincount(draws[:, 0], minlength=5).float() / len(draws)
    # three standard errors of a frequency near 0.5 over 20,000 draws: 0.011
    assert torch.allclose(freq, probs[0], atol=0.011), freq
    assert freq[1] == 0 and freq[4] == 0            # weight 0: never drawn
    assert (draws[:, 1] == 4).all()
    torch.manual_seed(1)                            # weights need not sum to 1: the
    scaled = torch.stack([rl.sample_next(probs[:1] * 7) for _ in range(200)])   # same draws
    torch.manual_seed(1)
    assert torch.equal(scaled, torch.stack([rl.sample_next(probs[:1]) for _ in range(200)]))


def test_generate_samples_the_model_distribution_and_never_the_blocked_end_of_text(tok):
    """What generate draws for the first new token follows the model's own next-token
    distribution (as do_sample=True would), and the end of text is never drawn."""
    model = tiny_llama(len(tok))
    b = rl.generate(model, tok, ["the film is"] * 3000, max_new_tokens=1, seed=0, batch_size=1000)
    first = b["input_ids"][:, -1]
    ids = torch.tensor([tok("the film is", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        p = model(input_ids=ids).logits[0, -1].softmax(-1)
    p[tok.eos_token_id] = 0
    p = p / p.sum()
    top = p.topk(3).indices
    freq = torch.bincount(first, minlength=len(p)).float() / len(first)
    assert (freq[top] - p[top]).abs().max() < 4 * (p[top] * (1 - p[top]) / len(first)).sqrt().max()
    assert freq[tok.eos_token_id] == 0


def test_sequence_kl_is_exact_zero_for_the_same_model_and_matches_the_log_ratio_on_average(tok):
    ref = tiny_llama(len(tok), seed=0)
    pol = tiny_llama(len(tok), seed=0)
    b = rl.generate(pol, tok, PROMPTS, n=2, max_new_tokens=4, seed=0)
    assert torch.allclose(rl.sequence_kl(pol, ref, b), torch.zeros(6), atol=1e-6)
    with torch.no_grad():      # move the policy: the exact KL is positive on every sample
        for p in pol.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    many = rl.generate(pol, tok, PROMPTS * 40, n=1, max_new_tokens=3, seed=1)
    exact = rl.sequence_kl(pol, ref, many)
    assert (exact > 0).all()
    _, sampled = rl.log_ratios(pol, ref, many)       # the same expectation, noisier
    m, se = rl.mean_se(exact)
    ms, ses = rl.mean_se(sampled)
    assert abs(m - ms) < 3 * math.hypot(se, ses), (m, ms, se, ses)
    assert se < ses


def test_sequence_kl_equals_the_kl_over_every_position_of_one_full_forward(tok):
    """sequence_kl reads rows in order of length, each chunk padded to its own longest,
    and makes distributions only from the first completion position on: the numbers are
    those of the plain formula, every position of the whole right-padded batch."""
    ref = tiny_llama(len(tok), seed=0)
    pol = tiny_llama(len(tok), seed=1)
    prompts = ["a", "the film is long and", "it never quite", "an astute , sensitive and very"]
    b = rl.generate(pol, tok, prompts, n=2, max_new_tokens=4, seed=0)
    with torch.no_grad():
        kw = dict(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        logp = pol(**kw).logits[:, :-1].float().log_softmax(-1)
        logq = ref(**kw).logits[:, :-1].float().log_softmax(-1)
        expect = ((logp.exp() * (logp - logq)).sum(-1) * b["completion_mask"][:, 1:]).sum(-1)
    assert torch.allclose(rl.sequence_kl(pol, ref, b, batch_size=3), expect, atol=1e-5)
    assert torch.allclose(rl.sequence_kl(pol, ref, rl.select(b, [5, 0, 2])), expect[[5, 0, 2]],
                          atol=1e-5)


def test_rloo_advantages_leave_one_out():
    r = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0])
    a = rl.rloo_advantages(r, 3)
    assert torch.allclose(a, torch.tensor([1 - 4.0, 2 - 3.5, 6 - 1.5, 0 - 1.5, 0 - 1.5, 3 - 0.0]))
    assert torch.allclose(a.reshape(2, 3).sum(1), torch.zeros(2))
    with pytest.raises(ValueError, match="groups"):
        rl.rloo_advantages(r, 4)


def test_rl_loss_gradient_is_reinforce_and_ppo_clip_equals_it_in_one_pass():
    g = torch.Generator().manual_seed(0)
    logps = (-10 * torch.rand(8, generator=g)).requires_grad_()
    scores, ratio = torch.randn(8, generator=g), torch.rand(8, generator=g)
    loss = rl.rl_loss(logps, logps.detach(), scores, ratio, k=4, beta=0.1)
    loss.backward()
    adv = rl.rloo_advantages(scores - 0.1 * ratio, 4)
    assert torch.allclose(logps.grad, -adv / 8, atol=1e-6)
    lp2 = logps.detach().clone().requires_grad_()
    rl.ppo_clip_loss(lp2, lp2.detach(), adv).backward()
    assert torch.allclose(lp2.grad, logps.grad, atol=1e-6)
    # a later pass: a ratio far above 1 + epsilon with a positive advantage gets no gradient
    lp3 = (logps.detach() + 1.0).requires_grad_()
    rl.ppo_clip_loss(lp3, logps.detach(), adv, epsilon=0.2).backward()
    assert torch.all(lp3.grad[adv > 0] == 0)


def test_best_of_n_expectation_averages_every_subset():
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    for n in (1, 2, 4, 6):
        brute = np.array([np.mean([v[p, max(s, key=lambda i: r[p, i])]
                                   for s in itertools.combinations(range(6), n)]) for p in range(3)])
        assert np.allclose(rl.best_of_n_expectation(r, v, n), brute)
    assert np.allclose(rl.best_of_n_expectation(r, v, 1), v.mean(1))
    assert math.isclose(rl.best_of_n_weights(8, 4).sum(), 1.0)


def test_paired_gain_pools_seeds_and_its_interval_covers_a_known_gain():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(3, 300))
    b = a + 0.05 + rng.normal(0, 0.1, size=(3, 300))
    g = rl.paired_gain(a, b)
    assert g["n"] == 300 and g["ci_low"] < 0.05 < g["ci_high"] and g["ci_low"] > 0
    assert "resolved, above zero" in rl.verdict(g, "x")
    null = rl.paired_gain(a[0], a[0] + rng.normal(0, 0.1, 300))
    assert null["ci_low"] < 0 < null["ci_high"] or abs(null["gain"]) < 0.03


def test_rl_loss_matches_trl_rloo_and_a_wrong_loss_does_not(tok):
    ref = tiny_llama(len(tok), seed=0)
    pol = copy.deepcopy(ref)
    peft.apply_lora(pol, r=4, alpha=8, target_modules=("q_proj", "v_proj"), modules_to_save=(), seed=0)
    with torch.no_grad():
        for layer in peft.lora_layers(pol).values():
            layer.lora_B.weight.add_(torch.randn(layer.lora_B.weight.shape) * 0.05)

    def reward(prompts, completions):
        return [len(c) / 10 - p.count(" ") for p, c in zip(prompts, completions)]

    kw = dict(k=4, beta=0.1, max_new_tokens=6, nudge=0.002)
    assert rl.trl_loss_parity(pol, ref, tok, PROMPTS, reward, **kw) < 1e-5

    def no_penalty(logps, old, scores, ratio, k, beta):
        return rl.rl_loss(logps, old, scores, ratio, k, 0.0)
    assert rl.trl_loss_parity(pol, ref, tok, PROMPTS, reward, loss=no_penalty, **kw) > 1e-4


def test_the_readme_summary_is_generated_from_the_rows_and_says_only_what_intervals_show():
    def row(nb, metric, seed, value, **kw):
        return {"notebook": nb, "metric": metric, "seed": seed, "value": value, "profile": "quick",
                "run": f"{nb}-{seed}", "time": f"2026-12-0{seed + 1}", **kw}
    rows = [row("11_preference_optimisation", "judge_gain_dpo", 0, 0.05, ci_low=0.01, ci_high=0.09, n=256),
            row("11_preference_optimisation", "judge_gain_dpo", 1, 0.02, ci_low=-0.02, ci_high=0.06, n=256),
            row("11_preference_optimisation", "kl_rl", 0, 1.5, se=0.1),
            row("11_preference_optimisation", "rl_reward_first", 0, -0.2),
            row("11_preference_optimisation", "rl_reward_last", 0, 0.3),
            row("10_alignment", "labeller_rate_sft", 0, 0.6),
            row("11_preference_optimisation", "labeller_rate_rl", 0, 0.7),
            row("11_preference_optimisation", "reward_gain_dpo", 0, 0.25)]
    text = rl.summary(rows)
    assert "DPO over SFT" in text and "seed 0 rose by +0.050" in text
    assert "seed 1 changed by +0.020" in text and "not resolved" in text
    assert "1.50 ± 0.10 nats" in text and "-0.200 -> +0.300" in text
    assert "SFT -> RL (the same prompts): seed 0 0.600 -> 0.700" in text
    assert "gain over SFT, DPO (the same prompts and sampling seed): seed 0 +0.250" in text
    readme = f"a\n{rl.SUMMARY_START}\nold\n{rl.SUMMARY_END}\nb"
    assert rl.fill_readme(readme, rows) == f"a\n{rl.SUMMARY_START}\n{text}\n{rl.SUMMARY_END}\nb"


def test_pooled_prompt_scores_leave_out_a_seed_kept_from_another_setting(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    now, before = {"n_eval": 3}, {"n_eval": 4}
    rl.save_prompt_scores("10_alignment", "quick", 0, {"sft": np.array([0.1, 0.2, 0.3])}, now)
    rl.save_prompt_scores("10_alignment", "quick", 1, {"sft": [0.5, 0.5, 0.5, 0.5]}, before)
    rl.save_prompt_scores("10_alignment", "quick", 2, {"sft": [0.4, 0.2, 0.0]}, now)
    pooled = rl.pooled_prompt_scores("10_alignment", "quick", [0, 1, 2, 3], now)
    assert sorted(pooled) == [0, 2]                       # seed 3 never ran; seed 1 is stale
    assert pooled[0]["sft"] == [0.1, 0.2, 0.3]
    assert "left out seed(s) [1]" in capsys.readouterr().out
    g = rl.paired_gain([pooled[s]["sft"] for s in pooled], [pooled[s]["sft"] for s in pooled])
    assert g["gain"] == 0
