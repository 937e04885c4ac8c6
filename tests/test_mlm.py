"""Masked-LM pieces: WordPiece training, packing, the 80/10/10 rule (checked against
transformers' DataCollatorForLanguageModeling), the sparse loss, fill-mask, save/load."""

import pytest
import torch
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

from labkit import data, mlm, models, train


@pytest.fixture(scope="module")
def texts():
    return list(data.load("sotu", source="bundled")["train"].select(range(1500))["text"])


@pytest.fixture(scope="module")
def tok(texts):
    return mlm.train_wordpiece(texts, vocab_size=1000)


def tiny_model(tok, seed=0, dropout=0.1):
    torch.manual_seed(seed)
    return BertForMaskedLM(mlm.small_bert_config(tok, hidden_size=32, num_heads=2,
                                                 max_length=64, dropout=dropout))


# --------------------------------------------------------------------------- tokenizer
def test_wordpiece_tokenizer_is_a_bert_tokenizer(tok, texts):
    assert len(tok) <= 1000
    assert [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id] == [0, 1, 2, 3, 4]
    ids = tok("The Congress of the United States.")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "the congress of the united states."
    assert tok.convert_ids_to_tokens(tok("a [MASK] b")["input_ids"])[2] == "[MASK]"
    tokens = tok.convert_ids_to_tokens(range(len(tok)))
    assert tokens[5:] == sorted(tokens[5:])     # renumbered: ids do not depend on hash order


def test_wordpiece_refuses_empty_text_and_tiny_vocabularies(texts):
    with pytest.raises(ValueError, match="no text"):
        mlm.train_wordpiece(["", "  "])
    with pytest.raises(ValueError, match="too small"):
        mlm.train_wordpiece(texts[:10], vocab_size=20)


def test_packed_blocks_keep_every_token(tok, texts):
    blocks = mlm.tokenize_blocks(tok, texts[:200], block_size=32)
    assert all(len(b["input_ids"]) <= 32 for b in blocks)
    assert all(len(b["input_ids"]) >= 30 for b in blocks[:-1])   # 32 less [SEP]s at the edges
    assert all(b["input_ids"][0] == tok.cls_token_id and b["input_ids"][-1] == tok.sep_token_id
               for b in blocks)
    inner = [i for b in blocks for i in b["input_ids"][1:-1] if i != tok.sep_token_id]
    words = [i for t in texts[:200] for i in tok(t, add_special_tokens=False)["input_ids"]]
    assert inner == words
    one_each = mlm.tokenize_blocks(tok, ["A short one.", "", "Another."], pack=False)
    assert len(one_each) == 2
    with pytest.raises(ValueError, match="block needs room"):
        mlm.tokenize_blocks(tok, texts, block_size=2)


# --------------------------------------------------------------------------- masking
def masking_stats(batches, tok):
    """Shares: chosen / real tokens; [MASK], random, unchanged / chosen."""
    n_real = n_chosen = n_mask = n_same = 0
    for b in batches:
        real = ~torch.isin(b["orig"], torch.tensor(tok.all_special_ids))
        chosen = b["labels"] != -100
        assert not (chosen & ~real).any(), "a special or padding token was masked"
        assert torch.equal(b["labels"][chosen], b["orig"][chosen])
        n_real += int(real.sum())
        n_chosen += int(chosen.sum())
        n_mask += int((b["input_ids"][chosen] == tok.mask_token_id).sum())
        n_same += int((b["input_ids"][chosen] == b["orig"][chosen]).sum())
    return {"chosen": n_chosen / n_real, "mask": n_mask / n_chosen,
            "same": n_same / n_chosen, "random": 1 - (n_mask + n_same) / n_chosen}


def collect(collate, examples, tok, rounds):
    pad = tok.pad_token_id
    out = []
    for _ in range(rounds):
        for start in range(0, len(examples), 64):
            part = examples[start:start + 64]
            width = max(len(e["input_ids"]) for e in part)
            orig = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"]))
                                 for e in part])
            b = collate(part)
            out.append({"orig": orig, "input_ids": b["input_ids"], "labels": b["labels"]})
    return out


def test_80_10_10_matches_transformers_collator(tok, texts):
    # Sentences of different lengths, so batches carry padding as well as [CLS]/[SEP].
    examples = mlm.tokenize_blocks(tok, texts[:600], block_size=48, pack=False)
    torch.manual_seed(0)
    ours = masking_stats(collect(mlm.MLMCollator(tok), examples, tok, rounds=4), tok)
    hf_collate = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    theirs = masking_stats(collect(hf_collate, examples, tok, rounds=4), tok)
    expected = {"chosen": 0.15, "mask": 0.8, "random": 0.1, "same": 0.1}
    for key, value in expected.items():   # ~120k real tokens, ~18k chosen: sd < 0.003
        assert ours[key] == pytest.approx(value, abs=0.01), (key, ours)
        assert ours[key] == pytest.approx(theirs[key], abs=0.012), (key, ours, theirs)


