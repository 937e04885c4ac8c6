"""Word2Vec from scratch: the three tricks, the loss, the evaluations, the classifier, errors."""

import math

import numpy as np
import pytest
import torch

from labkit import data, train
from labkit import word2vec as w2v

EVAL = data.data_dir() / "word_eval"


@pytest.fixture(scope="module")
def sotu_corpus():
    """A small slice of the real corpus: the first 300 passages of the training split."""
    texts = data.load("sotu", source="bundled")["train"].select(range(300))["text"]
    return w2v.Corpus.build(w2v.tokenize(texts), min_count=3)


# --------------------------------------------------------------------------- corpus
def test_tokenize_drops_punctuation_and_lowercases():
    assert w2v.tokenize(["The Union is strong, and it's growing!"]) == [
        ["the", "union", "is", "strong", "and", "it's", "growing"]]


def test_corpus_stream_vocab_and_counts(sotu_corpus):
    c = sotu_corpus
    assert c.vocab.itos[:2] == ["<pad>", "<unk>"]
    assert len(c.ids) == len(c.sent) and c.ids.min() >= 2       # no specials in the stream
    assert c.counts[:2].tolist() == [0.0, 0.0]
    the = c.vocab.stoi["the"]
    assert c.counts[the] == (c.ids == the).sum()                  # counts match the stream
    assert torch.all(c.sent[1:] >= c.sent[:-1])                   # sentences in order


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="corpus is empty"):
        w2v.Corpus.build([[], []])
    with pytest.raises(ValueError, match="min_count"):
        w2v.Corpus.build([["a", "b"]], min_count=5)


# --------------------------------------------------------------------------- the three tricks
def test_subsampling_keep_probabilities():
    t = 1e-3
    counts = torch.tensor([0.0, 4000.0, 1000.0, 1.0])      # total 5001
    f = counts / counts.sum()
    keep = w2v.keep_probabilities(counts, t)
    expected = (torch.sqrt(f[1] / t) + 1) * t / f[1]
    assert keep[0] == 0                                    # a special (count 0) never kept
    assert keep[1] == pytest.approx(float(expected))       # the formula, below 1 ...
    assert keep[1] < keep[2] <= 1                          # ... frequent words kept less
    assert keep[3] == 1                                    # rare words always kept
    # where the frequency is 4t the formula gives (2 + 1) / 4 exactly
    counts = torch.tensor([4.0, 996.0])
    assert w2v.keep_probabilities(counts, 1e-3)[0] == pytest.approx(0.75)
    assert torch.equal(w2v.keep_probabilities(counts, 0), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="t must be"):
        w2v.keep_probabilities(counts, -1)
    with pytest.raises(ValueError, match="positive total"):
        w2v.keep_probabilities(torch.zeros(3))


def test_noise_distribution_uses_the_three_quarter_power():
    counts = torch.tensor([0.0, 1000.0, 10.0, 1.0])
    p = w2v.noise_distribution(counts)
    assert p.sum() == pytest.approx(1.0) and p[0] == 0
    assert p[1] / p[2] == pytest.approx(100 ** 0.75)       # not 100: rare words boosted
    assert p[2] / p[3] == pytest.approx(10 ** 0.75)
    unigram = w2v.noise_distribution(counts, power=1.0)
    assert unigram[1] / unigram[2] == pytest.approx(100.0)
    assert p[3] > unigram[3]


def test_window_sizes_stay_within_bounds():
    g = torch.Generator().manual_seed(0)
    spans = w2v.window_sizes(20_000, 5, g)
    assert spans.min() == 1 and spans.max() == 5
    freq = torch.bincount(spans, minlength=6)[1:] / len(spans)
    assert torch.allclose(freq, torch.full((5,), 0.2), atol=0.02)    # uniform on 1..5
    with pytest.raises(ValueError, match="window"):
        w2v.window_sizes(10, 0)


def test_skipgram_pairs_by_hand():
    ids = torch.tensor([10, 11, 12, 13, 14])
    sent = torch.tensor([0, 0, 0, 1, 1])            # two sentences: windows must not cross
    spans = torch.tensor([2, 1, 2, 2, 1])
    centre, context = w2v.skipgram_pairs(ids, sent, spans)
    got = sorted(zip(centre.tolist(), context.tolist()))
    assert got == sorted([(10, 11), (10, 12), (11, 10), (11, 12), (12, 11), (12, 10),
                          (13, 14), (14, 13)])


