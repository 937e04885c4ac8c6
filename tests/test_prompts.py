"""Patterns, verbalizers, cloze scoring, prompt fine-tuning and the data-point worth, on
the 4.4M-parameter offline masked LM, a few movie reviews and tiny random causal LMs."""

import copy

import numpy as np
import pytest
import torch

from labkit import data, finetune, models, prompts, train

PATTERN = "{text} It was [MASK]."


@pytest.fixture(scope="module")
def mlm():
    return models.load("tiny-mlm", task="masked-lm")


@pytest.fixture(scope="module")
def reviews():
    r = data.load("movie_reviews")
    return {"train": r["train"].select(range(200)), "validation": r["validation"].select(range(32)),
            "test": r["test"].select(range(48))}


# --------------------------------------------------------------------------- patterns
def test_check_pattern_and_fill():
    assert prompts.check_pattern(PATTERN) == ("", " It was [MASK].")
    assert prompts.fill(PATTERN, " A gem. ", "great") == "A gem. It was great."
    for bad in ("It was [MASK].", "{text} It was good.", "{text} [MASK] [MASK]", 3):
        with pytest.raises(ValueError, match="exactly one"):
            prompts.check_pattern(bad)
    with pytest.raises(ValueError, match="after"):
        prompts.check_pattern("Just [MASK]! {text}", mask_last=True)


def test_verbalizer_ids_are_single_tokens(mlm):
    _, tok = mlm
    ids = prompts.verbalizer_ids(tok, ("terrible", "great"))
    assert tok.convert_ids_to_tokens(ids) == ["terrible", "great"]
    with pytest.raises(ValueError, match="one known token"):
        prompts.verbalizer_ids(tok, ("terrible", "fantasticallyish"))
    with pytest.raises(ValueError, match="one word per label"):
        prompts.verbalizer_ids(tok, "great")
    with pytest.raises(ValueError, match="repeats"):
        prompts.verbalizer_ids(tok, ("great", "great"))


def test_tokenize_keeps_the_pattern_when_the_text_is_long(mlm, reviews):
    _, tok = mlm
    rows = prompts.tokenize(reviews["train"], tok, PATTERN, max_length=16)
    assert set(rows.column_names) >= {"input_ids", "attention_mask", "label"}
    assert rows["label"] == reviews["train"]["label"]
    tail = tok(" It was [MASK].", add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    for ids in rows["input_ids"]:
        assert len(ids) <= 16 and ids.count(tok.mask_token_id) == 1
        assert ids[0] == tok.cls_token_id and ids[-len(tail):] == tail
    short = tok.decode(rows[0]["input_ids"], skip_special_tokens=False)
    assert short.startswith("[CLS]") and short.endswith("it was [MASK]. [SEP]")
    with pytest.raises(ValueError, match="no room"):
        prompts.tokenize(reviews["train"], tok, PATTERN, max_length=5)
    with pytest.raises(ValueError, match="no column"):
        prompts.tokenize(reviews["train"], tok, PATTERN, text_column="review")
    with pytest.raises(ValueError, match="empty"):
        prompts.tokenize(reviews["train"].select([]), tok, PATTERN)


# --------------------------------------------------------------------------- the classifier
def test_cloze_classifier_logits_are_the_mlm_logits_of_the_verbalizer(mlm, reviews):
    model, tok = mlm
    clf = prompts.ClozeClassifier(model, tok)
    rows = prompts.tokenize(reviews["test"], tok, PATTERN)
    batch = finetune.collate(0)([rows[i] for i in range(4)])
    out = clf(**batch)
    assert out.logits.shape == (4, 2) and out.loss.ndim == 0
    with torch.no_grad():
        full = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    where = batch["input_ids"] == tok.mask_token_id
    expect = full[where][:, prompts.verbalizer_ids(tok, prompts.VERBALIZER)]
    assert torch.allclose(out.logits, expect, atol=1e-4)    # only two rows of the output layer
    # PET's loss: cross-entropy over the verbalizer words only
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(expect, batch["labels"]),
                          atol=1e-5)
    no_mask = dict(batch, input_ids=batch["input_ids"].clone())
    no_mask["input_ids"][no_mask["input_ids"] == tok.mask_token_id] = tok.unk_token_id
    with pytest.raises(ValueError, match="exactly one mask"):
        clf(**no_mask)


