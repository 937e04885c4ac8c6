"""Notebook 06's checkers: the reference passes, the common mistakes get their hint, a stub
falls back to labkit's reference."""

import torch

from labkit import checks, finetune
from labkit.checks import behaviour as c06
from checker_helpers import wrong


def test_replace_head_reference_passes_and_mistakes_get_their_hint():
    c06.check_replace_head(finetune.replace_head)

    def config_only(model, num_labels, *, seed=None):
        model.num_labels = model.config.num_labels = num_labels
        return model

    def sliced(model, num_labels, *, seed=None):
        old = model.classifier
        new = torch.nn.Linear(old.in_features, num_labels)
        with torch.no_grad():
            new.weight.copy_(old.weight[:num_labels])
            new.bias.copy_(old.bias[:num_labels])
        model.classifier = new
        model.num_labels = model.config.num_labels = num_labels
        return model

    def forgets_num_labels(model, num_labels, *, seed=None):
        if seed is not None:
            torch.manual_seed(seed)
        model.classifier = torch.nn.Linear(model.classifier.in_features, num_labels)
        return model

    def ignores_seed(model, num_labels, *, seed=None):
        model.classifier = torch.nn.Linear(model.classifier.in_features, num_labels)
        model.num_labels = model.config.num_labels = num_labels
        return model

    wrong(c06.check_replace_head, config_only, "still has 5 outputs")
    wrong(c06.check_replace_head, sliced, "reuses rows")
    wrong(c06.check_replace_head, forgets_num_labels, "model.num_labels")
    wrong(c06.check_replace_head, ignores_seed, "same seed")


def test_principal_direction_reference_passes_and_mistakes_get_their_hint():
    c06.check_principal_direction(finetune.principal_direction)
    wrong(c06.check_principal_direction,
          lambda x: torch.linalg.svd(x, full_matrices=False).Vh[0], "centre the rows")
    wrong(c06.check_principal_direction,
          lambda x: torch.linalg.svd(x - x.mean(0), full_matrices=False).U[:, 0], "column of u")
    wrong(c06.check_principal_direction,
          lambda x: 3 * torch.linalg.svd(x - x.mean(0), full_matrices=False).Vh[0], "unit vector")
    wrong(c06.check_principal_direction,
          lambda x: torch.linalg.svd(x - x.mean(0), full_matrices=False).Vh[-1], "largest variance")


def test_stubs_fall_back_to_the_reference(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("your turn")

    assert checks.run("06.1", stub) is finetune.replace_head
    assert checks.run("06.2", stub) is finetune.principal_direction
    assert "not attempted" in capsys.readouterr().out
