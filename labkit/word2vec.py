"""Word2Vec from scratch: skip-gram with negative sampling (SGNS), and how to judge word vectors.

    >>> from labkit import word2vec as w2v, train
    >>> sents = w2v.tokenize(texts)                         # lists of words, punctuation dropped
    >>> corpus = w2v.Corpus.build(sents, min_count=5)      # vocabulary + one long id stream
    >>> pairs = w2v.SkipGramBatches(corpus, window=5, negative=5, batch_size=4096, share=64)
    >>> model = w2v.SkipGram(len(corpus.vocab), dim=100)
    >>> train.fit(model, pairs, loss_fn=w2v.sgns_loss, max_steps=epochs * len(pairs),
    ...           batch_size=4096, optimizer=torch.optim.SGD(model.parameters(), lr=0.025 * 4096),
    ...           clip=None, warmup=0, min_lr_ratio=0.004)     # word2vec's 0.025 -> 0.0001
    >>> vecs = w2v.WordVectors.from_model(model, corpus.vocab)
    >>> w2v.wordsim(vecs, w2v.load_word_pairs(path))   # {'spearman': ..., 'coverage': ...}

The three tricks of Mikolov et al. (2013) that make skip-gram fast and good, each a small
function here so it can be tested on its own:

* **frequent-word subsampling**: each occurrence of a word with corpus frequency f is kept
  with probability (sqrt(f/t) + 1) * t/f (the word2vec C code's formula, also gensim's),
  capped at 1: 'the' and 'of' are mostly dropped, rare words always kept;
* **the noise distribution** for negatives: unigram counts raised to 3/4, which gives rare
  words more chances to be a negative than their raw frequency would;
* **the dynamic window**: each centre word draws its window uniformly from 1..window, so a
  neighbour at distance d is used with probability (window - d + 1) / window: near words
  count more.

Pairs are generated for a whole epoch at once with tensor operations (no Python loop over
words), shuffled, and fed to `labkit.train.fit` as ready-made batches. Two choices make a
step cheap on a CPU: sparse embedding gradients (plain SGD touches only the rows in the
batch) and negatives shared by small groups of pairs (`share`, see `SkipGramBatches`).

The evaluation half (used for our vectors and for gensim's alike): WordSim-style Spearman
correlation with coverage, 3CosAdd analogies restricted to in-vocabulary questions, nearest
neighbours, a 2-D PCA projection. Last, `BagOfEmbeddings`: a tiny sentence classifier
whose embedding layer can start from the learnt vectors (the transfer experiment).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .text import PAD, UNK, Vocab, pad, words

SPECIALS = (PAD, UNK)


# --------------------------------------------------------------------------- corpus
def tokenize(texts: Iterable[str]) -> list[list[str]]:
    """Lower-cased words of each text; punctuation-only tokens are dropped."""
    return [[w for w in words(t) if any(ch.isalnum() for ch in w)] for t in texts]


@dataclass
class Corpus:
    """A vocabulary and the whole corpus as one id stream (`ids`), with the sentence each
    token came from (`sent`) so that windows never cross a sentence boundary. Words
    below `min_count` are dropped from the stream (as word2vec and gensim do)."""

    vocab: Vocab
    ids: torch.Tensor       # (n_tokens,) int64
    sent: torch.Tensor      # (n_tokens,) int64, sentence index of each token
    counts: torch.Tensor    # (len(vocab),) float64, corpus count of each id (0 for specials)

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], *, min_count: int = 5,
              max_size: int | None = None) -> "Corpus":
        if not any(len(s) for s in sentences):
            raise ValueError("the corpus is empty: no sentence has a word. Check the split "
                             "and the tokenizer (tokenize() drops punctuation-only tokens)")
        vocab = Vocab.build(sentences, min_freq=min_count, max_size=max_size, specials=SPECIALS)
        if len(vocab) == len(SPECIALS):
            raise ValueError(f"no word occurs at least min_count={min_count} times: "
                             "lower min_count or use more text")
        stoi = vocab.stoi
        ids, sent = [], []
        for k, s in enumerate(sentences):
            kept = [stoi[w] for w in s if w in stoi]
            ids.extend(kept)
            sent.extend([k] * len(kept))
        counts = torch.tensor([0.0] * len(SPECIALS)
                              + [float(vocab.counts[w]) for w in vocab.itos[len(SPECIALS):]],
                              dtype=torch.float64)
        return cls(vocab, torch.tensor(ids, dtype=torch.long),
                   torch.tensor(sent, dtype=torch.long), counts)

    def __len__(self) -> int:
        return len(self.ids)


# --------------------------------------------------------------------------- the three tricks
def keep_probabilities(counts: torch.Tensor, t: float = 1e-3) -> torch.Tensor:
    """P(keep an occurrence) per word id: (sqrt(f/t) + 1) * t/f with f = count / total,
    capped at 1; ids with count 0 (the specials) get 0. `t=0` turns subsampling off."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("counts must be non-negative with a positive total")
    if t < 0:
        raise ValueError(f"subsampling threshold t must be >= 0, got {t}")
    if t == 0:
        return (counts > 0).double()
    f = counts / counts.sum()
    keep = torch.where(f > 0, (torch.sqrt(f / t) + 1) * t / f.clamp_min(1e-300),
                       torch.zeros_like(f))
    return keep.clamp(max=1.0)


