"""The training loop: learning, accumulation, resume, rollback, OOM backoff, errors."""

from types import SimpleNamespace

import pytest
import torch

from labkit import device, train


class TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
                                       torch.nn.Dropout(0.1), torch.nn.Linear(32, 2))

    def forward(self, x, labels=None):
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SimpleNamespace(logits=logits, loss=loss)


def make_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return [{"x": x[i], "labels": y[i]} for i in range(n)]


def new_model(seed=0):
    device.seed_everything(seed)
    return TinyClassifier()


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_fit_learns_and_keeps_best():
    data = make_data(384)
    model = new_model()
    hist = train.fit(model, data[:256], eval_data=data[256:], epochs=4, batch_size=32,
                     lr=1e-2, monitor="accuracy", eval_every=4, device="cpu")
    assert hist.steps == 32
    assert hist.best_score > 0.8
    assert hist.evals[0]["accuracy"] < hist.best_score
    final = train.evaluate(model, data[256:], device="cpu")
    assert final["accuracy"] == pytest.approx(hist.best_score)   # best weights restored
    assert hist.train[0]["loss"] > hist.final_loss()


def test_micro_batches_give_the_same_step_as_one_batch():
    data = make_data(64)
    a, b = new_model(), new_model()
    a.eval(), b.eval()   # no dropout: compare the arithmetic only
    kw = dict(max_steps=2, batch_size=32, lr=1e-2, device="cpu", rollback=False)
    for m in (a, b):
        m.train = lambda mode=True, m=m: m   # keep dropout off inside fit
    train.fit(a, data, **kw)
    train.fit(b, data, micro_batch_size=8, **kw)
    for k, v in a.state_dict().items():
        assert torch.allclose(v, b.state_dict()[k], atol=1e-6)


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    data = make_data(200)
    kw = dict(eval_data=data[:40], epochs=3, batch_size=16, lr=5e-3, eval_every=5,
              device="cpu", seed=3, checkpoint_every=4, restore_best=False)
    full = new_model()
    train.fit(full, data, checkpoint_dir=tmp_path / "a", **kw)

    calls = {"n": 0}

    def crashing_loss(model, batch):
        calls["n"] += 1
        if calls["n"] == 23:
            raise KeyboardInterrupt("simulated interruption")
        return train.default_loss(model, batch)

    broken = new_model()
    with pytest.raises(KeyboardInterrupt):
        train.fit(broken, data, checkpoint_dir=tmp_path / "b", loss_fn=crashing_loss, **kw)
    resumed = new_model(seed=99)          # different init: everything must come from disk
    hist = train.fit(resumed, data, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    assert hist.events[0] == "resumed from step 16"   # mid-epoch 2, after 3 batches
    assert hist.steps == 39
    assert same(weights(full), weights(resumed))
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_nan_loss_rolls_back_and_skips_the_batch():
    data = make_data(256)
    calls = {"n": 0}

    def poisoned(model, batch):
        calls["n"] += 1
        loss, out = train.default_loss(model, batch)
        return (loss * float("nan"), out) if calls["n"] == 30 else (loss, out)

    model = new_model()
    hist = train.fit(model, data, epochs=3, batch_size=16, lr=1e-2, device="cpu",
                     loss_fn=poisoned, snapshot_every=10)
    assert any("NaN/inf loss at step 29: rolled back to step 20" in e for e in hist.events)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the 9 updates since step 20 are undone and the NaN batch dropped: 10 batches, no step
    assert hist.steps == 48 - 10


def test_loss_spike_rolls_back():
    data = make_data(256)
    calls = {"n": 0}

    def spiky(model, batch):
        calls["n"] += 1
        loss, out = train.default_loss(model, batch)
        return (loss + 50.0, out) if calls["n"] == 25 else (loss, out)

    hist = train.fit(new_model(), data, epochs=2, batch_size=16, lr=1e-2, device="cpu",
                     loss_fn=spiky, snapshot_every=10)
    assert any("loss spike" in e and "rolled back to step 20" in e for e in hist.events)


def test_endless_nan_gives_a_clear_error():
    def always_nan(model, batch):
        loss, out = train.default_loss(model, batch)
        return loss * float("nan"), out

    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train.fit(new_model(), make_data(64), epochs=2, batch_size=8, device="cpu",
                  loss_fn=always_nan, max_rollbacks=3)


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(capsys):
    data = make_data(128)
    sizes = []

    def fussy(model, batch):
        n = batch["x"].shape[0]
        sizes.append(n)
        if n > 8:
            raise train.OutOfMemoryError("CUDA out of memory (simulated)")
        return train.default_loss(model, batch)

    a = new_model()
    hist = train.fit(a, data, epochs=1, batch_size=32, lr=1e-2, device="cpu", loss_fn=fussy)
    assert [e for e in hist.events if "out of memory" in e] == [
        "out of memory at step 0: micro-batch halved to 16, effective batch kept at 32 by accumulation",
        "out of memory at step 0: micro-batch halved to 8, effective batch kept at 32 by accumulation"]
    assert capsys.readouterr().out.count("micro-batch halved") == 2
    b = new_model()
    train.fit(b, data, epochs=1, batch_size=32, micro_batch_size=8, lr=1e-2, device="cpu")
    assert same(weights(a), weights(b))


def test_early_stopping_stops():
    data = make_data(256)
    hist = train.fit(new_model(), data, eval_data=data[:64], epochs=50, batch_size=32,
                     lr=0.0, eval_every=2, patience=3, device="cpu")
    assert any(e.startswith("early stop") for e in hist.events)
    assert hist.steps < 50 * 8


def test_warmup_then_decay_schedules():
    lin = train.lr_lambda(100, 10, "linear")
    cos = train.lr_lambda(100, 10, "cosine", min_ratio=0.1)
    assert lin(0) == pytest.approx(0.1) and lin(9) == pytest.approx(1.0)
    assert lin(55) == pytest.approx(0.5) and lin(100) == pytest.approx(0.0)
    assert cos(100) == pytest.approx(0.1) and cos(55) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="unknown schedule"):
        train.lr_lambda(10, 1, "exponential")


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="empty training set"):
        train.fit(new_model(), [], device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(new_model(), make_data(8), batch_size=0, device="cpu")
    with pytest.raises(ValueError, match="evaluation split is empty"):
        train.evaluate(new_model(), [], device="cpu")

    class NoLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = torch.nn.Linear(10, 2)

        def forward(self, x, labels=None):
            return SimpleNamespace(logits=self.l(x), loss=None)

    with pytest.raises(ValueError, match="loss_fn"):
        train.fit(NoLoss(), make_data(8), device="cpu")


def test_evaluate_ignores_minus_100_labels():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, logits, labels):
            return SimpleNamespace(logits=logits, loss=self.p.sum())

    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]])
    labels = torch.tensor([[0, 0, -100]])
    out = train.evaluate(Fixed(), [{"logits": logits[0], "labels": labels[0]}], device="cpu")
    assert out["accuracy"] == 0.5


def test_history_plots():
    import matplotlib
    matplotlib.use("Agg")
    data = make_data(96)
    hist = train.fit(new_model(), data, eval_data=data[:32], epochs=2, batch_size=16,
                     monitor="accuracy", device="cpu")
    ax = hist.plot()
    assert ax.get_xlabel() == "optimizer step"
    assert hist.to_dict()["steps"] == 12


def test_ready_made_batches_go_through_whole():
    data = make_data(128)
    batches = [{"x": torch.stack([r["x"] for r in data[i:i + 64]]),
                "labels": torch.stack([r["labels"] for r in data[i:i + 64]])} for i in (0, 64)]
    sizes = []

    def spy(model, batch):
        sizes.append(batch["x"].shape[0])
        return train.default_loss(model, batch)

    class Stream:   # an iterable of ready-made batches, like a DataLoader
        def __iter__(self):
            return iter(batches)

    train.fit(new_model(), Stream(), max_steps=2, device="cpu", loss_fn=spy)
    assert sizes == [64, 64]
