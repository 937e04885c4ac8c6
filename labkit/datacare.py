"""The data when labels are few: duplicates and leaks, wrong labels, augmentation, and
labels a model makes (notebook 12).

    >>> from labkit import datacare
    >>> pairs = datacare.near_duplicates(test_texts, train_texts, k=3, threshold=0.5)
    >>> X = datacare.encode(train_texts)                       # frozen MiniLM, cached
    >>> head = datacare.fit_head(X[budget], labels[budget])    # logistic regression
    >>> probs = datacare.out_of_fold_probs(X[budget], noisy)   # for confident learning
    >>> flagged = datacare.label_issues(noisy, probs)          # cleanlab's rule, by hand

Four ideas, in the order the notebook uses them:

* **Duplicates and leaks.** A sentence is a set of word *shingles* (its runs of `k`
  consecutive words); two sentences are near duplicates when the Jaccard similarity of
  those sets, |A and B| / |A or B|, is high. Comparing every pair is quadratic, so
  `near_duplicates` finds candidates with MinHash and locality-sensitive hashing
  (`datasketch`; Broder 1997): a MinHash signature of 128 numbers estimates Jaccard (the
  share of equal numbers), and LSH buckets signatures so that only pairs likely above the
  threshold are compared. Every candidate is then checked with the exact Jaccard.
* **Wrong labels.** `flip_labels` corrupts a known share of labels (so detection can be
  scored); `out_of_fold_probs` gives each example a predicted probability from a model
  that never saw it (k-fold); `label_issues` is confident learning's rule (Northcutt,
  Jiang & Chuang 2021), the one `cleanlab.filter.find_label_issues(...,
  filter_by="confident_learning")` applies: a per-class threshold (the mean probability
  the model gives class j to the examples labelled j), the class each example is
  confidently in, and a flag where that class is not its label.
* **Augmentation.** `eda` makes new sentences from one with EDA's operations (Wei & Zou
  2019): synonym replacement, random swap and random deletion; `synonym_table` finds
  the synonyms as nearest neighbours in a word-embedding table.
* **Labels a model makes.** `pseudo_labels` keeps the examples a model is most sure of,
  the same number per class (self-training; Xie et al. 2020's noisy student, in its
  simplest form).

The classifier throughout is a **frozen-feature** one: MiniLM's mean-pooled sentence
vectors (`encode`, computed once and cached under `runs/cache/`), and a logistic
regression on them (`fit_head`, scikit-learn: convex, so the same data always gives the
same model, and differences between runs come from the data, which is the lesson).
`log_accuracy` logs an accuracy through `labkit.protocol`, which writes its balanced
accuracy (the mean of the per-class recalls: chance 0.5 whatever the class balance) beside.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


# --------------------------------------------------------------------------- duplicates
def words(text: str) -> list[str]:
    """The lower-cased words of `text` (letters and digits, with an inner apostrophe:
    "Don't" -> "don't"); punctuation is dropped."""
    return _WORD.findall(text.lower())


def shingles(text: str, k: int = 3) -> set[tuple[str, ...]]:
    """The set of `k`-word shingles of `text`: every run of k consecutive words, as a
    tuple. A text of fewer than k words (but at least one) is one shingle of all its
    words; a text without words has none."""
    if k < 1:
        raise ValueError(f"a shingle needs at least one word, got k={k}")
    w = words(text)
    if not w:
        return set()
    if len(w) < k:
        return {tuple(w)}
    return {tuple(w[i:i + k]) for i in range(len(w) - k + 1)}


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; 0.0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def shingle_jaccard(text_a: str, text_b: str, k: int = 3) -> float:
    """The exact Jaccard similarity of two texts' `k`-word shingle sets."""
    return jaccard(shingles(text_a, k), shingles(text_b, k))


def _shingle_bytes(text: str, k: int) -> list[bytes]:
    return [" ".join(s).encode("utf-8") for s in sorted(shingles(text, k))]


