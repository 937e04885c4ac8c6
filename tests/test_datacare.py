"""labkit.datacare: shingles and Jaccard, MinHash and near duplicates, label flips and
confident learning (against cleanlab), balanced accuracy, EDA, pseudo-labels."""

import numpy as np
import pytest

from labkit import datacare


def test_shingles_and_jaccard():
    assert datacare.words("Don't stop -- the FILM!") == ["don't", "stop", "the", "film"]
    assert datacare.shingles("a b c d", 3) == {("a", "b", "c"), ("b", "c", "d")}
    assert datacare.shingles("Dull!", 3) == {("dull",)}
    assert datacare.shingles("...", 3) == set()
    assert datacare.shingle_jaccard("A small film.", "a small film", 2) == 1.0
    assert datacare.shingle_jaccard("...", "?!") == 0.0
    assert datacare.shingle_jaccard("a b c d", "a b c e", 2) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="at least one word"):
        datacare.shingles("a b", 0)


def test_minhash_estimates_jaccard():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(300)]
    errs = []
    for _ in range(40):
        a = list(rng.choice(vocab, 60))
        b = a[: int(rng.integers(10, 60))] + list(rng.choice(vocab, 20))
        ta, tb = " ".join(a), " ".join(b)
        sa, sb = datacare.signatures([ta, tb], k=2)
        errs.append(datacare.minhash_jaccard(sa, sb) - datacare.shingle_jaccard(ta, tb, 2))
    errs = np.abs(errs)
    assert errs.mean() < 0.05 and errs.max() < 0.2, errs


def test_near_duplicates_find_planted_pairs_and_verify_them():
    corpus = ["the acting is superb and the plot is tight",
              "a dull and lifeless affair from start to finish",
              "an utterly charming film about friendship and loss",
              "The acting is superb, and the plot is tight!"]
    within = datacare.near_duplicates(corpus, k=3, threshold=0.5)
    assert within == [(0, 3, 1.0)]
    queries = ["a dull and lifeless affair from start to end", "nothing like the others here"]
    leaks = datacare.near_duplicates(queries, corpus, k=3, threshold=0.5)
    assert [(i, j) for i, j, _ in leaks] == [(0, 1)]
    assert all(s >= 0.5 for _, _, s in leaks)
    with pytest.raises(ValueError, match="threshold"):
        datacare.near_duplicates(corpus, threshold=0)


def test_flip_labels_flips_exactly_the_share():
    y = np.array([0, 1] * 50)
    noisy, flipped = datacare.flip_labels(y, 0.2, seed=3)
    assert flipped.sum() == 20 and (noisy != y).sum() == 20
    assert ((noisy != y) == flipped).all()
    again, _ = datacare.flip_labels(y, 0.2, seed=3)
    assert (again == noisy).all()
    with pytest.raises(ValueError, match="fraction"):
        datacare.flip_labels(y, 1.0)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_label_issues_is_cleanlabs_confident_learning(k):
    from cleanlab.filter import find_label_issues

    rng = np.random.default_rng(k)
    for _ in range(5):
        y = rng.integers(k, size=400)
        logits = rng.normal(size=(400, k))
        logits[np.arange(400), y] += rng.uniform(0, 3, size=400)
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        noisy = y.copy()
        noisy[:60] = (noisy[:60] + 1) % k
        want = find_label_issues(noisy, p, filter_by="confident_learning")
        assert (datacare.label_issues(noisy, p) == want).all()


def test_detection_counts():
    d = datacare.detection(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    assert d == {"flagged": 2, "flipped": 2, "hits": 1, "precision": 0.5, "recall": 0.5}


def test_head_and_out_of_fold_probs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    y = (X[:, 0] > 0).astype(int)
    assert (datacare.fit_head(X, y).predict(X) == y).mean() > 0.9
    p = datacare.out_of_fold_probs(X, y, folds=5)
    assert p.shape == (100, 2) and np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == y).mean() > 0.8
    with pytest.raises(ValueError, match="two classes"):
        datacare.fit_head(X, np.zeros(100, int))


def test_eda_and_augment_are_seeded_and_keep_labels():
    syn = {"good": ["fine"], "film": ["movie"]}
    texts, labels = ["A good film with a good cast", "Bad"], [1, 0]
    a = datacare.augment(texts, labels, per_text=3, seed=0, synonyms=syn)
    b = datacare.augment(texts, labels, per_text=3, seed=0, synonyms=syn)
    assert a == b and a[1] == [1, 1, 1, 0, 0, 0]
    assert all(t for t in a[0])
    variants = set(a[0][:3])
    assert variants != {"a good film with a good cast"}


def test_synonym_table_nearest_other_words():
    vocab = ["good", "fine", "bad", "car"]
    vecs = np.array([[1, 0.1], [1, 0.2], [0.9, -0.5], [-1, 0]])
    t = datacare.synonym_table(vocab, vecs, k=1, min_cosine=0.5)
    assert t["good"] == ["fine"] and "car" not in t


def test_pseudo_labels_take_the_surest_per_class():
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.99, 0.01]])
    idx, lab = datacare.pseudo_labels(p, 1)
    assert idx.tolist() == [4, 2] and lab.tolist() == [0, 1]
    idx, lab = datacare.pseudo_labels(p, 5)
    assert sorted(idx.tolist()) == [0, 1, 2, 3, 4]
