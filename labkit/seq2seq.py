"""Translation from scratch: a GRU encoder, a GRU decoder with Luong attention,
teacher forcing, greedy and beam-search decoding.

    >>> from labkit import seq2seq, text, train
    >>> src_vocab = text.Vocab.build([text.words(s) for s in english], min_freq=2)
    >>> tgt_vocab = text.Vocab.build([text.words(s) for s in french], min_freq=2)
    >>> pairs = seq2seq.encode_pairs(english, french, src_vocab, tgt_vocab)
    >>> model = seq2seq.Seq2Seq(len(src_vocab), len(tgt_vocab))
    >>> train.fit(model, pairs, collate_fn=seq2seq.collate, loss_fn=seq2seq.loss_fn)
    >>> seq2seq.translate(model, ["The lord said to moses."], src_vocab, tgt_vocab, beam=5)

The pieces, top to bottom:

* `encode_pairs` / `collate`: sentences -> id lists -> padded batches. The target is
  split into the decoder's input (`<s> w1 w2 ...`) and the labels (`w1 w2 ... </s>`),
  padding labelled -100 so the loss ignores it.
* `Encoder`: a bidirectional GRU over the source, run on a *packed* batch so padding is
  never read. `Attention`: Luong's "general" score, then `attend` (padded source
  positions masked out, softmax, weighted mean of the encoder's vectors).
  `Decoder`: a GRU over the target, then attention, then a softmax over the vocabulary.
* `loss_fn`: teacher forcing. The decoder sees the *true* previous word at every step,
  so one call scores the whole target sentence (no loop over time steps). While
  training, `output_loss` runs the output layer only at the real target words, fused
  with the cross-entropy a chunk of words at a time (the output layer is most of the
  cost of a step).
* `greedy` / `beam_search`: at test time there is no true previous word; the model feeds
  its own choices back, one word at a time, keeping the best 1 (greedy) or `beam`
  partial translations; `beam_step` is one step of the beam.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .text import Vocab, pad, words

IGNORE = -100   # label of padded target positions (the Hugging Face convention)


# --------------------------------------------------------------------------- data
def encode_pairs(sources: Sequence[str], targets: Sequence[str], src_vocab: Vocab,
                 tgt_vocab: Vocab, *, tokenize: Callable[[str], list[str]] = words,
                 max_len: int | None = None) -> list[dict]:
    """Tokenise and encode parallel sentences: one {"src": ids, "tgt": ids} per pair.

    The source ends with </s>; the target is wrapped in <s> ... </s>. With `max_len`,
    pairs with more than `max_len` words on either side are dropped.
    """
    if len(sources) != len(targets):
        raise ValueError(f"need one target per source (got {len(sources)} sources and "
                         f"{len(targets)} targets): pass the two columns of the same split")
    if len(sources) == 0:
        raise ValueError("encode_pairs() got no sentences: check the split and any filter")
    out = []
    for s, t in zip(sources, targets):
        if not isinstance(s, str) or not isinstance(t, str):
            raise TypeError(f"sentences must be strings, got {type(s).__name__} and "
                            f"{type(t).__name__}: pass ds['en'], ds['fr'], not token lists")
        sw, tw = tokenize(s), tokenize(t)
        if not sw or not tw or (max_len is not None and max(len(sw), len(tw)) > max_len):
            continue
        out.append({"src": src_vocab.encode(sw, eos=True),
                    "tgt": tgt_vocab.encode(tw, bos=True, eos=True)})
    if not out:
        raise ValueError(f"no pair left after tokenising (max_len={max_len}): every pair "
                         "was empty or too long; raise max_len")
    return out


def collate(examples: Sequence[dict], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of encoded pairs into one batch for `Seq2Seq` and `loss_fn`.

    src (B, S) and src_lengths (B,); tgt_in (B, T) = <s> w1 ... wn, labels (B, T) =
    w1 ... wn </s>, with padding labelled -100.
    """
    if not examples:
        raise ValueError("collate() got an empty batch")
    src, src_lengths = pad([e["src"] for e in examples], pad_id)
    tgt_in, _ = pad([e["tgt"][:-1] for e in examples], pad_id)
    labels, _ = pad([e["tgt"][1:] for e in examples], IGNORE)
    return {"src": src, "src_lengths": src_lengths, "tgt_in": tgt_in, "labels": labels}


