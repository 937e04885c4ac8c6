"""labkit.peft: LoRA, adapters and prompt tuning, and LoRA checked against the peft library
(same trainable parameter count, same outputs given the same weights, merge = unmerged)."""

import copy

import pytest
import torch

from labkit import data, finetune, models, peft as lp, train

peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def tiny():
    """The 2-layer, hidden-128 BERT (4.4M params, offline) with a new 2-way head."""
    if models.local_path("tiny-mlm") is None:
        pytest.skip("tiny-mlm weights not installed")
    torch.manual_seed(0)
    model, tok = models.load("tiny-mlm", task="sequence-classification", num_labels=2)
    return model.eval(), tok


@pytest.fixture(scope="module")
def batch(tiny):
    """Eight real movie-review sentences, tokenised and padded, with their labels."""
    _, tok = tiny
    rows = data.load("movie_reviews")["validation"].select(range(8))
    enc = tok(list(rows["text"]), truncation=True, max_length=32, padding=True, return_tensors="pt")
    return {**enc, "labels": torch.tensor(list(rows["label"]))}


def fresh(tiny):
    return copy.deepcopy(tiny[0])


def logits(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def peft_lora(model, **kw):
    cfg = peft.LoraConfig(task_type="SEQ_CLS", r=kw.get("r", 8),
                          lora_alpha=kw.get("alpha", 16), lora_dropout=0.0,
                          target_modules=list(kw.get("target_modules", ["query", "value"])),
                          modules_to_save=kw.get("modules_to_save"))
    return peft.get_peft_model(model, cfg)


def randomize_lora(peft_model, seed=1):
    """peft starts lora_B at zero; give it values so the comparison means something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


# --------------------------------------------------------------------------- LoRA vs peft
@pytest.mark.parametrize("r,targets", [(8, ("query", "value")), (4, ("query", "key", "value",
                                                                        "dense"))])
def test_lora_trainable_count_matches_peft(tiny, r, targets):
    ours = lp.apply_lora(fresh(tiny), r=r, alpha=2 * r, target_modules=targets)
    theirs = peft_lora(fresh(tiny), r=r, alpha=2 * r, target_modules=targets)
    assert lp.trainable_parameters(ours)[0] == theirs.get_nb_trainable_parameters()[0]
    # by hand: each adapted (in x out) layer adds r * (in + out); the head 128 * 2 + 2
    expected = sum(r * (m.base_layer.in_features + m.base_layer.out_features)
                   for m in lp.lora_layers(ours).values())
    assert lp.trainable_parameters(ours)[0] == expected + 258


def test_new_lora_changes_nothing(tiny, batch):
    before = logits(fresh(tiny), batch)
    after = logits(lp.apply_lora(fresh(tiny), r=8), batch)
    assert torch.equal(before, after)      # lora_B starts at zero


def test_same_lora_weights_give_same_outputs_as_peft(tiny, batch):
    theirs = peft_lora(fresh(tiny), r=8, alpha=16)
    randomize_lora(theirs)
    ours = lp.apply_lora(fresh(tiny), r=8, alpha=16)
    assert lp.copy_lora_from_peft(ours, theirs) == 2 * 2 * 2 + 2   # 2 layers x q,v x A,B + head
    expected = logits(theirs, batch)
    assert not torch.allclose(expected, logits(fresh(tiny), batch), atol=1e-3)
    torch.testing.assert_close(logits(ours, batch), expected, atol=1e-5, rtol=1e-5)


def test_a_trained_pooler_counts_and_copies_like_peft(tiny, batch):
    """The head as the notebook trains it: pooler + classifier (peft: modules_to_save)."""
    theirs = peft_lora(fresh(tiny), modules_to_save=["pooler"])
    randomize_lora(theirs)
    ours = lp.apply_lora(fresh(tiny), modules_to_save=("classifier", "pooler"))
    assert lp.trainable_parameters(ours)[0] == theirs.get_nb_trainable_parameters()[0] \
        == 2 * 2 * 8 * (128 + 128) + (128 * 128 + 128) + 258
    assert lp.copy_lora_from_peft(ours, theirs) == 8 + 2 + 2
    torch.testing.assert_close(logits(ours, batch), logits(theirs, batch), atol=1e-5, rtol=1e-5)


def test_merged_equals_unmerged_and_unmerge_restores(tiny, batch):
    theirs = peft_lora(fresh(tiny), r=8, alpha=16)
    randomize_lora(theirs)
    ours = lp.apply_lora(fresh(tiny), r=8, alpha=16)
    lp.copy_lora_from_peft(ours, theirs)
    w0 = {n: m.base_layer.weight.clone() for n, m in lp.lora_layers(ours).items()}
    unmerged = logits(ours, batch)
    lp.merge_lora(ours)
    torch.testing.assert_close(logits(ours, batch), unmerged, atol=1e-5, rtol=1e-5)
    # peft's merge gives the same merged weights
    merged_peft = theirs.merge_and_unload()
    for name, layer in lp.lora_layers(ours).items():
        torch.testing.assert_close(layer.base_layer.weight,
                                   merged_peft.get_submodule(name).weight, atol=1e-6, rtol=1e-6)
    lp.unmerge_lora(ours)
    for name, layer in lp.lora_layers(ours).items():
        torch.testing.assert_close(layer.base_layer.weight, w0[name], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(logits(ours, batch), unmerged, atol=1e-5, rtol=1e-5)


def test_lora_on_a_llama_style_causal_lm_matches_peft():
    """q_proj/v_proj of a tiny Llama (grouped-query attention: v_proj is narrower)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=48, intermediate_size=96,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    base = LlamaForCausalLM(cfg).eval()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    randomize_lora(theirs)
    ours = lp.apply_lora(copy.deepcopy(base), r=4, alpha=8,
                         target_modules=("q_proj", "v_proj"), modules_to_save=())
    assert lp.trainable_parameters(ours)[0] == theirs.get_nb_trainable_parameters()[0] \
        == 2 * (4 * (48 + 48) + 4 * (48 + 24))
    lp.copy_lora_from_peft(ours, theirs)
    ids = torch.randint(0, 100, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, theirs(input_ids=ids).logits,
                                   atol=1e-5, rtol=1e-5)


def test_lora_training_moves_only_lora_and_head(tiny):
    model = lp.apply_lora(fresh(tiny), r=4, alpha=8, seed=0)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    _, tok = tiny
    rows = finetune.tokenize(data.load("movie_reviews")["train"].select(range(32)), tok,
                             max_length=32)
    train.fit(model, rows, collate_fn=finetune.collate(tok.pad_token_id), max_steps=3,
              batch_size=8, lr=1e-2, device="cpu", desc="lora test")
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert any(m.lora_B.weight.abs().sum() > 0 for m in lp.lora_layers(model).values())
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == \
        {"bert", "classifier"}
    assert all("lora_" in n for n, p in model.named_parameters()
               if p.requires_grad and not n.startswith("classifier"))


def test_lora_dropout_acts_in_training_only(tiny, batch):
    theirs = peft_lora(fresh(tiny))
    randomize_lora(theirs)
    model = lp.apply_lora(fresh(tiny), r=8, dropout=0.5)
    lp.copy_lora_from_peft(model, theirs)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        a, b = model(**inputs).logits, model(**inputs).logits
    assert not torch.allclose(a, b)
    torch.testing.assert_close(logits(model, batch), logits(model, batch))


# --------------------------------------------------------------------------- adapters
def test_adapters_start_as_identity_and_count(tiny, batch):
    model = lp.apply_adapters(fresh(tiny), bottleneck=8, seed=0)
    torch.testing.assert_close(logits(model, batch), logits(fresh(tiny), batch))
    # Houlsby's places in BERT: after attention output and after the feed-forward block
    placed = [n for n, m in model.named_modules() if isinstance(m, lp.AdaptedLinear)]
    assert len(placed) == 2 * 2 and all(n.endswith("output.dense") for n in placed)
    per_adapter = 128 * 8 + 8 + 8 * 128 + 128
    assert lp.trainable_parameters(model)[0] == 4 * per_adapter + 258


def test_adapters_learn(tiny, batch):
    model = lp.apply_adapters(fresh(tiny), bottleneck=8, seed=0)
    first = lambda rows: rows[0]     # noqa: E731  (the one batch, already collated)
    loss0 = train.evaluate(model, [batch], collate_fn=first, batch_size=1)["loss"]
    train.fit(model, [batch] * 20, collate_fn=first, max_steps=20, batch_size=1,
              lr=1e-2, device="cpu", desc="adapter test")
    assert train.evaluate(model, [batch], collate_fn=first, batch_size=1)["loss"] < loss0


# --------------------------------------------------------------------------- prompt tuning
def test_prompt_tuning_keeps_cls_first_and_trains_only_the_prompt(tiny, batch):
    model = lp.apply_prompt_tuning(fresh(tiny), num_virtual_tokens=5, seed=0)
    assert lp.trainable_parameters(model)[0] == 5 * 128 + 258
    seen = {}
    hook = model.model.bert.embeddings.register_forward_hook(
        lambda m, args, kwargs, out: seen.update(embeds=kwargs["inputs_embeds"]),
        with_kwargs=True)
    out = model(**batch)
    hook.remove()
    word = model.get_input_embeddings()
    assert seen["embeds"].shape[1] == batch["input_ids"].shape[1] + 5
    torch.testing.assert_close(seen["embeds"][:, 0], word(batch["input_ids"][:, 0]))   # [CLS]
    torch.testing.assert_close(seen["embeds"][0, 1:6], model.prompt)
    out.loss.backward()
    assert model.prompt.grad is not None and model.prompt.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)


