"""The translator's parts: batching, shapes, masking, decoding, learning, clear errors."""

import pytest
import torch

from labkit import data, device, seq2seq, text, train


@pytest.fixture(scope="module")
def bible():
    """A thousand real verse pairs and vocabularies built on them."""
    ds = data.load("en_fr_bible", source="bundled")["validation"]
    src_vocab = text.Vocab.build([text.words(s) for s in ds["en"]])
    tgt_vocab = text.Vocab.build([text.words(s) for s in ds["fr"]])
    return ds, src_vocab, tgt_vocab


def small_model(src_vocab, tgt_vocab, seed=0, **kw):
    device.seed_everything(seed)
    return seq2seq.Seq2Seq(len(src_vocab), len(tgt_vocab), emb_dim=16, hidden=24, **kw)


def test_encode_and_collate_shapes(bible):
    ds, sv, tv = bible
    pairs = seq2seq.encode_pairs(ds["en"][:5], ds["fr"][:5], sv, tv)
    assert len(pairs) == 5
    first = pairs[0]
    assert first["src"][-1] == sv.eos_id and sv.bos_id not in first["src"]
    assert first["tgt"][0] == tv.bos_id and first["tgt"][-1] == tv.eos_id
    batch = seq2seq.collate(pairs)
    longest_src = max(len(p["src"]) for p in pairs)
    longest_tgt = max(len(p["tgt"]) for p in pairs) - 1
    assert batch["src"].shape == (5, longest_src)
    assert batch["src_lengths"].tolist() == [len(p["src"]) for p in pairs]
    assert batch["tgt_in"].shape == batch["labels"].shape == (5, longest_tgt)
    # the labels are the decoder's input shifted by one; padding is labelled -100
    assert batch["labels"][0, :len(first["tgt"]) - 2].tolist() == first["tgt"][1:-1]
    assert batch["tgt_in"][0, 1:len(first["tgt"]) - 1].tolist() == first["tgt"][1:-1]
    shortest = min(range(5), key=lambda i: len(pairs[i]["tgt"]))
    assert batch["labels"][shortest, -1] == seq2seq.IGNORE


def test_max_len_drops_long_pairs(bible):
    ds, sv, tv = bible
    pairs = seq2seq.encode_pairs(ds["en"], ds["fr"], sv, tv, max_len=15)
    assert 0 < len(pairs) < len(ds)
    assert all(len(p["src"]) <= 16 and len(p["tgt"]) <= 17 for p in pairs)