def test_full_window_pair_count():
    n, w = 20, 5
    ids = torch.arange(n)
    centre, _ = w2v.skipgram_pairs(ids, torch.zeros(n, dtype=torch.long),
                                   torch.full((n,), w))
    assert len(centre) == 2 * sum(n - d for d in range(1, w + 1))


def test_batches_shapes_negatives_and_repeatability(sotu_corpus):
    kw = dict(window=3, negative=4, batch_size=256, share=16)
    a = w2v.SkipGramBatches(sotu_corpus, seed=1, **kw)
    b = w2v.SkipGramBatches(sotu_corpus, seed=1, **kw)
    first = next(iter(a))
    assert first["centre"].shape == first["context"].shape == (256,)
    assert first["negatives"].shape == (256 // 16, 4)
    assert first["negatives"].min() >= 2                         # never a special
    same = next(iter(b))
    assert all(torch.equal(first[k], same[k]) for k in first)   # same seed, same batches
    second_pass = next(iter(a))
    assert not torch.equal(first["centre"], second_pass["centre"])   # a new pass, new pairs
    assert len(a) == math.ceil(a.n_pairs / 256)
    with pytest.raises(ValueError, match="multiple of share"):
        w2v.SkipGramBatches(sotu_corpus, batch_size=100, share=16)


# --------------------------------------------------------------------------- the model
def test_untrained_loss_is_six_log_two(sotu_corpus):
    """The context table starts at zero, so every score is 0 and each of the 1 + 5
    terms is -log sigma(0) = log 2."""
    batch = next(iter(w2v.SkipGramBatches(sotu_corpus, batch_size=64, seed=0)))
    model = w2v.SkipGram(len(sotu_corpus.vocab), dim=16)
    assert float(w2v.sgns_loss(model, batch).detach()) == pytest.approx(6 * math.log(2))


def test_loss_decreases_through_fit(sotu_corpus):
    torch.manual_seed(0)
    pairs = w2v.SkipGramBatches(sotu_corpus, window=3, batch_size=1024, share=16, seed=0)
    model = w2v.SkipGram(len(sotu_corpus.vocab), dim=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.025 * 1024)
    hist = train.fit(model, pairs, loss_fn=w2v.sgns_loss, max_steps=150, batch_size=1024,
                     optimizer=opt, clip=None, warmup=0, device="cpu", seed=0)
    assert hist.train[0]["loss"] == pytest.approx(6 * math.log(2), abs=1e-3)
    assert hist.final_loss(10) < hist.train[0]["loss"] - 0.5


# --------------------------------------------------------------------------- evaluation
@pytest.fixture
def toy_vectors():
    words = ["man", "king", "woman", "queen", "apple", "pear"]
    vecs = [[1, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1],
            [0, 0, 0.2, 1]]
    return w2v.WordVectors(words, vecs)


def test_word_vectors_similarity_and_neighbours(toy_vectors):
    v = toy_vectors
    assert v.similarity("man", "king") == pytest.approx(1 / math.sqrt(2))
    assert v.similarity("apple", "man") == 0
    assert v.most_similar("apple", k=1)[0][0] == "pear"
    nn_ = w2v.nearest_neighbours(v, ["king", "zebra"], k=2)
    assert list(nn_) == ["king"]                                 # unknown queries skipped
    assert set(nn_["king"]) == {"man", "queen"}                  # cosine 0.71 and 0.5
    with pytest.raises(KeyError, match="zebra"):
        v.most_similar("zebra")
    with pytest.raises(ValueError, match="one vector per word"):
        w2v.WordVectors(["a", "b"], [[1.0, 2.0]])


def test_analogy_3cosadd_restricted_to_known_words(toy_vectors):
    questions = [("gender", "man", "king", "woman", "queen"),
                 ("gender", "woman", "queen", "man", "king"),
                 ("fruit", "apple", "pear", "man", "woman"),     # answered 'king': wrong
                 ("gender", "man", "king", "girl", "princess")]  # out of vocabulary
    r = w2v.analogy(toy_vectors, questions)
    assert r["n"] == 3 and r["total"] == 4 and r["coverage"] == 0.75
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert r["sections"] == {"gender": (1.0, 2), "fruit": (0.0, 1)}
    none = w2v.analogy(toy_vectors, [("x", "a", "b", "c", "d")])
    assert none["n"] == 0 and math.isnan(none["accuracy"])


def test_wordsim_spearman_and_coverage(toy_vectors):
    pairs = [("man", "king", 7.0), ("man", "apple", 1.0), ("apple", "pear", 9.0),
             ("man", "zebra", 5.0)]
    r = w2v.wordsim(toy_vectors, pairs)
    assert r["spearman"] == pytest.approx(1.0)
    assert r["coverage"] == 0.75 and r["n"] == 3
    reversed_ = [(a, b, -s) for a, b, s in pairs]
    assert w2v.wordsim(toy_vectors, reversed_)["spearman"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="too few"):
        w2v.wordsim(toy_vectors, [("man", "zebra", 1.0), ("a", "b", 2.0)])


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 50).astype(float)          # many ties
    y = x + rng.normal(0, 2, 50)
    assert w2v.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert w2v.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="equally long"):
        w2v.spearman([1, 2], [1, 2, 3])


