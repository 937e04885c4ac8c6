"""Tiny random models and the tokenizer they share, for tests that need a real model
class but not its weights (imported by the test modules, never collected itself)."""

import copy

import pytest
import torch
import transformers

from labkit import models


@pytest.fixture(scope="module")
def tok():
    """tiny-mlm's tokenizer with its [SEP] as end of text (trl appends one to completions)."""
    _, t = models.load("tiny-mlm", task="masked-lm")
    t = copy.deepcopy(t)
    t.eos_token = t.sep_token
    return t


def tiny_llama(vocab: int, seed: int = 0, *, hidden: int = 32, layers: int = 2, heads: int = 4,
               kv_heads: int = 2, positions: int = 128):
    """A random LlamaForCausalLM of `hidden` width, the same weights for the same seed."""
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                                   num_hidden_layers=layers, num_attention_heads=heads,
                                   num_key_value_heads=kv_heads, max_position_embeddings=positions)
    return transformers.LlamaForCausalLM(cfg).eval()