def test_masking_is_repeatable_and_padding_gets_attention_zero(tok):
    examples = [{"input_ids": [2, 10, 11, 12, 3]}, {"input_ids": [2, 13, 3]}]
    collate = mlm.MLMCollator(tok, probability=0.5)
    torch.manual_seed(1)
    a = collate(examples)
    torch.manual_seed(1)
    b = collate(examples)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert (a["labels"][1, 3:] == -100).all()


def test_random_replacements_are_never_special_tokens(tok):
    ids = torch.full((64, 64), 50, dtype=torch.long)
    inputs, labels = mlm.mask_tokens(ids, mask_token_id=4, vocab_size=len(tok),
                                     special_ids=tok.all_special_ids, probability=0.9,
                                     mask_rate=0.0, random_rate=1.0)
    replaced = inputs[labels != -100]
    assert not torch.isin(replaced, torch.tensor(tok.all_special_ids)).any()
    assert replaced.max() < len(tok)


def test_masking_refuses_bad_input(tok):
    ids = torch.tensor([[2, 10, 3]])
    with pytest.raises(TypeError, match="LongTensor"):
        mlm.mask_tokens(ids.float(), mask_token_id=4, vocab_size=100)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        mlm.mask_tokens(ids, mask_token_id=4, vocab_size=100, probability=1.5)
    with pytest.raises(ValueError, match="add up to at most 1"):
        mlm.mask_tokens(ids, mask_token_id=4, vocab_size=100, mask_rate=0.8, random_rate=0.3)
    with pytest.raises(ValueError, match="mask token"):
        mlm.mask_tokens(ids, mask_token_id=None, vocab_size=100)
    with pytest.raises(KeyError, match="input_ids"):
        mlm.MLMCollator(tok)([{"text": "not tokenized"}])


# --------------------------------------------------------------------------- model + loss
def test_small_config_follows_the_tokenizer(tok):
    cfg = mlm.small_bert_config(tok)
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers) == (len(tok), 128, 2)
    assert cfg.max_position_embeddings == tok.model_max_length == 128
    assert cfg.intermediate_size == 512 and cfg.pad_token_id == tok.pad_token_id
    with pytest.raises(ValueError, match="divisible"):
        mlm.small_bert_config(tok, hidden_size=100, num_heads=3)


def test_sparse_training_loss_equals_the_full_loss(tok, texts):
    model = tiny_model(tok, dropout=0.0)
    blocks = mlm.tokenize_blocks(tok, texts[:20], block_size=64)
    torch.manual_seed(0)
    batch = mlm.MLMCollator(tok)(blocks[:8])
    model.train()
    sparse = mlm.mlm_loss(model, batch)
    sparse.backward()
    grad_sparse = model.bert.embeddings.word_embeddings.weight.grad.clone()
    model.zero_grad()
    full = model(**batch).loss
    full.backward()
    assert float(sparse.detach()) == pytest.approx(float(full.detach()), rel=1e-5)
    assert torch.allclose(grad_sparse, model.bert.embeddings.word_embeddings.weight.grad,
                          atol=1e-6)
    model.eval()
    loss, out = mlm.mlm_loss(model, batch)          # eval: full logits for accuracy
    assert out.logits.shape == (*batch["input_ids"].shape, len(tok))


def test_fit_lowers_the_masked_lm_loss(tok, texts):
    blocks = mlm.tokenize_blocks(tok, texts[:300], block_size=64)
    model = tiny_model(tok)
    collate = mlm.MLMCollator(tok)
    before = train.evaluate(model, blocks[-32:], collate_fn=collate, device="cpu")
    train.fit(model, blocks[:-32], collate_fn=collate, loss_fn=mlm.mlm_loss, max_steps=30,
              batch_size=16, lr=3e-3, betas=(0.9, 0.95), device="cpu")
    after = train.evaluate(model, blocks[-32:], collate_fn=collate, device="cpu")
    assert after["loss"] < before["loss"] - 0.5
    assert 0 <= after["accuracy"] <= 1