def minhash(text: str, *, k: int = 3, num_perm: int = 128, seed: int = 1):
    """The MinHash signature of a text's shingles (`datasketch.MinHash`): for each of
    `num_perm` hash functions, the smallest hash over the shingles. Two signatures agree
    at a position with probability equal to the Jaccard similarity of the sets."""
    return signatures([text], k=k, num_perm=num_perm, seed=seed)[0]


def signatures(texts: Sequence[str], *, k: int = 3, num_perm: int = 128, seed: int = 1):
    """`minhash` of every text, with the hash functions drawn once for all of them
    (`datasketch.MinHash.bulk`)."""
    from datasketch import MinHash

    return MinHash.bulk([_shingle_bytes(t, k) for t in texts], num_perm=num_perm, seed=seed)


def minhash_jaccard(a, b) -> float:
    """The MinHash estimate of Jaccard: the share of positions where two signatures
    (same `num_perm` and seed) hold the same number."""
    return float(np.mean(np.asarray(a.hashvalues) == np.asarray(b.hashvalues)))


def near_duplicates(queries: Sequence[str], corpus: Sequence[str] | None = None, *,
                    k: int = 3, threshold: float = 0.5, num_perm: int = 128,
                    seed: int = 1) -> list[tuple[int, int, float]]:
    """Pairs (i, j, exact Jaccard) with `queries[i]` and `corpus[j]` near duplicates:
    shingle Jaccard at or above `threshold`. Candidates come from MinHash LSH; each is
    verified with `shingle_jaccard`, so no pair below the threshold is returned (a pair
    LSH missed can be, rarely). Without `corpus`: pairs within `queries`, i < j."""
    from datasketch import MinHashLSH

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a Jaccard similarity in (0, 1], got {threshold}")
    within = corpus is None
    corpus = queries if within else corpus
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs = signatures(corpus, k=k, num_perm=num_perm, seed=seed)
    qsigs = sigs if within else signatures(queries, k=k, num_perm=num_perm, seed=seed)
    for j, sig in enumerate(sigs):
        if shingles(corpus[j], k):
            lsh.insert(j, sig)
    out = []
    for i, text in enumerate(queries):
        if not shingles(text, k):
            continue
        for j in lsh.query(qsigs[i]):
            if within and j <= i:
                continue
            sim = shingle_jaccard(text, corpus[j], k)
            if sim >= threshold:
                out.append((i, int(j), sim))
    return sorted(out)


# --------------------------------------------------------------------------- the classifier
def _cache_dir():
    from .ledger import runs_dir
    return runs_dir() / "cache"


def encode(texts: Sequence[str], *, model: str = "minilm", profile: str = "quick",
           max_length: int = 64, batch_size: int = 64, cache: bool = True) -> np.ndarray:
    """Sentence vectors of a frozen encoder: the mean of its token vectors over the real
    tokens (`finetune.mean_pool`), scaled to length 1, (len(texts), hidden) float32.

    Computed once per (model, texts, max_length) and kept in `runs/cache/` (the key is a
    hash of all three, so a changed text never reads a stale vector)."""
    import datasets
    import torch

    from . import finetune, models

    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("encode() got no texts")
    key = hashlib.sha256("\n".join([model, str(max_length), *texts]).encode()).hexdigest()[:20]
    path = _cache_dir() / f"features-{model}-{key}.npy"
    if cache and path.exists():
        return np.load(path)
    enc, tok = models.load(model, task="base", profile=profile)
    rows = finetune.tokenize(datasets.Dataset.from_dict({"text": texts, "label": [0] * len(texts)}),
                             tok, max_length=max_length)
    with torch.inference_mode():
        x = finetune.features(enc, rows, pool="mean", batch_size=batch_size)
    x = torch.nn.functional.normalize(x, dim=1).numpy().astype(np.float32)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, x)
        tmp.replace(path)
    return x


C = 1.0      # the inverse L2 strength of every head (sklearn's default)


