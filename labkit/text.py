"""From text to integer ids and back: word tokenisation, vocabularies, padding.

    >>> from labkit.text import Vocab, words
    >>> vocab = Vocab.build([words(s) for s in sentences], min_freq=2, max_size=8000)
    >>> ids = vocab.encode(words("It was great."), bos=True, eos=True)
    >>> vocab.decode(ids)
    'it was great .'

Notebooks that train from scratch (01, 02) use these word-level tools; subword
(WordPiece) tokenisers come from the `tokenizers` library (notebook 03).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


def words(text: str, lower: bool = True) -> list[str]:
    """Split into words and punctuation marks: "L'Éternel dit." -> ["l'éternel", "dit", "."]."""
    return _WORD.findall(text.lower() if lower else text)


class Vocab:
    """A word <-> id mapping with special tokens first (<pad>=0, <unk>=1, <s>=2, </s>=3)."""

    def __init__(self, tokens: Sequence[str], counts: Counter | None = None):
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in the vocabulary")
        self.counts = counts or Counter()

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], *, min_freq: int = 1,
              max_size: int | None = None, specials: Sequence[str] = (PAD, UNK, BOS, EOS)):
        """Most frequent tokens first (ties broken alphabetically, so builds repeat)."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        if not counts:
            raise ValueError("cannot build a vocabulary from no tokens: is the data empty?")
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in specials),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max(0, max_size - len(specials))]
        return cls([*specials, *kept], counts)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    @property
    def pad_id(self) -> int:
        return self.stoi[PAD]

    @property
    def unk_id(self) -> int:
        return self.stoi[UNK]

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    def encode(self, tokens: Sequence[str], *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = [self.stoi.get(t, self.unk_id) for t in tokens]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int], *, strip_specials: bool = True) -> str:
        specials = {self.pad_id, self.bos_id, self.eos_id}
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id and strip_specials:
                break
            if strip_specials and i in specials:
                continue
            out.append(self.itos[i])
        return " ".join(out)


def pad(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into a (batch, max_len) LongTensor; also return the lengths."""
    if not sequences:
        raise ValueError("pad() got no sequences")
    lengths = torch.tensor([len(s) for s in sequences])
    out = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


def tokenize(ds, tokenizer, *, max_length: int = 64, text_column: str = "text",
             label_column: str = "label"):
    """Token ids for every row of `ds` (a `datasets.Dataset` or `DatasetDict`), truncated
    to `max_length` tokens, no padding (the batches are padded by `finetune.collate`). Keeps the
    label column, so `data.sample(tokenized, n, seed=)` still draws balanced budgets."""
    splits = ds.values() if hasattr(ds, "keys") else [ds]
    for split in splits:
        missing = [c for c in (text_column, label_column) if c not in split.column_names]
        if missing:
            raise ValueError(f"tokenize: the data lacks column(s) {missing}; it has "
                             f"{split.column_names}. Pass text_column=/label_column= or "
                             "rename with ds.rename_column(old, new)")
        if len(split) == 0:
            raise ValueError("tokenize: got an empty split; check the data and any filter")
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 (room for [CLS] and [SEP]), "
                         f"got {max_length}")

    import datasets

    def encode(batch):
        return tokenizer(batch[text_column], truncation=True, max_length=max_length)

    any_split = next(iter(splits))
    drop = [c for c in any_split.column_names if c != label_column]
    quiet = datasets.is_progress_bar_enabled()
    if quiet:                         # a progress bar per split is noise in a notebook
        datasets.disable_progress_bars()
    try:
        out = ds.map(encode, batched=True, remove_columns=drop)
    finally:
        if quiet:
            datasets.enable_progress_bars()
    if label_column != "label":
        out = out.rename_column(label_column, "label")
    return out