def test_prompt_tuning_rejects_inputs_that_do_not_fit(tiny):
    model = lp.apply_prompt_tuning(fresh(tiny), num_virtual_tokens=10)
    too_long = torch.ones(1, model.config.max_position_embeddings, dtype=torch.long)
    with pytest.raises(ValueError, match="max_length="):
        model(input_ids=too_long)


def test_prompt_tuning_initialised_from_text(tiny):
    _, tok = tiny
    ids = tok("great terrible", add_special_tokens=False, return_tensors="pt").input_ids
    model = lp.apply_prompt_tuning(fresh(tiny), num_virtual_tokens=4, init_ids=ids)
    word = model.get_input_embeddings().weight
    torch.testing.assert_close(model.prompt.data, word[ids[0].repeat(2)])


# --------------------------------------------------------------------------- memory
def test_training_memory_shows_what_lora_saves(tiny, batch):
    full = lp.training_memory(fresh(tiny), batch)
    lora = lp.training_memory(lp.apply_lora(fresh(tiny), r=8), batch)
    assert full["gradients"] == 4 * models.count_parameters(fresh(tiny))
    assert lora["optimizer"] == 2 * lora["gradients"] < full["gradients"] / 50
    assert 0 < lora["activations"] < full["activations"]
    assert full["total"] == sum(v for k, v in full.items() if k != "total")