def encode_sources(sentences: Sequence[str], src_vocab: Vocab, *,
                   tokenize: Callable[[str], list[str]] = words
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw source sentences -> a padded (B, S) batch and its lengths, ready to decode."""
    if isinstance(sentences, str):
        raise TypeError("pass a list of sentences, not one string: [sentence]")
    if len(sentences) == 0:
        raise ValueError("no sentences to translate")
    ids = [src_vocab.encode(tokenize(s), eos=True) for s in sentences]
    return pad(ids, src_vocab.pad_id)


# --------------------------------------------------------------------------- model
def _run_rnn(rnn: nn.GRU, x, state=None):
    """Run a GRU in fp32 even inside mixed precision: half-precision recurrent kernels
    depend on the cuDNN version, and the recurrence would accumulate rounding error.
    (The big matrix products around it still run in bf16/fp16 under `fit` on a GPU.)"""
    device_type = x.data.device.type
    with torch.autocast(device_type, enabled=False):
        return rnn(x, None if state is None else state.float())


@dataclass
class Seq2SeqOutput:
    """What the model returns: next-word logits (B, T, V) and attention (B, T, S)."""

    logits: torch.Tensor
    attention: torch.Tensor


class Encoder(nn.Module):
    """Embeddings and a bidirectional GRU; each source word gets a vector that has read
    the whole sentence (left-to-right half and right-to-left half)."""

    def __init__(self, vocab_size: int, emb_dim: int, hidden: int, layers: int = 1,
                 dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.rnn = nn.GRU(emb_dim, hidden, num_layers=layers, batch_first=True,
                          bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        x = self.dropout(self.embed(src))
        # Packing: the GRU runs over each sentence's real words only, so the right-to-left
        # pass starts at the last word, not at the padding after it.
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, last = _run_rnn(self.rnn, packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return out, last   # (B, S, 2H), (layers * 2, B, H)


def attend(scores: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor):
    """Attention weights and context vectors from attention scores.

    scores (B, T, S): how well output step t matches source position s; memory (B, S, M):
    the encoder's vectors; mask (B, S): True at real source words (at least one per
    sentence), False at padding. Returns (context (B, T, M), weights (B, T, S)): the
    weights are a softmax over the source positions, exactly 0 at padding; the context
    is the weighted mean of the memory vectors.
    """
    scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    weights = scores.softmax(-1)
    return weights @ memory, weights


class Attention(nn.Module):
    """Luong's "general" attention: score(h_t, m_s) = (W h_t) . m_s, softmax over the
    source positions that are real words (padding gets -inf, so weight 0). `attend`
    turns the scores into weights and context vectors (a function, so another one with
    the same contract can be swapped in)."""

    def __init__(self, query_dim: int, memory_dim: int, attend: Callable = attend):
        super().__init__()
        self.query = nn.Linear(query_dim, memory_dim, bias=False)
        self.attend = attend

    def forward(self, queries, memory, mask):
        # queries (B, T, H), memory (B, S, M), mask (B, S) True at real source words
        scores = self.query(queries) @ memory.transpose(1, 2)          # (B, T, S)
        return self.attend(scores, memory, mask)                       # (B, T, M), (B, T, S)


class Decoder(nn.Module):
    """One GRU over the target words, attention over the encoder's vectors, then
    Luong's attentional state tanh(W [h_t; context]) and a softmax over the vocabulary.

    The attentional state has the size of a word embedding, and the output layer *is*
    the embedding matrix (tied weights): a word's input and output vectors are one
    vector, which halves the largest matrix and helps rare words.

    The same code scores a whole sentence (teacher forcing, T words at once) and takes
    one step of decoding (T = 1), carrying the GRU `state` between calls.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden: int, memory_dim: int,
                 layers: int = 1, dropout: float = 0.0, pad_id: int = 0,
                 attend: Callable = attend):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.rnn = nn.GRU(emb_dim, hidden, num_layers=layers, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.attention = Attention(hidden, memory_dim, attend)
        self.combine = nn.Linear(hidden + memory_dim, emb_dim)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens, state, memory, mask):
        attentional, state, weights = self.states(tokens, state, memory, mask)
        return self.output(attentional), state, weights

    def states(self, tokens, state, memory, mask):
        """Everything before the output layer: the attentional states (B, T, E), with
        dropout, the GRU's new state and the attention weights (B, T, S)."""
        h, state = _run_rnn(self.rnn, self.dropout(self.embed(tokens)), state)   # (B, T, H)
        context, weights = self.attention(h, memory, mask)
        attentional = torch.tanh(self.combine(torch.cat([h, context], -1)))
        return self.dropout(attentional), state, weights

    def output(self, attentional):
        """The output layer: a score for every word of the vocabulary, (..., V)."""
        return F.linear(attentional, self.embed.weight, self.out_bias)


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention. `forward` is teacher-forced scoring; decode with
    `greedy` or `beam_search`. Ids of <pad>, <s>, </s> follow `labkit.text.Vocab`.
    `attend` is the function that turns attention scores into weights and context."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, emb_dim: int = 128,
                 hidden: int = 256, layers: int = 1, dropout: float = 0.1,
                 pad_id: int = 0, bos_id: int = 2, eos_id: int = 3,
                 attend: Callable = attend):
        super().__init__()
        if min(src_vocab_size, tgt_vocab_size) <= max(pad_id, bos_id, eos_id):
            raise ValueError("vocabulary sizes must include the special tokens: build the "
                             "vocabularies with labkit.text.Vocab.build and pass len(vocab)")
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.layers, self.hidden = layers, hidden
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.encoder = Encoder(src_vocab_size, emb_dim, hidden, layers, dropout, pad_id)
        self.bridge = nn.Linear(2 * hidden, hidden)   # encoder's last states -> decoder's first
        self.decoder = Decoder(tgt_vocab_size, emb_dim, hidden, 2 * hidden, layers, dropout,
                               pad_id, attend)

    def _check(self, src, src_lengths):
        if not torch.is_tensor(src) or src.dim() != 2 or src.dtype != torch.long:
            raise ValueError("src must be a (batch, length) LongTensor of token ids: use "
                             "seq2seq.collate or seq2seq.encode_sources")
        if src_lengths.shape != (src.size(0),):
            raise ValueError(f"src_lengths must hold one length per sentence: got shape "
                             f"{tuple(src_lengths.shape)} for {src.size(0)} sentences")
        if int(src_lengths.min()) < 1 or int(src_lengths.max()) > src.size(1):
            raise ValueError("src_lengths must be between 1 and the padded length: an empty "
                             "sentence, or lengths from another batch?")
        if int(src.max()) >= self.src_vocab_size or int(src.min()) < 0:
            raise ValueError(f"source id {int(src.max())} is outside the model's vocabulary "
                             f"of {self.src_vocab_size}: encode with the vocabulary the "
                             "model was built for")

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor):
        """Source batch -> (memory (B, S, 2H), decoder's first state, mask (B, S))."""
        self._check(src, src_lengths)
        memory, last = self.encoder(src, src_lengths)
        last = last.view(self.layers, 2, src.size(0), self.hidden)       # layer, direction
        state = torch.tanh(self.bridge(torch.cat([last[:, 0], last[:, 1]], -1)))
        positions = torch.arange(src.size(1), device=src.device)
        mask = positions[None, :] < src_lengths.to(src.device)[:, None]
        return memory, state.contiguous(), mask

    def forward(self, src, src_lengths, tgt_in, labels=None) -> Seq2SeqOutput:
        """Teacher-forced scores of every next word. (`labels` is accepted, and ignored,
        so that `model(**batch)` works; the loss is `loss_fn`'s job.)"""
        attentional, weights = self.states(src, src_lengths, tgt_in)
        return Seq2SeqOutput(self.decoder.output(attentional), weights)

    def states(self, src, src_lengths, tgt_in):
        """Teacher forcing up to the output layer: the decoder's attentional states
        (B, T, E) and the attention weights (B, T, S)."""
        if int(tgt_in.max()) >= self.tgt_vocab_size:
            raise ValueError(f"target id {int(tgt_in.max())} is outside the model's "
                             f"vocabulary of {self.tgt_vocab_size}")
        memory, state, mask = self.encode(src, src_lengths)
        attentional, _, weights = self.decoder.states(tgt_in, state, memory, mask)
        return attentional, weights


