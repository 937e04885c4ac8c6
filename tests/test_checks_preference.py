"""The checker of notebook 11's RL loss: the reference passes, common mistakes get their
hint, a stub falls back to the reference."""

import torch

from labkit import checks, rl


def run(monkeypatch, tmp_path, capsys, fn, times=1):
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "p.json"))
    for _ in range(times):
        got = checks.run("11.2", fn)
    return got, capsys.readouterr().out


def plain(logps, old, adv):
    return -(torch.exp(logps - old) * adv).mean()


# a learner's own versions: labkit's rl_loss and rloo_advantages are out of reach of an
# answer while it is checked (calling them is calling the answer)
def rloo(rewards, k):
    g = rewards.reshape(-1, k)
    return (g - (g.sum(1, keepdim=True) - g) / (k - 1)).reshape(-1)


def mine(lp, old, s, lr, k, b):
    return plain(lp, old.detach(), rloo((s - b * lr).detach(), k))


def test_the_reference_passes_and_a_stub_falls_back(monkeypatch, tmp_path, capsys):
    got, out = run(monkeypatch, tmp_path, capsys, mine)
    assert got is mine and "passed" in out

    def stub(*args):
        raise NotImplementedError
    got, out = run(monkeypatch, tmp_path, capsys, stub)
    assert got is rl.rl_loss and "not attempted" in out


def test_common_mistakes_get_their_hint(monkeypatch, tmp_path, capsys):
    def group_mean(lp, old, s, lr, k, b):
        r = (s - b * lr).view(-1, k)
        return plain(lp, old, (r - r.mean(1, keepdim=True)).view(-1))

    mistakes = {
        "KL penalty is missing": lambda lp, old, s, lr, k, b: plain(lp, old, rloo(s, k)),
        "baseline is missing": lambda lp, old, s, lr, k, b: plain(lp, old, s - b * lr),
        "includes the sample itself": group_mean,
        "sign is flipped": lambda lp, old, s, lr, k, b: -mine(lp, old, s, lr, k, b),
        "return one number": lambda lp, old, s, lr, k, b: -(torch.exp(lp - old)
                                                            * rloo(s - b * lr, k)),
        "returns None": lambda *a: None,
        "cut off from the graph": lambda *a: mine(*a).detach(),
        # REINFORCE without the ratio: the same gradient at pi = pi_old, another value here
        "the loss": lambda lp, old, s, lr, k, b: -(lp * rloo(s - b * lr, k)).mean(),
    }
    for hint, fn in mistakes.items():
        got, out = run(monkeypatch, tmp_path, capsys, fn)
        assert got is rl.rl_loss and hint in out, (hint, out)


def test_the_second_wrong_attempt_shows_the_stronger_hint(monkeypatch, tmp_path, capsys):
    def wrong(lp, old, s, lr, k, b):
        return mine(lp, old, s, lr, k, b) + 0.1
    _, out = run(monkeypatch, tmp_path, capsys, wrong, times=2)
    assert "stronger hint" in out


def test_calling_labkits_advantages_is_calling_the_answer(monkeypatch, tmp_path, capsys):
    def lazy(lp, old, s, lr, k, b):
        return plain(lp, old, rl.rloo_advantages((s - b * lr).detach(), k))
    got, out = run(monkeypatch, tmp_path, capsys, lazy)
    assert got is rl.rl_loss and "calls labkit's own version" in out