def test_eval_masks_hide_every_graded_answer_and_never_change(tok, texts):
    blocks = mlm.tokenize_blocks(tok, texts[:200], block_size=64)
    special = set(tok.all_special_ids)
    torch.manual_seed(123)
    a = mlm.eval_masks(tok, blocks, seed=0)
    torch.manual_seed(456)                       # the global random state plays no part
    b = mlm.eval_masks(tok, blocks, seed=0)
    assert a == b and a != mlm.eval_masks(tok, blocks, seed=1)
    graded = real = 0
    for block, m in zip(blocks, a):
        assert len(m["input_ids"]) == len(m["labels"]) == len(block["input_ids"])
        for orig, inp, lab in zip(block["input_ids"], m["input_ids"], m["labels"]):
            if lab == mlm.IGNORE:
                assert inp == orig                      # not chosen: untouched
            else:
                assert lab == orig and orig not in special
                assert inp == tok.mask_token_id         # chosen: always [MASK], never shown
                graded += 1
            real += orig not in special
    assert 0.12 < graded / real < 0.18
    # the collator pads pre-masked examples as they are, so a score does not depend on
    # the batch size or on torch's random state
    model = tiny_model(tok).eval()
    collate = mlm.MLMCollator(tok)
    batch = collate(a[:4])
    assert batch["input_ids"][0, :len(a[0]["input_ids"])].tolist() == a[0]["input_ids"]
    assert int((batch["labels"] != mlm.IGNORE).sum()) == sum(
        sum(x != mlm.IGNORE for x in m["labels"]) for m in a[:4])
    r8 = train.evaluate(model, a[:40], collate_fn=collate, batch_size=8, device="cpu", seed=1)
    r32 = train.evaluate(model, a[:40], collate_fn=collate, batch_size=32, device="cpu", seed=2)
    assert r8["loss"] == pytest.approx(r32["loss"], rel=1e-5)
    assert r8["accuracy"] == pytest.approx(r32["accuracy"])
    with pytest.raises(ValueError, match="no examples"):
        mlm.eval_masks(tok, [])


# --------------------------------------------------------------------------- probing, saving
def test_fill_mask_returns_sorted_top_k(tok):
    model = tiny_model(tok)
    model.train()
    preds = mlm.fill_mask(model, tok, ["the [MASK] of the union", "we [MASK] it"], top_k=3)
    assert len(preds) == 2 and all(len(p) == 3 for p in preds)
    probs = [pr for _, pr in preds[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    assert model.training                                  # mode restored
    with pytest.raises(ValueError, match="exactly one"):
        mlm.fill_mask(model, tok, ["no mask here"])
    with pytest.raises(ValueError, match="exactly one"):
        mlm.fill_mask(model, tok, ["[MASK] and [MASK]"])


def test_checkpoint_round_trip_through_models_load(tok, tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CHECKPOINTS", str(tmp_path))
    folder = models.checkpoint_dir("course-bert")
    assert folder == tmp_path / "course-bert"
    model = tiny_model(tok).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    assert (folder / "model.safetensors").exists()
    loaded, loaded_tok = models.load("course-bert", task="masked-lm")
    enc = loaded_tok(["the state of the union"], return_tensors="pt")
    assert enc["input_ids"].tolist() == tok(["the state of the union"])["input_ids"]
    with torch.no_grad():
        assert torch.allclose(loaded(**enc).logits, model(**enc).logits, atol=1e-6)
    with pytest.raises(ValueError, match="not a checkpoint the course makes"):
        models.checkpoint_dir("minilm")


# --------------------------------------------------------------------------- with fit
def test_micro_batches_give_the_same_first_mlm_update(tok, texts):
    """The masked-LM loss is a mean over masked tokens: cutting a batch into
    micro-batches must not change the update (rows differ in how many tokens they mask)."""
    blocks = mlm.tokenize_blocks(tok, texts[:60], block_size=24, pack=False)[:12]
    torch.manual_seed(7)
    batch = mlm.MLMCollator(tok, 0.3)(blocks)   # one fixed masking for both runs
    rows = [{k: v[i] for k, v in batch.items()} for i in range(len(blocks))]

    def update(**kw):
        model = tiny_model(tok, dropout=0.0)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        train.fit(model, rows, max_steps=1, batch_size=len(rows), warmup=0, clip=None,
                  rollback=False, device="cpu", loss_fn=mlm.mlm_loss,
                  optimizer=torch.optim.SGD(model.parameters(), lr=1.0), **kw)
        return {k: v - before[k] for k, v in model.state_dict().items()}

    whole, cut = update(), update(micro_batch_size=5)
    assert max(float((whole[k] - cut[k]).abs().max()) for k in whole) < 1e-6


def test_resume_with_the_random_masking_collator_is_exact(tok, texts, tmp_path):
    blocks = mlm.tokenize_blocks(tok, texts[:150], block_size=24)[:48]
    kw = dict(collate_fn=mlm.MLMCollator(tok), loss_fn=mlm.mlm_loss, epochs=2,
              batch_size=8, lr=1e-3, device="cpu", seed=1, checkpoint_every=4)
    full = tiny_model(tok)
    train.fit(full, blocks, checkpoint_dir=tmp_path / "a", **kw)

    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("simulated interruption")
        return mlm.mlm_loss(model, batch)

    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_model(tok), blocks, checkpoint_dir=tmp_path / "b",
                  **{**kw, "loss_fn": crashing})
    resumed = tiny_model(tok, seed=5)
    hist = train.fit(resumed, blocks, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    # mid-epoch (6 batches an epoch): the 4 batches done are skipped, not re-masked
    assert hist.events[0] == "resumed from step 4" and hist.steps == 12
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
