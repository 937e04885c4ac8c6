"""Exercise 00.1: the parameters of a BERT encoder, checked on random small configs."""

import pytest

from labkit import checks
from labkit.checks import setup


def formula(config, biases=True, layernorms=True, all_embeddings=True, ffn_matrices=2):
    H, I, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    rows = config.vocab_size + (config.max_position_embeddings + config.type_vocab_size
                                if all_embeddings else 0)
    emb = rows * H + (2 * H if layernorms else 0)
    layer = 4 * H * H + (4 * H if biases else 0) + (4 * H if layernorms else 0)
    layer += H * I * ffn_matrices + ((I + H) if biases else 0)
    return emb + L * layer


def test_the_formula_and_the_reference_pass(capsys):
    setup.check_encoder_parameters(formula)
    setup.check_encoder_parameters(setup.encoder_parameters)
    assert checks.run("00.1", formula) is formula
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda c: formula(c, biases=False), "biases"),
    (lambda c: formula(c, layernorms=False), "LayerNorms"),
    (lambda c: formula(c, all_embeddings=False), "only the word embeddings"),
    (lambda c: formula(c, ffn_matrices=1), "missing a matrix"),
    (lambda c: formula(c) + 7, "you count"),
    (lambda c: str(formula(c)), "whole number"),
])
def test_common_mistakes_get_their_hint(wrong, hint):
    with pytest.raises(checks.Wrong, match=hint):
        setup.check_encoder_parameters(wrong)


def test_stub_falls_back_and_second_failure_links_the_solution(capsys):
    def stub(config):
        raise NotImplementedError

    assert checks.run("00.1", stub) is setup.encoder_parameters
    assert "not attempted" in capsys.readouterr().out
    wrong = lambda c: formula(c, biases=False)  # noqa: E731
    checks.run("00.1", wrong)
    assert "show me" not in capsys.readouterr().out
    assert checks.run("00.1", wrong) is setup.encoder_parameters
    out = capsys.readouterr().out
    assert "stronger hint" in out and "solutions/00_setup.md#exercise-00-1" in out