def loss_fn(model: Seq2Seq, batch: dict, label_smoothing: float = 0.0):
    """Teacher forcing: score every next word given the true previous ones; mean
    cross-entropy over the real (non-padding) target words.

    The output layer (a score for each word of the vocabulary at each position) costs
    more than the rest of the model. While training it runs only at the real target
    words, not at the padding, fused with the loss (`output_loss`), and no outputs are
    returned; in eval mode it scores every position and returns them, so that
    `evaluate` can count the words the model gets right.
    """
    labels = batch["labels"]
    if model.training:
        states, _ = model.states(batch["src"], batch["src_lengths"], batch["tgt_in"])
        real = labels != IGNORE
        return output_loss(states[real], model.decoder, labels[real], label_smoothing), None
    out = model(batch["src"], batch["src_lengths"], batch["tgt_in"])
    loss = F.cross_entropy(out.logits.flatten(0, 1).float(), labels.flatten(),
                           ignore_index=IGNORE, label_smoothing=label_smoothing)
    return loss, out


def output_loss(states: torch.Tensor, decoder: Decoder, labels: torch.Tensor,
                label_smoothing: float = 0.0, chunk: int = 256) -> torch.Tensor:
    """`F.cross_entropy(decoder.output(states), labels, label_smoothing=...)`, the same
    loss and gradients, computed `chunk` rows at a time.

    states (N, E): attentional states of the N words to score; labels (N,). The
    (N, V) scores never exist in full: each chunk's fit in the CPU's cache, and the
    gradients are worked out chunk by chunk along with the loss (the trick of fused
    "linear cross-entropy" kernels), so a step reads the big score matrix a few times
    less often.
    """
    if states.size(0) == 0:
        raise ValueError("output_loss() got no word to score: every label is -100")
    return _OutputLoss.apply(states, decoder.embed.weight, decoder.out_bias, labels,
                             label_smoothing, chunk)