def test_bundled_evaluation_files_load():
    assert len(w2v.load_word_pairs(EVAL / "wordsim353.tsv")) == 353
    assert len(w2v.load_word_pairs(EVAL / "simlex999.txt")) == 999
    questions = w2v.load_analogies(EVAL / "questions-words.txt")
    assert len(questions) == 19_544
    assert questions[0] == ("capital-common-countries", "athens", "greece", "baghdad", "iraq")
    assert len({q[0] for q in questions}) == 14


def test_missing_or_broken_eval_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="data/word_eval"):
        w2v.load_word_pairs(tmp_path / "wordsim353.tsv")
    with pytest.raises(FileNotFoundError, match="data/word_eval"):
        w2v.load_analogies(tmp_path / "questions-words.txt")
    bad = tmp_path / "pairs.tsv"
    bad.write_text("# header\nlove sex 6.77\n")       # spaces, not tabs
    with pytest.raises(ValueError, match="pairs.tsv:2"):
        w2v.load_word_pairs(bad)
    bad.write_text("athens greece baghdad iraq\n")    # no ': section' line
    with pytest.raises(ValueError, match="section"):
        w2v.load_analogies(bad)


def test_pca_2d_finds_the_main_direction():
    x = np.array([[-2.0, 0.1, 0], [-1, -0.1, 0], [1, 0.1, 0], [2, -0.1, 0]])
    p = w2v.pca_2d(x)
    assert p.shape == (4, 2)
    assert np.allclose(np.abs(p[:, 0]), [2, 1, 1, 2], atol=0.01)
    with pytest.raises(ValueError, match="two rows"):
        w2v.pca_2d(x[:1])


def test_from_gensim_and_from_model_agree_in_layout(sotu_corpus):
    kv_mod = pytest.importorskip("gensim.models")
    kv = kv_mod.KeyedVectors(3)
    kv.add_vectors(["a", "b"], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    v = w2v.WordVectors.from_gensim(kv)
    assert v.words == ["a", "b"] and v.similarity("a", "b") == 0
    model = w2v.SkipGram(len(sotu_corpus.vocab), dim=8)
    mine = w2v.WordVectors.from_model(model, sotu_corpus.vocab)
    assert len(mine) == len(sotu_corpus.vocab) - 2 and "<pad>" not in mine


# --------------------------------------------------------------------------- transfer
def test_bag_of_embeddings_frozen_and_bad_vectors(sotu_corpus):
    vocab = sotu_corpus.vocab
    reviews = data.load("movie_reviews", source="bundled")["train"].select(range(64))
    examples = w2v.encode_texts(reviews["text"], reviews["label"], vocab)
    assert all(e["input_ids"] for e in examples)
    batch = w2v.collate(examples[:4])
    assert batch["input_ids"].shape[0] == 4 and batch["labels"].shape == (4,)

    clf = w2v.BagOfEmbeddings(len(vocab), 8)
    clf.load_vectors(torch.ones(len(vocab), 8))
    assert clf.embed.weight[0].abs().sum() == 0                  # <pad> stays zero
    clf.freeze_embeddings()
    before = clf.embed.weight.detach().clone()
    train.fit(clf, examples, collate_fn=w2v.collate, max_steps=3, batch_size=16, lr=1e-2,
              device="cpu")
    assert torch.equal(before, clf.embed.weight.detach())
    with pytest.raises(ValueError, match="same vocab"):
        clf.load_vectors(torch.ones(5, 8))