def noise_distribution(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """The distribution negatives are drawn from: count**power, normalised."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("counts must be non-negative with a positive total")
    p = counts.pow(power) * (counts > 0)
    return p / p.sum()


def window_sizes(n: int, window: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One effective window per centre word, uniform on 1..window (the dynamic window)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    return torch.randint(1, window + 1, (n,), generator=generator)


def skipgram_pairs(ids: torch.Tensor, sent: torch.Tensor, spans: torch.Tensor):
    """All (centre, context) id pairs: token i is paired with i +- d for d <= spans[i],
    within its own sentence. Vectorised: one tensor operation per distance d."""
    if not (len(ids) == len(sent) == len(spans)):
        raise ValueError("ids, sent and spans must have the same length")
    pos = torch.arange(len(ids))
    centres, contexts = [], []
    for d in range(1, int(spans.max()) + 1 if len(spans) else 1):
        left, right = pos[:-d], pos[d:]                 # token pairs at distance d
        same = sent[left] == sent[right]
        fwd = same & (spans[left] >= d)                 # centre left, context right
        bwd = same & (spans[right] >= d)                # centre right, context left
        centres += [ids[left[fwd]], ids[right[bwd]]]
        contexts += [ids[right[fwd]], ids[left[bwd]]]
    if not centres:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return torch.cat(centres), torch.cat(contexts)


class SkipGramBatches:
    """An epoch of shuffled skip-gram batches for `labkit.train.fit`.

    Each pass (`iter`) subsamples the corpus afresh, draws dynamic windows, builds all
    pairs with `skipgram_pairs`, shuffles them and yields dicts `{"centre": (B,),
    "context": (B,), "negatives": (B // share, negative)}`. Negatives are drawn from the
    noise distribution; each group of `share` consecutive pairs (the pairs are shuffled,
    so a group is a random set of pairs) uses the same `negative` noise words. With
    `share=1` every pair has its own negatives, as in word2vec; larger groups give the
    same expected gradient with one matrix multiply per group instead of one tiny one per
    pair, and gather far fewer rows: several times faster on a CPU.

    A pass repeats from `seed` and the pass number. `len()` is the number of batches in a
    pass (fixed from the first pass; a pass that happens to make more pairs is cut there,
    one that makes fewer ends early). Give `fit` `batch_size=` this `batch_size`, so that
    it does not split the ready-made batches. `keep_fn(counts, sample)` gives the
    probability of keeping each word (default `keep_probabilities`).
    """

    def __init__(self, corpus: Corpus, *, window: int = 5, negative: int = 5,
                 batch_size: int = 4096, share: int = 1, sample: float = 1e-3,
                 power: float = 0.75, seed: int = 0,
                 keep_fn: Callable[[torch.Tensor, float], torch.Tensor] | None = None):
        if len(corpus) == 0:
            raise ValueError("the corpus has no tokens")
        if negative < 1:
            raise ValueError(f"negative must be at least 1, got {negative}")
        if share < 1 or batch_size % share:
            raise ValueError(f"batch_size ({batch_size}) must be a multiple of share ({share})")
        self.corpus, self.window, self.negative = corpus, window, negative
        self.batch_size, self.share, self.seed = batch_size, share, seed
        self.keep = (keep_fn or keep_probabilities)(corpus.counts.double(), sample).float()
        self.noise = noise_distribution(corpus.counts, power).float()
        self.passes = 0
        centre, _ = self.pairs(0)
        if len(centre) < share:
            raise ValueError(f"the corpus makes only {len(centre)} pairs: too little text")
        self.n_pairs = len(centre)
        self.n_batches = max(1, math.ceil(len(centre) / batch_size))

    def pairs(self, epoch: int):
        """The shuffled (centre, context) pairs of pass `epoch`."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        c = self.corpus
        kept = torch.rand(len(c), generator=g) < self.keep[c.ids]
        ids, sent = c.ids[kept], c.sent[kept]
        centre, context = skipgram_pairs(ids, sent, window_sizes(len(ids), self.window, g))
        order = torch.randperm(len(centre), generator=g)
        return centre[order], context[order]

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        epoch, self.passes = self.passes, self.passes + 1
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 500_009)
        centre, context = self.pairs(epoch)
        for b in range(self.n_batches):
            start = b * self.batch_size
            size = min(self.batch_size, len(centre) - start) // self.share * self.share
            if size <= 0:
                break
            groups = size // self.share
            neg = torch.multinomial(self.noise, groups * self.negative, replacement=True,
                                    generator=g).view(groups, self.negative)
            yield {"centre": centre[start:start + size], "context": context[start:start + size],
                   "negatives": neg}