def test_model_output_shapes(bible):
    ds, sv, tv = bible
    model = small_model(sv, tv)
    batch = seq2seq.collate(seq2seq.encode_pairs(ds["en"][:4], ds["fr"][:4], sv, tv))
    out = model(batch["src"], batch["src_lengths"], batch["tgt_in"])
    b, t = batch["tgt_in"].shape
    assert out.logits.shape == (b, t, len(tv))
    assert out.attention.shape == (b, t, batch["src"].shape[1])
    assert torch.allclose(out.attention.sum(-1), torch.ones(b, t), atol=1e-5)
    loss, _ = seq2seq.loss_fn(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # an untrained model is about uniform over the target vocabulary
    assert abs(float(loss.detach()) - torch.log(torch.tensor(float(len(tv))))) < 1.0


@torch.no_grad()
def test_padding_is_masked_in_attention(bible):
    ds, sv, tv = bible
    model = small_model(sv, tv).eval()
    pairs = seq2seq.encode_pairs(ds["en"][:6], ds["fr"][:6], sv, tv)
    short = min(pairs, key=lambda p: len(p["src"]))
    batch = seq2seq.collate(pairs)
    i = pairs.index(short)
    n = len(short["src"])
    assert n < batch["src"].shape[1], "the test needs a padded sentence"
    out = model(batch["src"], batch["src_lengths"], batch["tgt_in"])
    assert float(out.attention[i, :, n:].abs().max()) == 0.0     # no weight on padding
    # the padded sentence scores exactly as it does alone, whatever the padding holds
    alone = seq2seq.collate([short])
    solo = model(alone["src"], alone["src_lengths"], alone["tgt_in"])
    t = alone["tgt_in"].shape[1]
    assert torch.allclose(out.logits[i, :t], solo.logits[0], atol=1e-5)
    garbage = batch["src"].clone()
    garbage[i, n:] = 7
    again = model(garbage, batch["src_lengths"], batch["tgt_in"])
    assert torch.allclose(again.logits[i], out.logits[i], atol=1e-6)


def test_beam_of_one_is_greedy(bible):
    ds, sv, tv = bible
    model = small_model(sv, tv, seed=1).train()
    src, lengths = seq2seq.encode_sources(ds["en"][:8], sv)
    greedy = seq2seq.greedy(model, src, lengths, max_len=12)
    assert model.training      # decoding switches dropout off, then restores the mode
    beam1 = seq2seq.beam_search(model, src, lengths, beam=1, max_len=12)
    assert [h.tokens for h in greedy] == [h.tokens for h in beam1]
    assert [h.score for h in greedy] == pytest.approx([h.score for h in beam1], abs=1e-4)
    beam4 = seq2seq.beam_search(model, src, lengths, beam=4, max_len=12)
    assert len(beam4) == 8 and all(isinstance(h.tokens, list) for h in beam4)
    for h, n in zip(beam4, lengths):
        assert h.attention.shape[1] == n
        assert h.attention.shape[0] in (len(h.tokens), len(h.tokens) + 1)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_training_loss_skips_padding_with_the_same_loss_and_gradients(bible, smoothing):
    """While training, `loss_fn` scores only the real target words, a chunk at a time
    (`output_loss`): the same loss, and the same gradient for every parameter, as the
    plain cross-entropy over all logits with padding ignored."""
    ds, sv, tv = bible
    batch = seq2seq.collate(seq2seq.encode_pairs(ds["en"][:12], ds["fr"][:12], sv, tv))
    assert (batch["labels"] == seq2seq.IGNORE).any(), "the test needs padding"

    def loss_and_grads(fn):
        model = small_model(sv, tv, dropout=0.0).train()
        loss = fn(model)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    def plain(model):
        out = model(batch["src"], batch["src_lengths"], batch["tgt_in"])
        return torch.nn.functional.cross_entropy(
            out.logits.flatten(0, 1), batch["labels"].flatten(),
            ignore_index=seq2seq.IGNORE, label_smoothing=smoothing)

    def fused(model, chunk):
        states, _ = model.states(batch["src"], batch["src_lengths"], batch["tgt_in"])
        real = batch["labels"] != seq2seq.IGNORE
        return seq2seq.output_loss(states[real], model.decoder, batch["labels"][real],
                                   smoothing, chunk=chunk)

    want, want_grads = loss_and_grads(plain)
    got, _ = loss_and_grads(lambda m: seq2seq.loss_fn(m, batch, label_smoothing=smoothing)[0])
    assert torch.allclose(got, want, atol=1e-5)
    for chunk in (7, 256):                       # chunks that do and do not divide N
        got, grads = loss_and_grads(lambda m: fused(m, chunk))
        assert torch.allclose(got, want, atol=1e-5)
        for name, g in want_grads.items():
            assert torch.allclose(grads[name], g, atol=1e-6, rtol=1e-4), name
    # eval mode scores every position (so evaluate can count accuracy): same loss
    model = small_model(sv, tv, dropout=0.0).eval()
    with torch.no_grad():
        loss, out = seq2seq.loss_fn(model, batch, label_smoothing=smoothing)
        assert out.logits.shape[:2] == batch["labels"].shape
        assert torch.allclose(loss, plain(model), atol=1e-6)
    with pytest.raises(ValueError, match="no word to score"):
        seq2seq.output_loss(torch.zeros(0, 16), model.decoder, torch.zeros(0, dtype=torch.long))


def test_mixed_precision_keeps_the_recurrence_in_fp32(bible):
    ds, sv, tv = bible
    model = small_model(sv, tv)
    batch = seq2seq.collate(seq2seq.encode_pairs(ds["en"][:4], ds["fr"][:4], sv, tv))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, out = seq2seq.loss_fn(model, batch)
        memory, _, _ = model.encode(batch["src"], batch["src_lengths"])
    assert torch.isfinite(loss) and memory.dtype == torch.float32
    loss.backward()


def test_learns_to_copy_a_few_sentences(bible):
    """A tiny overfit: the model must learn to copy eight short real sentences."""
    ds, _, _ = bible
    sentences = [s for s in ds["en"] if len(text.words(s)) <= 10][:8]
    assert len(sentences) == 8
    vocab = text.Vocab.build([text.words(s) for s in sentences])
    pairs = seq2seq.encode_pairs(sentences, sentences, vocab, vocab)
    device.seed_everything(0)
    model = seq2seq.Seq2Seq(len(vocab), len(vocab), emb_dim=32, hidden=64, dropout=0.0)
    hist = train.fit(model, pairs, collate_fn=seq2seq.collate, loss_fn=seq2seq.loss_fn,
                     max_steps=150, batch_size=8, lr=1e-2, warmup=10, device="cpu")
    assert hist.final_loss() < 0.05
    expected = [seq2seq.detokenize(" ".join(text.words(s))) for s in sentences]
    assert seq2seq.translate(model, sentences, vocab, vocab) == expected
    assert seq2seq.translate(model, sentences, vocab, vocab, beam=3) == expected
    scores = train.evaluate(model, pairs, loss_fn=seq2seq.loss_fn, collate_fn=seq2seq.collate)
    assert scores["accuracy"] == 1.0      # padding (-100) is not counted


def test_plot_attention_labels_rows_and_columns(bible):
    import matplotlib
    matplotlib.use("Agg")
    ds, sv, tv = bible
    model = small_model(sv, tv)
    src, lengths = seq2seq.encode_sources(ds["en"][:1], sv)
    hyp = seq2seq.greedy(model, src, lengths, max_len=5)[0]     # stops at max_len: no </s>
    src_words = [sv.itos[i] for i in src[0].tolist()]
    out_words = [tv.itos[i] for i in hyp.tokens] + ["</s>"]
    ax = seq2seq.plot_attention(hyp, src_words, out_words)
    assert len(ax.get_xticklabels()) == len(src_words)
    assert len(ax.get_yticklabels()) == hyp.attention.shape[0]


def test_detokenize():
    assert seq2seq.detokenize("il dit : va ( vite ) , et lui !") == "il dit: va (vite), et lui!"
    assert seq2seq.detokenize("soixante - douze mille . - et") == "soixante-douze mille. - et"


def test_clear_errors(bible):
    ds, sv, tv = bible
    with pytest.raises(ValueError, match="one target per source"):
        seq2seq.encode_pairs(ds["en"][:3], ds["fr"][:2], sv, tv)
    with pytest.raises(ValueError, match="no sentences"):
        seq2seq.encode_pairs([], [], sv, tv)
    with pytest.raises(TypeError, match="strings"):
        seq2seq.encode_pairs([["a", "b"]], ["c"], sv, tv)
    with pytest.raises(ValueError, match="raise max_len"):
        seq2seq.encode_pairs(ds["en"][:3], ds["fr"][:3], sv, tv, max_len=1)
    with pytest.raises(ValueError, match="empty batch"):
        seq2seq.collate([])
    model = small_model(sv, tv)
    src, lengths = seq2seq.encode_sources(ds["en"][:2], sv)
    with pytest.raises(ValueError, match="beam must be"):
        seq2seq.beam_search(model, src, lengths, beam=0)
    with pytest.raises(ValueError, match="vocabulary the model was built for"):
        seq2seq.greedy(model, src + len(sv), lengths)
    with pytest.raises(ValueError, match="one length per sentence"):
        seq2seq.greedy(model, src, lengths[:1])
    with pytest.raises(ValueError, match="LongTensor"):
        seq2seq.greedy(model, src.float(), lengths)
    with pytest.raises(TypeError, match="list of sentences"):
        seq2seq.translate(model, "In the beginning", sv, tv)
    with pytest.raises(ValueError, match="special tokens"):
        seq2seq.Seq2Seq(3, 100)


def test_paired_bootstrap_bleu_prefers_the_better_system():
    from labkit import metrics

    refs = ["le chat est sur le tapis", "il a dit bonjour", "nous allons à la maison"] * 10
    good = list(refs)
    bad = ["le chien dort", "il dit", "nous allons"] * 10
    assert metrics.paired_bootstrap_bleu(good, bad, refs, n=100) == 1.0
    assert metrics.paired_bootstrap_bleu(bad, good, refs, n=100) == 0.0
    with pytest.raises(ValueError, match="one output"):
        metrics.paired_bootstrap_bleu(good[:2], bad, refs)