def test_calibration_subtracts_the_content_free_scores(mlm, reviews):
    model, tok = mlm
    texts, labels = reviews["test"]["text"], reviews["test"]["label"]
    raw = prompts.zero_shot(model, tok, texts, labels, [PATTERN])
    cal = prompts.zero_shot(model, tok, texts, labels, [PATTERN], calibrated=True)
    bias = cal.bias[PATTERN]
    clf = prompts.ClozeClassifier(model, tok)
    assert np.allclose(prompts.calibrate(clf, tok, PATTERN), bias, atol=1e-5)
    # calibrated log-probs = raw log-probs - bias, up to a per-text constant
    diff = (np.exp(raw.scores) / np.exp(raw.scores).sum(1, keepdims=True))
    expect = np.log(diff) - bias
    expect = expect - np.log(np.exp(expect).sum(1, keepdims=True))
    assert np.allclose(cal.scores, expect, atol=1e-4)
    assert 0 <= cal.accuracy <= 1 and set(cal.per_pattern) == {PATTERN}
    with pytest.raises(ValueError, match="one label per text"):
        prompts.zero_shot(model, tok, texts, labels[:3], [PATTERN])


def test_prompt_fine_tuning_trains_through_fit_classifier(mlm, reviews):
    model, tok = mlm
    rows = {k: prompts.tokenize(v, tok, PATTERN, max_length=32) for k, v in reviews.items()}
    clf = prompts.ClozeClassifier(copy.deepcopy(model), tok)
    few = data.sample(rows["train"], 16, seed=0)
    before = train.evaluate(clf, few, collate_fn=finetune.collate(0))["loss"]
    res = finetune.fit_classifier(clf, few, validation=rows["validation"], test=rows["test"],
                                  lr=1e-3, min_steps=6, batch_size=8, evals=1, seed=0)
    assert res.history.steps == 6 and 0 <= res.accuracy <= 1
    assert res.trainable == models.count_parameters(model)      # no new weights
    assert train.evaluate(clf, few, collate_fn=finetune.collate(0))["loss"] < before
    # the original masked LM is untouched
    assert not torch.equal(clf.mlm.bert.embeddings.word_embeddings.weight,
                           model.bert.embeddings.word_embeddings.weight)


# --------------------------------------------------------------------------- causal LMs
def _tiny_causal(kind: str, vocab: int):
    import transformers

    torch.manual_seed(0)
    if kind == "llama":
        cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=2, num_attention_heads=4,
                                       num_key_value_heads=2, max_position_embeddings=128)
        return transformers.LlamaForCausalLM(cfg).eval()
    cfg = transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=128)
    return transformers.GPT2LMHeadModel(cfg).eval()


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_causal_scores_match_reading_each_sequence_alone(mlm, kind):
    _, tok = mlm                     # any tokenizer will do for a random model
    lm = _tiny_causal(kind, len(tok))
    texts = ["A gem.", "Dull , long and far too loud for its own good .", "Fine."]
    patterns = [PATTERN, "{text} All in all, [MASK]!", "Review: {text}[MASK]"]
    verbalizer = ("terrible", "fantastically")       # the second word is several tokens
    got = prompts.causal_scores(lm, tok, texts, patterns, verbalizer, batch_size=2)
    assert got.shape == (3, 3, 2)

    def ids(s):
        return tok(s, add_special_tokens=False)["input_ids"]

    for p, pattern in enumerate(patterns):
        before, after = prompts.check_pattern(pattern)
        middle = after.split("[MASK]")[0]
        for i, text in enumerate(texts):
            for k, word in enumerate(verbalizer):
                context = [tok.cls_token_id] + ids(before + text) + ids(middle.rstrip())
                target = ids(middle[len(middle.rstrip()):] + word)
                with torch.no_grad():
                    lp = lm(torch.tensor([context + target])).logits[0].log_softmax(-1)
                expect = sum(float(lp[len(context) - 1 + j, t]) for j, t in enumerate(target))
                assert got[p, i, k] == pytest.approx(expect, abs=1e-4)
    single = prompts.causal_scores(lm, tok, texts, PATTERN, verbalizer)
    assert np.allclose(single, got[0], atol=1e-5)
    assert prompts.is_causal(lm) and not prompts.is_causal(mlm[0])
    zs = prompts.zero_shot(lm, tok, texts, [1, 0, 1], patterns[:2], verbalizer, calibrated=True)
    assert set(zs.bias) == set(patterns[:2]) and zs.predictions.shape == (3,)
    with pytest.raises(ValueError, match="after"):
        prompts.causal_scores(lm, tok, texts, "Just [MASK]! {text}")