# --------------------------------------------------------------------------- the model
class SkipGram(nn.Module):
    """Two embedding tables: `inp` for centre words (the vectors we keep) and `out` for
    context words. Score of a pair = dot product; SGNS pushes it up for true contexts and
    down for negatives. Sparse gradients: a step touches only the rows in the batch."""

    def __init__(self, vocab_size: int, dim: int = 100, sparse: bool = True):
        super().__init__()
        self.inp = nn.Embedding(vocab_size, dim, sparse=sparse)
        self.out = nn.Embedding(vocab_size, dim, sparse=sparse)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)   # as word2vec does
        nn.init.zeros_(self.out.weight)

    def forward(self, centre, context, negatives):
        """Scores of each centre word with its context word, (B,), and with the negatives
        of its group, (B // share, share, negative)."""
        v = self.inp(centre)                                       # (B, D)
        pos = (v * self.out(context)).sum(-1)                      # (B,)
        v = v.view(negatives.shape[0], -1, v.shape[-1])                        # (G, share, D)
        neg = torch.bmm(v, self.out(negatives).transpose(1, 2))    # (G, share, K)
        return pos, neg


def sgns(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The SGNS loss from the scores: pos (B,) of each pair, neg (..., K) of the negatives
    of the B pairs (B * K scores in all, e.g. (B // share, share, K)). Per pair
    -log sigma(pos) - sum over its K negatives of log sigma(-neg), averaged over the B
    pairs. `logsigmoid` stays finite for scores of any size (log(sigmoid(x)) is -inf
    from x < -104 in float32)."""
    return -(F.logsigmoid(pos).sum() + F.logsigmoid(-neg).sum()) / len(pos)


def sgns_loss(model: SkipGram, batch: dict, objective: Callable = sgns) -> torch.Tensor:
    """SGNS for `fit`: score the batch's pairs and negatives, then `objective` (`sgns`)."""
    pos, neg = model(batch["centre"], batch["context"], batch["negatives"])
    return objective(pos, neg)


# --------------------------------------------------------------------------- word vectors
class WordVectors:
    """Words and their vectors, unit-normalised for cosine similarity. Built from our
    SkipGram (`from_model`) or from gensim (`from_gensim`), so both are judged by the
    same code."""

    def __init__(self, words: Sequence[str], vectors):
        vectors = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words) or len(words) == 0:
            raise ValueError(f"need one vector per word: {len(words)} words, "
                             f"vectors of shape {tuple(vectors.shape)}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.vectors = vectors
        self.unit = F.normalize(vectors, dim=1)

    @classmethod
    def from_model(cls, model: SkipGram, vocab: Vocab) -> "WordVectors":
        """The centre-word vectors, specials left out."""
        n = len(SPECIALS)
        return cls(vocab.itos[n:], model.inp.weight.detach().cpu()[n:])

    @classmethod
    def from_gensim(cls, kv) -> "WordVectors":
        """From a gensim KeyedVectors (`Word2Vec(...).wv`)."""
        return cls(list(kv.index_to_key), kv.vectors)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> torch.Tensor:
        return self.vectors[self.index[word]]

    def similarity(self, a: str, b: str) -> float:
        return float(self.unit[self.index[a]] @ self.unit[self.index[b]])

    def most_similar(self, word_or_vector, k: int = 5, exclude: Sequence[str] = ()):
        """The `k` nearest words by cosine, as (word, similarity) pairs; the query word
        itself and `exclude` are left out."""
        if isinstance(word_or_vector, str):
            if word_or_vector not in self:
                raise KeyError(f"{word_or_vector!r} is not in the vocabulary")
            q = self.unit[self.index[word_or_vector]]
            exclude = [*exclude, word_or_vector]
        else:
            q = F.normalize(torch.as_tensor(word_or_vector, dtype=torch.float32), dim=0)
        sims = self.unit @ q
        for w in exclude:
            if w in self.index:
                sims[self.index[w]] = -math.inf
        top = torch.topk(sims, min(k, len(self)))
        return [(self.words[i], float(s)) for s, i in zip(top.values, top.indices)]


def nearest_neighbours(vectors: WordVectors, queries: Sequence[str], k: int = 5) -> dict:
    """{query: [neighbour words]} for the queries in the vocabulary (others skipped)."""
    return {q: [w for w, _ in vectors.most_similar(q, k)] for q in queries if q in vectors}


def pca_2d(matrix) -> np.ndarray:
    """Project rows onto their first two principal components (centred SVD)."""
    x = torch.as_tensor(np.asarray(matrix), dtype=torch.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("pca_2d needs a matrix with at least two rows")
    x = x - x.mean(0)
    _, _, vt = torch.linalg.svd(x, full_matrices=False)
    return (x @ vt[:2].T).numpy()


# --------------------------------------------------------------------------- evaluation sets
def _eval_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"evaluation file {path} not found. The sets ship in the repository's "
            "data/word_eval/ (wordsim353.tsv, simlex999.txt, questions-words.txt); pass that "
            "path, e.g. labkit.data.data_dir() / 'word_eval' / 'wordsim353.tsv'")
    from .data import verified      # a bundled set is checked against its sha256

    return verified(path)


def load_word_pairs(path) -> list[tuple[str, str, float]]:
    """(word1, word2, human score) rows of a WordSim-353 / SimLex-999 style file
    (tab-separated, '#' comments); words lower-cased."""
    rows = []
    for n, line in enumerate(_eval_file(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            rows.append((parts[0].lower(), parts[1].lower(), float(parts[2])))
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{n}: expected 'word1<TAB>word2<TAB>score', "
                             f"got {line!r}") from None
    if not rows:
        raise ValueError(f"{path} has no word pairs")
    return rows


def load_analogies(path) -> list[tuple[str, str, str, str, str]]:
    """(section, a, b, c, d) rows of questions-words.txt ('a is to b as c is to d'),
    lower-cased; `: name` lines start a section."""
    rows, section = [], None
    for n, line in enumerate(_eval_file(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        parts = line.lower().split()
        if len(parts) != 4 or section is None:
            raise ValueError(f"{path}:{n}: expected four words under a ': section' line, "
                             f"got {line!r}")
        rows.append((section, *parts))
    if not rows:
        raise ValueError(f"{path} has no analogy questions")
    return rows


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson correlation of the ranks (ties: mean rank)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"need two equally long sequences of at least 2 values, "
                         f"got {x.shape} and {y.shape}")

    def ranks(v):
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        # tied values share the mean of their ranks
        _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=r)
        return sums[inverse] / counts[inverse]

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx ** 2).sum() * (ry ** 2).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def wordsim(vectors: WordVectors, pairs: Sequence[tuple[str, str, float]]) -> dict:
    """Spearman correlation between cosine similarity and human scores, over the pairs
    whose two words are both in the vocabulary; `coverage` is the fraction of such pairs."""
    if not pairs:
        raise ValueError("no word pairs to evaluate")
    known = [(a, b, s) for a, b, s in pairs if a in vectors and b in vectors]
    if len(known) < 2:
        raise ValueError(f"only {len(known)} of {len(pairs)} pairs have both words in the "
                         "vocabulary: too few for a correlation (more text, lower min_count)")
    model = [vectors.similarity(a, b) for a, b, _ in known]
    human = [s for _, _, s in known]
    return {"spearman": spearman(model, human), "coverage": len(known) / len(pairs),
            "n": len(known), "total": len(pairs)}


def analogy(vectors: WordVectors, questions: Sequence[tuple[str, str, str, str, str]],
            batch_size: int = 512) -> dict:
    """3CosAdd on the questions whose four words are in the vocabulary: the answer to
    'a : b :: c : ?' is the word closest to b - a + c (unit vectors), a, b and c excluded.
    Returns accuracy, coverage, counts and the accuracy per section."""
    if not questions:
        raise ValueError("no analogy questions to evaluate")
    known = [q for q in questions if all(w in vectors for w in q[1:])]
    if not known:
        return {"accuracy": float("nan"), "coverage": 0.0, "n": 0, "total": len(questions),
                "sections": {}}
    idx = torch.tensor([[vectors.index[w] for w in q[1:]] for q in known])
    correct = torch.zeros(len(known), dtype=torch.bool)
    u = vectors.unit
    for start in range(0, len(known), batch_size):
        a, b, c, d = idx[start:start + batch_size].T
        target = F.normalize(u[b] - u[a] + u[c], dim=1)
        scores = target @ u.T
        rows = torch.arange(len(a))
        for col in (a, b, c):
            scores[rows, col] = -math.inf
        correct[start:start + batch_size] = scores.argmax(1) == d
    sections: dict[str, list[int]] = {}
    for q, ok in zip(known, correct.tolist()):
        sections.setdefault(q[0], []).append(ok)
    return {"accuracy": float(correct.float().mean()), "coverage": len(known) / len(questions),
            "n": len(known), "total": len(questions),
            "sections": {s: (float(np.mean(v)), len(v)) for s, v in sections.items()}}


# --------------------------------------------------------------------------- transfer
class BagOfEmbeddings(nn.Module):
    """A small sentence classifier: mean of the word embeddings (padding ignored), then a
    linear layer. `from_vectors` starts the embeddings from learnt word vectors."""

    def __init__(self, vocab_size: int, dim: int, num_labels: int = 2, pad_id: int = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.head = nn.Linear(dim, num_labels)
        self.pad_id = pad_id

    def load_vectors(self, weight: torch.Tensor) -> None:
        """Copy `weight` (vocab_size, dim) into the embedding table; the pad row stays 0."""
        if weight.shape != self.embed.weight.shape:
            raise ValueError(f"vectors of shape {tuple(weight.shape)} do not fit an embedding "
                             f"of shape {tuple(self.embed.weight.shape)}: use the same vocab")
        with torch.no_grad():
            self.embed.weight.copy_(weight)
            self.embed.weight[self.pad_id] = 0

    def freeze_embeddings(self, frozen: bool = True) -> None:
        self.embed.weight.requires_grad_(not frozen)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None):
        mask = (input_ids != self.pad_id).unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp_min(1)
        logits = self.head(pooled)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SimpleNamespace(loss=loss, logits=logits)


def encode_texts(texts: Sequence[str], labels: Sequence[int], vocab: Vocab,
                 max_len: int = 64) -> list[dict]:
    """Examples for `BagOfEmbeddings`: word ids (unknown words -> <unk>) and the label."""
    return [{"input_ids": vocab.encode(words(t))[:max_len] or [vocab.unk_id], "labels": int(y)}
            for t, y in zip(texts, labels)]


def collate(examples: Sequence[dict]) -> dict:
    """Pad `input_ids` with 0 (= <pad>) and stack the labels."""
    ids, _ = pad([e["input_ids"] for e in examples])
    return {"input_ids": ids, "labels": torch.tensor([e["labels"] for e in examples])}