class _OutputLoss(torch.autograd.Function):
    """Mean label-smoothed cross-entropy of x @ weight.T + bias, gradients included.

    For one row with scores z, label y, smoothing e and V words, the loss is
    logsumexp(z) - (1 - e) z[y] - e mean(z) (PyTorch's label smoothing), and its
    gradient with respect to z is softmax(z) - (1 - e) onehot(y) - e / V.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, labels, smoothing, chunk):
        with torch.autocast(x.device.type, enabled=False):   # fp32, like the GRU
            x32, w, b = x.float(), weight.float(), bias.float()
            n, vocab = x32.size(0), w.size(0)
            total = x32.new_zeros(())
            grad_x, grad_w, grad_b = torch.empty_like(x32), torch.zeros_like(w), torch.zeros_like(b)
            for start in range(0, n, chunk):
                rows, y = x32[start:start + chunk], labels[start:start + chunk, None]
                z = torch.addmm(b, rows, w.t())                          # (chunk, V)
                lse = z.logsumexp(-1, keepdim=True)
                total += (lse - (1 - smoothing) * z.gather(1, y)
                          - smoothing * z.mean(-1, keepdim=True)).sum()
                g = z.sub_(lse).exp_().sub_(smoothing / vocab)           # softmax - e / V
                g.scatter_add_(1, y, g.new_full(y.shape, smoothing - 1))  # - (1 - e) onehot
                grad_x[start:start + chunk] = g @ w
                grad_w.addmm_(g.t(), rows)
                grad_b += g.sum(0)
        ctx.save_for_backward(grad_x.to(x.dtype), grad_w.to(weight.dtype),
                              grad_b.to(bias.dtype))
        ctx.n = n
        return total / n

    @staticmethod
    def backward(ctx, grad_loss):
        grad_x, grad_w, grad_b = ctx.saved_tensors
        scale = grad_loss / ctx.n
        return grad_x * scale, grad_w * scale, grad_b * scale, None, None, None


# --------------------------------------------------------------------------- decoding
@dataclass
class Hypothesis:
    """One translation: target ids (without <s> and </s>), its total log-probability,
    and the attention of each output word over the source, (len(tokens) + 1, S)
    (the last row is the attention when </s> was chosen, if it was)."""

    tokens: list[int]
    score: float
    attention: torch.Tensor


def _decoding(fn):
    """Decode in eval mode (no dropout) without gradients, then restore the model's mode."""
    @functools.wraps(fn)
    def wrapper(model, *args, **kwargs):
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model, *args, **kwargs)
        finally:
            model.train(was_training)
    return wrapper


def _default_max_len(src_lengths: torch.Tensor) -> int:
    return int(src_lengths.max()) * 2 + 10