def fit_head(X: np.ndarray, y: Sequence[int], *, C: float = C, sample_weight=None):
    """A logistic regression on frozen features (scikit-learn, lbfgs): convex, so the
    same rows give the same model."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y)
    if len(X) != len(y) or len(y) == 0:
        raise ValueError(f"fit_head: {len(X)} feature rows but {len(y)} labels")
    if len(np.unique(y)) < 2:
        raise ValueError("fit_head needs examples of at least two classes")
    return LogisticRegression(C=C, max_iter=2000).fit(X, y, sample_weight=sample_weight)


def out_of_fold_probs(X: np.ndarray, y: Sequence[int], *, folds: int = 5, seed: int = 0,
                      C: float = C) -> np.ndarray:
    """Each example's predicted class probabilities from a head trained on the other
    folds (stratified `folds`-fold): a model never judges a label it learnt from."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    probs = np.zeros((len(y), int(y.max()) + 1))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_idx, held in split.split(X, y):
        probs[held] = fit_head(X[fit_idx], y[fit_idx], C=C).predict_proba(X[held])
    return probs


def log_accuracy(run, metric: str, predictions: Sequence[int], labels: Sequence[int], *,
                 budget: int | None, model: str, seed: int, **extra) -> dict:
    """Log one accuracy on the protocol's test rows (`protocol.log_accuracy`: per-row
    correctness, and `balanced_acc` beside it from these gold labels). Returns {"value",
    "balanced_acc", "correct"}."""
    from . import protocol

    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"need one prediction per label (got {p.shape} and {y.shape})")
    correct = (p == y).tolist()
    value = protocol.log_accuracy(run, metric, correct, budget=budget, model=model, seed=seed,
                                  labels=y.tolist(), **extra)
    return {"value": value, "balanced_acc": protocol.balanced_accuracy(correct, y.tolist()),
            "correct": correct}