# --------------------------------------------------------------------------- data-point worth
def test_worth_of_a_curve_shifted_by_100_examples_is_100():
    ns = np.arange(0, 1001, 100)
    prompt = (ns, 0.5 + 0.0003 * ns)
    head = (ns + 100, 0.5 + 0.0003 * ns)            # the same accuracies, 100 labels later
    w = prompts.data_points_worth(prompt, head)
    assert w.examples == pytest.approx(100, abs=1e-6)
    assert (w.low, w.high) == pytest.approx((0.5, 0.8))


def test_worth_of_a_three_times_slower_curve():
    prompt = {0: 0.5, 100: 0.7}
    head = {0: 0.5, 300: 0.7}
    # needs: prompt 500(a - 0.5), head 1500(a - 0.5); gap 1000(a - 0.5), mean over
    # [0.5, 0.7] = 1000 * 0.1 = 100
    assert prompts.data_points_worth(prompt, head).examples == pytest.approx(100, rel=1e-6)
    # the exercise of notebook 07: 22.5
    ex = prompts.data_points_worth({10: 0.6, 20: 0.7, 40: 0.8},
                                   {10: 0.5, 20: 0.6, 40: 0.7, 80: 0.8})
    assert ex.examples == pytest.approx(22.5, rel=1e-6) and (ex.low, ex.high) == (0.6, 0.8)
    # the other way round the prompt costs labels: a negative worth
    assert prompts.data_points_worth(head, prompt).examples == pytest.approx(-100, rel=1e-6)


def test_worth_ignores_dips_and_uses_only_the_shared_range():
    prompt = {8: 0.60, 16: 0.58, 32: 0.70, 64: 0.72}       # a dip at 16 labels
    head = {8: 0.50, 16: 0.55, 32: 0.60, 64: 0.65, 128: 0.80}
    need = prompts.labels_needed(prompt, [0.55, 0.60, 0.65, 0.75])
    assert need[:3] == pytest.approx([8, 8, 24]) and np.isnan(need[3])   # 16 -> 32 labels: 0.60 -> 0.70
    w = prompts.data_points_worth(prompt, head)
    assert (w.low, w.high) == pytest.approx((0.60, 0.72))
    assert w.examples > 0 and np.all(w.n_head >= w.n_prompt)


def test_worth_fails_clearly_on_bad_curves():
    with pytest.raises(ValueError, match="share no accuracy range"):
        prompts.data_points_worth({8: 0.8, 16: 0.9}, {8: 0.5, 16: 0.6})
    with pytest.raises(ValueError, match="at least two"):
        prompts.data_points_worth({8: 0.8}, {8: 0.5, 16: 0.6})
    with pytest.raises(ValueError, match="finite"):
        prompts.data_points_worth({8: 0.8, 16: float("nan")}, {8: 0.5, 16: 0.6})
    with pytest.raises(TypeError, match="dict"):
        prompts.as_curve(5)


def test_curve_from_summary_rows():
    rows = [{"strategy": "prompt", "n": 8, "seed": s, "accuracy": a}
            for s, a in enumerate((0.5, 0.6, 0.7))]
    summary = finetune.summarize(rows)
    assert prompts.curve_from_rows(summary, "prompt") == {8: pytest.approx(0.6)}
    with pytest.raises(KeyError, match="known"):
        prompts.curve_from_rows(summary, "head")
    assert prompts.majority_accuracy([0, 1, 1, 1]) == 0.75