# --------------------------------------------------------------------------- failures
def test_bad_lora_settings_fail_clearly(tiny):
    with pytest.raises(ValueError, match="rank r"):
        lp.apply_lora(fresh(tiny), r=0)
    with pytest.raises(ValueError, match="q_proj.*end in: .*query"):
        lp.apply_lora(fresh(tiny), target_modules=("q_proj",))
    with pytest.raises(ValueError, match="modules_to_save: no module named 'score'"):
        lp.apply_lora(fresh(tiny), modules_to_save=("score",))
    model = lp.apply_lora(fresh(tiny))
    with pytest.raises(ValueError, match="already has LoRA"):
        lp.apply_lora(model)
    lp.merge_lora(model)
    with pytest.raises(RuntimeError, match="already merged"):
        lp.merge_lora(model)
    with pytest.raises(ValueError, match="apply_lora"):
        lp.merge_lora(fresh(tiny))
    with pytest.raises(ValueError, match="bottleneck"):
        lp.apply_adapters(fresh(tiny), bottleneck=0)
    with pytest.raises(ValueError, match="num_virtual_tokens"):
        lp.apply_prompt_tuning(fresh(tiny), num_virtual_tokens=0)


@pytest.mark.parametrize("apply", [lp.apply_lora, lp.apply_adapters])
def test_seeded_peft_draws_from_its_own_generator(tiny, apply):
    """`seed=` fixes the new weights without reseeding (or even using) the global stream."""
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = apply(fresh(tiny), seed=4), apply(fresh(tiny), seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    c = apply(fresh(tiny), seed=5)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