@_decoding
def greedy(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor,
           max_len: int | None = None) -> list[Hypothesis]:
    """Decode a batch by always taking the most likely next word."""
    dev = next(model.parameters()).device
    src, src_lengths = src.to(dev), src_lengths.to(dev)
    max_len = max_len or _default_max_len(src_lengths)
    memory, state, mask = model.encode(src, src_lengths)
    batch = src.size(0)
    tokens = torch.full((batch, 1), model.bos_id, dtype=torch.long, device=dev)
    done = torch.zeros(batch, dtype=torch.bool, device=dev)
    score = torch.zeros(batch, device=dev)
    chosen, attention = [], []
    for _ in range(max_len):
        logits, state, weights = model.decoder(tokens, state, memory, mask)
        logp = logits[:, -1].float().log_softmax(-1)
        best = logp.argmax(-1)
        score += torch.where(done, 0.0, logp.gather(1, best[:, None])[:, 0])
        best = best.masked_fill(done, model.pad_id)
        chosen.append(best)
        attention.append(weights[:, -1])
        done |= best == model.eos_id
        if bool(done.all()):
            break
        tokens = best[:, None]
    chosen, attention = torch.stack(chosen, 1).cpu(), torch.stack(attention, 1).float().cpu()
    return [_hypothesis(chosen[b].tolist(), float(score[b]), attention[b], int(src_lengths[b]),
                        model.eos_id) for b in range(batch)]


def _hypothesis(ids: list[int], score: float, attention: torch.Tensor, src_len: int,
                eos_id: int) -> Hypothesis:
    """Cut a decoded row at its first </s>; keep the attention rows up to it."""
    n = ids.index(eos_id) if eos_id in ids else len(ids)
    return Hypothesis(ids[:n], score, attention[:n + 1, :src_len])


def beam_step(score: torch.Tensor, length: torch.Tensor, done: torch.Tensor,
              logp: torch.Tensor, *, eos_id: int, pad_id: int, length_penalty: float = 1.0):
    """One step of beam search, for B sentences with K hypotheses each.

    score (B, K): each hypothesis' total log-probability so far (-inf: an empty slot);
    length (B, K): its number of words, </s> included; done (B, K): it has chosen </s>;
    logp (B, K, V): the log-probability of every next word after it.

    Every hypothesis is extended by every word (K * V candidates per sentence); a
    finished one only by <pad>, at no cost and without growing longer. The K best
    candidates, ranked by total log-probability / length ** length_penalty (the new
    length), best first, are returned as (score, length, done, parent, word), each
    (B, K): parent is the index (0..K-1) of the hypothesis a candidate extends, word its
    new word. K may be larger than V.
    """
    B, K, V = logp.shape
    frozen = torch.full((V,), float("-inf"), dtype=logp.dtype, device=logp.device)
    frozen[pad_id] = 0.0
    logp = torch.where(done[..., None], frozen, logp)
    total = score[..., None] + logp                                   # (B, K, V)
    new_len = length[..., None] + (~done[..., None]).to(length.dtype)
    ranked = total / new_len.clamp(min=1) ** length_penalty
    _, pick = ranked.reshape(B, K * V).topk(K, dim=1)                 # (B, K), best first
    parent, word = pick // V, pick % V
    score = total.reshape(B, K * V).gather(1, pick)
    length = new_len.expand(B, K, V).reshape(B, K * V).gather(1, pick)
    done = done.gather(1, parent) | (word == eos_id)
    return score, length, done, parent, word


