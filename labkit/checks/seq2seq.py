"""Checkers for notebook 01 seq2seq translator's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def teacher_forcing(target: str, decoder_input: list[str], labels: list[str]) -> bool:
    """Exercise 01: under teacher forcing, what does the decoder read and what must it
    predict at each step, for the target sentence `target` (words as `labkit.text.words`
    splits them, with the special tokens "<s>" and "</s>")?"""
    from ..text import BOS, EOS, words

    tokens = words(target)
    ok = list(decoder_input) == [BOS, *tokens] and list(labels) == [*tokens, EOS]
    return verdict(ok, "both lists are as long as the sentence plus one; the decoder reads "
                        "the true previous word at every step, starting from <s>, and must "
                        "predict the word after it, ending with </s>")