# --------------------------------------------------------------------------- wrong labels
def flip_labels(labels: Sequence[int], share: float, *, seed: int = 0,
                num_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A copy of `labels` with round(share * n) of them, drawn at random, changed to
    another class (uniformly among the others). Returns (noisy labels, flipped mask)."""
    y = np.asarray(labels).copy()
    if not 0 <= share < 1:
        raise ValueError(f"share is a fraction in [0, 1), got {share}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=int(round(share * len(y))), replace=False)
    y[idx] = (y[idx] + rng.integers(1, num_classes, size=len(idx))) % num_classes
    flipped = np.zeros(len(y), dtype=bool)
    flipped[idx] = True
    return y, flipped


def confident_thresholds(labels: Sequence[int], probs: np.ndarray) -> np.ndarray:
    """Per class j, the mean probability of class j among the examples labelled j: how
    sure the model is, on average, of a label it agrees with."""
    y = np.asarray(labels)
    t = [probs[y == j, j].mean() if (y == j).any() else 2.0 for j in range(probs.shape[1])]
    return np.clip(t, 2e-6, None)       # a class nobody carries is never confident


def label_issues(labels: Sequence[int], probs: np.ndarray) -> np.ndarray:
    """Confident learning's flags (a bool per example), as `cleanlab.filter.
    find_label_issues(labels, probs, filter_by="confident_learning")` computes them:

    1. t_j = `confident_thresholds` (the mean p_j over the examples labelled j);
    2. example i is confidently in class j when p_ij >= t_j; its guess is that class, or,
       when several classes pass, the most probable of them; with none it is not judged;
    3. it is flagged when its guess is not its label, unless its most probable class is
       its label anyway (a tie goes to the label)."""
    y = np.asarray(labels)
    probs = np.asarray(probs)
    t = confident_thresholds(y, probs)
    confident = probs >= t - 1e-6
    several = confident.sum(1) > 1
    guess = np.where(several, probs.argmax(1), confident.argmax(1))
    judged = confident.any(1)
    boosted = probs.copy()
    boosted[np.arange(len(y)), y] += 1e-6
    return judged & (guess != y) & (boosted.argmax(1) != y)


def detection(flagged: np.ndarray, flipped: np.ndarray) -> dict:
    """How well flags find known flips: precision (share of flags that are flips),
    recall (share of flips flagged), and the counts."""
    flagged, flipped = np.asarray(flagged, bool), np.asarray(flipped, bool)
    hits = int((flagged & flipped).sum())
    return {"flagged": int(flagged.sum()), "flipped": int(flipped.sum()), "hits": hits,
            "precision": hits / flagged.sum() if flagged.any() else float("nan"),
            "recall": hits / flipped.sum() if flipped.any() else float("nan")}


# --------------------------------------------------------------------------- augmentation
def synonym_table(vocab: Sequence[str], vectors: np.ndarray, *, k: int = 3,
                  min_cosine: float = 0.5, keep: set[str] | None = None) -> dict[str, list[str]]:
    """{word: up to `k` nearest other words with cosine >= `min_cosine`} over the rows of
    an embedding table (`vectors[i]` is `vocab[i]`). `keep`: only these words get an
    entry. Nearest neighbours in a word-vector space are often synonyms, and sometimes
    antonyms ("good" and "bad" appear in the same contexts): EDA's known risk."""
    v = np.asarray(vectors, dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
    rows = [i for i, w in enumerate(vocab) if keep is None or w in keep]
    table = {}
    for start in range(0, len(rows), 512):
        chunk = rows[start:start + 512]
        sims = v[chunk] @ v.T
        sims[np.arange(len(chunk)), chunk] = -1
        top = np.argsort(-sims, axis=1)[:, :k]
        for r, i in enumerate(chunk):
            near = [vocab[j] for j in top[r] if sims[r, j] >= min_cosine]
            if near:
                table[vocab[i]] = near
    return table


STOP = frozenset("a an the and or but of to in on at for with by from as is was were be "
                 "been are it its this that these those i you he she we they me him her us "
                 "them my your his our their not no".split())


def eda(text: str, rng: np.random.Generator, synonyms: dict[str, list[str]] | None = None, *,
        alpha: float = 0.1) -> str:
    """One EDA variant of `text` (Wei & Zou 2019): each of synonym replacement (a word
    that is not a stop word, swapped for one of its `synonyms`), random swap (two words
    trade places) and random deletion (each word dropped with probability `alpha`) is
    applied with n = max(1, alpha * words) changes; one operation, drawn at random, per
    call. Works on the lower-cased words (punctuation dropped)."""
    w = words(text)
    if len(w) < 2:
        return " ".join(w)
    n = max(1, int(alpha * len(w)))
    ops = ["swap", "delete"] + (["synonym"] if synonyms else [])
    op = ops[int(rng.integers(len(ops)))]
    if op == "synonym":
        slots = [i for i, x in enumerate(w) if x in synonyms and x not in STOP]
        for i in rng.permutation(slots)[:n]:
            options = synonyms[w[i]]
            w[i] = options[int(rng.integers(len(options)))]
    elif op == "swap":
        for _ in range(n):
            i, j = rng.choice(len(w), size=2, replace=False)
            w[i], w[j] = w[j], w[i]
    else:
        kept = [x for x in w if rng.random() >= alpha]
        w = kept or [w[int(rng.integers(len(w)))]]
    return " ".join(w)


def augment(texts: Sequence[str], labels: Sequence[int], *, per_text: int, seed: int,
            synonyms: dict[str, list[str]] | None = None,
            alpha: float = 0.1) -> tuple[list[str], list[int]]:
    """`per_text` EDA variants of every text, each with its source's label (the
    originals are not included)."""
    rng = np.random.default_rng(seed)
    out_t, out_y = [], []
    for t, y in zip(texts, labels):
        for _ in range(per_text):
            out_t.append(eda(t, rng, synonyms, alpha=alpha))
            out_y.append(int(y))
    return out_t, out_y


# --------------------------------------------------------------------------- self-training
def pseudo_labels(probs: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The examples a model is surest of: for each class, the `per_class` examples it
    predicts as that class with the highest probability (fewer if it predicts fewer).
    Returns (row indices, their predicted labels). Equal numbers per class keep a model
    that leans to one class from teaching itself to lean further."""
    probs = np.asarray(probs)
    pred = probs.argmax(1)
    idx, lab = [], []
    for c in range(probs.shape[1]):
        rows = np.flatnonzero(pred == c)
        best = rows[np.argsort(-probs[rows, c], kind="stable")[:per_class]]
        idx.append(best)
        lab.append(np.full(len(best), c))
    return np.concatenate(idx), np.concatenate(lab)