@_decoding
def beam_search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, *,
                beam: int = 5, max_len: int | None = None,
                length_penalty: float = 1.0, step: Callable = beam_step) -> list[Hypothesis]:
    """Decode a batch keeping the `beam` best partial translations of each sentence.

    Hypotheses are ranked by log-probability / length ** length_penalty (0: raw
    log-probability, which favours short outputs; 1: mean log-probability per word).
    A hypothesis that has chosen </s> stays in the beam, frozen, until `beam` better
    ones push it out; the search ends when every kept hypothesis is finished.
    With beam=1 this is exactly `greedy`. `step` is one step of the search (`beam_step`
    or a function with its contract).
    """
    if not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be a whole number >= 1, got {beam!r}")
    if beam > model.tgt_vocab_size:
        raise ValueError(f"beam {beam} is larger than the target vocabulary "
                         f"({model.tgt_vocab_size})")
    dev = next(model.parameters()).device
    src, src_lengths = src.to(dev), src_lengths.to(dev)
    max_len = max_len or _default_max_len(src_lengths)
    memory, state, mask = model.encode(src, src_lengths)
    B, K, V = src.size(0), beam, model.tgt_vocab_size
    # Every sentence gets K rows: (B * K, ...), row b * K + k is beam k of sentence b.
    memory, mask = memory.repeat_interleave(K, 0), mask.repeat_interleave(K, 0)
    state = state.repeat_interleave(K, 1)
    score = torch.full((B, K), float("-inf"), device=dev)
    score[:, 0] = 0.0                         # at the start only one hypothesis: "<s>"
    length = torch.zeros(B, K, device=dev)    # words so far, </s> included
    done = torch.zeros(B, K, dtype=torch.bool, device=dev)
    tokens = torch.full((B * K, 1), model.bos_id, dtype=torch.long, device=dev)
    steps = []   # per step: chosen word, which beam it extends, attention
    rows = torch.arange(B, device=dev)[:, None] * K
    for _ in range(max_len):
        logits, state, weights = model.decoder(tokens, state, memory, mask)
        logp = logits[:, -1].float().log_softmax(-1).view(B, K, V)
        score, length, done, parent, word = step(score, length, done, logp,
                                                 eos_id=model.eos_id, pad_id=model.pad_id,
                                                 length_penalty=length_penalty)
        flat_parent = (rows + parent).view(-1)
        state = state[:, flat_parent]
        steps.append((word.cpu(), parent.cpu(), weights[flat_parent, -1].float().cpu()))
        if bool(done.all()):
            break
        tokens = word.view(-1, 1)
    # Follow the back-pointers from the best final hypothesis (beam 0) of each sentence.
    out = []
    for b in range(B):
        k, ids, attn = 0, [], []
        for word, parent, weights in reversed(steps):
            ids.append(int(word[b, k]))
            attn.append(weights[b * K + k])
            k = int(parent[b, k])
        ids.reverse()
        attn.reverse()
        out.append(_hypothesis(ids, float(score[b, 0]), torch.stack(attn),
                               int(src_lengths[b]), model.eos_id))
    return out


def detokenize(text: str) -> str:
    """Undo the spaces `words` puts around punctuation and inside hyphenated words:
    "il dit : soixante - douze ." -> "il dit: soixante-douze."."""
    text = re.sub(r" ([.,;:!?)\]])", r"\1", text)
    text = re.sub(r"([(\[]) ", r"\1", text)
    return re.sub(r"(\w) - (?=\w)", r"\1-", text)


def translate(model: Seq2Seq, sentences: Sequence[str], src_vocab: Vocab, tgt_vocab: Vocab,
              *, beam: int = 1, batch_size: int = 64, max_len: int | None = None,
              length_penalty: float = 1.0, step: Callable = beam_step,
              tokenize: Callable[[str], list[str]] = words) -> list[str]:
    """Translate raw sentences: greedy with beam=1, beam search otherwise (with `step`).

    Sentences are batched by length (the longest first, so each batch is padded little
    and a batch stops decoding soon after its own longest output); the translations
    come back in the order of `sentences`.
    """
    src, lengths = encode_sources(sentences, src_vocab, tokenize=tokenize)
    order = sorted(range(len(src)), key=lambda i: -int(lengths[i]))
    out: list[str] = [""] * len(src)
    for start in range(0, len(src), batch_size):
        idx = torch.tensor(order[start:start + batch_size])
        s, n = src[idx], lengths[idx]
        s = s[:, :int(n.max())]
        if beam == 1:
            hyps = greedy(model, s, n, max_len)
        else:
            hyps = beam_search(model, s, n, beam=beam, max_len=max_len,
                               length_penalty=length_penalty, step=step)
        for i, h in zip(idx.tolist(), hyps):
            out[i] = detokenize(tgt_vocab.decode(h.tokens))
    return out


def plot_attention(hypothesis: Hypothesis, src_words: Sequence[str],
                   tgt_words: Sequence[str], ax=None):
    """Heat-map of attention: one row per output word, one column per source word."""
    import matplotlib.pyplot as plt

    weights = hypothesis.attention[:len(tgt_words), :len(src_words)].numpy()
    tgt_words = list(tgt_words)[:weights.shape[0]]   # no </s> row if decoding hit max_len
    if ax is None:
        _, ax = plt.subplots(figsize=(0.35 * len(src_words) + 2, 0.3 * len(tgt_words) + 1.5))
    ax.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(src_words)), src_words, rotation=90)
    ax.set_yticks(range(len(tgt_words)), tgt_words)
    ax.set_xlabel("source (English)")
    ax.set_ylabel("output (French)")
    return ax
