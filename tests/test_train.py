"""The training loop: learning, accumulation, resume, rollback, OOM backoff, errors."""

import copy
import math
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


def test_one_nan_loss_skips_its_step_and_keeps_the_good_steps():
    data = make_data(256)
    calls = {"n": 0}

    def poisoned(model, batch):
        calls["n"] += model.training       # count training batches only
        loss, out = train.default_loss(model, batch)
        return (loss * float("nan"), out) if calls["n"] == 30 and model.training else (loss, out)

    model = new_model()
    hist = train.fit(model, data, eval_data=data[:32], epochs=3, batch_size=16, lr=1e-2,
                     device="cpu", loss_fn=poisoned, snapshot_every=10, eval_every=20)
    assert "NaN/inf loss at step 29: step skipped" in hist.events
    assert not any("rolled back" in e for e in hist.events)    # the 9 good steps stay
    assert hist.skipped == 1 and all(torch.isfinite(p).all() for p in model.parameters())
    # the NaN batch is dropped, but the run still takes its 48 steps (reading one batch
    # into a fourth epoch): the schedule ends at 0 and no step number appears twice
    assert hist.steps == 48
    assert [r["step"] for r in hist.train] == list(range(1, 49))
    assert hist.train[-1]["lr"] == 0.0
    assert [r["step"] for r in hist.evals] == [20, 40, 48]


class InfGradient(torch.autograd.Function):
    """The identity going forward; an infinite gradient going back."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def test_a_finite_loss_with_non_finite_gradients_is_not_applied():
    """A finite loss can still give inf gradients (an overflow in bf16, or fp32 with no
    scaler): the step is skipped, the weights stay finite."""
    data = make_data(64)
    calls = {"n": 0}

    def inf_gradient(model, batch):
        calls["n"] += 1
        loss, out = train.default_loss(model, batch)
        if calls["n"] == 2:
            loss = InfGradient.apply(loss)
        return loss, out

    model = new_model()
    hist = train.fit(model, data, epochs=1, batch_size=16, lr=1e-2, device="cpu",
                     loss_fn=inf_gradient)
    assert math.isfinite(hist.train[0]["loss"])
    assert hist.skipped == 1 and any("NaN/inf gradient norm" in e for e in hist.events)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert hist.steps == 4


def test_repeated_bad_steps_roll_back():
    data = make_data(256)
    calls = {"n": 0}

    def three_bad(model, batch):
        calls["n"] += 1
        loss, out = train.default_loss(model, batch)
        return (loss * float("nan"), out) if 25 <= calls["n"] < 28 else (loss, out)

    hist = train.fit(new_model(), data, epochs=2, batch_size=16, lr=1e-2, device="cpu",
                     loss_fn=three_bad, snapshot_every=10)
    assert hist.skipped == 3
    assert any("NaN/inf loss at step 24: rolled back to step 20" in e for e in hist.events)
    assert hist.steps == 32


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


def test_a_run_that_diverges_for_good_ends_with_an_error():
    with pytest.raises(FloatingPointError, match="diverged.*lower the learning rate"):
        train.fit(new_model(), make_data(256), epochs=3, batch_size=16, lr=1e6, device="cpu")


def test_a_nan_validation_loss_is_never_the_best():
    data = make_data(128)
    evals = {"n": 0}

    def nan_at_first_evaluation(model, batch):
        loss, out = train.default_loss(model, batch)
        if not model.training:
            evals["n"] += 1
            if evals["n"] == 1:
                return loss * float("nan"), out
        return loss, out

    hist = train.fit(new_model(), data, eval_data=data[:16], epochs=3, batch_size=16,
                     eval_batch_size=16, eval_every=4, lr=1e-2, device="cpu",
                     loss_fn=nan_at_first_evaluation)
    assert hist.evals[0]["step"] == 4 and hist.evals[0]["loss"] != hist.evals[0]["loss"]
    assert hist.best_step != 4 and hist.best_score == min(r["loss"] for r in hist.evals[1:])


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


# --------------------------------------------------------------------------- exactness
class TokenTagger(torch.nn.Module):
    """A token-level model: a loss that is the mean over the labels that are not -100."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 8)
        self.out = torch.nn.Linear(8, 20)

    def forward(self, input_ids, labels=None):
        logits = self.out(self.emb(input_ids))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return SimpleNamespace(logits=logits, loss=loss)


def token_data(n=16, length=6):
    """Examples with very different numbers of labelled tokens (1 to `length`)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        ids = torch.randint(0, 20, (length,), generator=g)
        labels = ids.clone()
        labels[1 + i % length:] = -100
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def first_update(make, data, **kw):
    """The change in every weight after one plain-SGD step of `fit`."""
    model = make()
    before = weights(model)
    train.fit(model, data, max_steps=1, batch_size=len(data), warmup=0, clip=None,
              rollback=False, device="cpu",
              optimizer=torch.optim.SGD(model.parameters(), lr=1.0), **kw)
    return {k: v - before[k] for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["token-level", "classifier"])
def test_micro_batches_give_the_same_first_update_for_any_loss(kind):
    if kind == "token-level":
        make, data = (lambda: (torch.manual_seed(0), TokenTagger())[1]), token_data()
    else:
        make, data = (lambda: new_model().eval()), make_data(16)
    whole = first_update(make, data)
    for micro in (4, 3):      # even and uneven cuts
        cut = first_update(make, data, micro_batch_size=micro)
        for k in whole:
            assert torch.allclose(whole[k], cut[k], atol=1e-6), (kind, micro, k)


def test_first_update_after_an_out_of_memory_halving_is_the_same():
    data = token_data()

    def fussy(model, batch):   # as if the GPU could only hold 4 examples
        if batch["input_ids"].shape[0] > 4:
            raise train.OutOfMemoryError("CUDA out of memory (simulated)")
        return train.default_loss(model, batch)

    make = lambda: (torch.manual_seed(0), TokenTagger())[1]   # noqa: E731
    whole = first_update(make, data)
    halved = first_update(make, data, loss_fn=fussy)
    for k in whole:
        assert torch.allclose(whole[k], halved[k], atol=1e-6), k


def test_loss_weight_counts_labelled_items():
    assert train.loss_weight({"x": torch.zeros(5, 3), "labels": torch.tensor([0, 1, 1, 0, 1])}) == 5
    assert train.loss_weight({"labels": torch.tensor([[1, -100, -100], [2, 3, -100]])}) == 3
    assert train.loss_weight({"x": torch.zeros(4, 2)}) == 4
    assert train.loss_weight((torch.zeros(7, 2), torch.zeros(7))) == 7


# --------------------------------------------------------------------------- randomness
def test_fit_seed_alone_makes_a_run_repeatable_and_leaves_the_callers_stream():
    data = make_data(128)
    start = new_model()                  # has dropout
    a, b = copy.deepcopy(start), copy.deepcopy(start)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train.fit(a, data, epochs=1, batch_size=16, lr=1e-2, device="cpu", seed=5)
    assert torch.equal(torch.get_rng_state(), before)      # the caller's stream untouched
    torch.rand(3)                                          # ... and whatever the caller does
    train.fit(b, data, epochs=1, batch_size=16, lr=1e-2, device="cpu", seed=5)
    assert same(weights(a), weights(b))


def test_evaluate_never_reseeds_a_global_generator(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("library code reseeded a global generator")

    for name in ("manual_seed", "seed"):
        monkeypatch.setattr(torch, name, forbidden)
        monkeypatch.setattr(torch.cuda, name, forbidden)
        monkeypatch.setattr(torch.cuda, name + "_all", forbidden)
    model, data = TinyClassifier(), make_data(32)
    before = torch.get_rng_state()
    out = train.evaluate(model, data, device="cpu")
    assert out["n"] == 32 and torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("major,minor,expected", [(7, 5, "fp16"), (7, 0, "fp16"),
                                                  (8, 0, "bf16"), (9, 0, "bf16")])
def test_bf16_only_on_compute_capability_8_and_newer(monkeypatch, major, minor, expected):
    # a T4 (7.5) or V100 (7.0) reports bf16 "supported" (emulated): it must get fp16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (major, minor))
    assert device.precision("cuda") == expected
    assert device.precision("cpu") == "fp32"


# --------------------------------------------------------------------------- small ones
def test_a_one_shot_iterator_stops_with_a_reason():
    import signal

    def too_slow(*_):
        raise TimeoutError("fit spun through empty epochs")

    data = make_data(64)
    one_shot = ({"x": torch.stack([r["x"] for r in data[i:i + 16]]),
                 "labels": torch.stack([r["labels"] for r in data[i:i + 16]])}
                for i in range(0, 64, 16))
    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(20)
    try:
        with pytest.raises(ValueError, match="one-shot iterator"):
            train.fit(new_model(), one_shot, max_steps=10, device="cpu")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_string_field_first_in_the_batch_is_fine():
    data = make_data(64)

    def with_text(rows):
        return {"text": [f"row {i}" for i in range(len(rows))], **train.default_collate(rows)}

    def loss(model, batch):
        return train.default_loss(model, {k: v for k, v in batch.items() if k != "text"})

    hist = train.fit(new_model(), data, collate_fn=with_text, loss_fn=loss, epochs=1,
                     batch_size=16, micro_batch_size=8, device="cpu")
    assert hist.steps == 4 and hist.examples == 64


def test_a_mistyped_monitor_fails_up_front_naming_the_choices():
    calls = []

    def spy(model, batch):
        calls.append(1)
        return train.default_loss(model, batch)

    with pytest.raises(ValueError, match="'accuracy'"):
        train.fit(new_model(), make_data(32), eval_data=make_data(16), monitor="acc",
                  loss_fn=spy, device="cpu")
    assert calls == []


def test_no_loss_message_for_a_hugging_face_model():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16))
    rows = [{"input_ids": torch.tensor([2, 5, 7, 3])} for _ in range(4)]   # no labels
    with pytest.raises(ValueError, match="returned no loss.*loss_fn"):
        train.fit(model, rows, max_steps=1, batch_size=4, device="cpu")


def test_resuming_an_early_stopped_run_stays_stopped(tmp_path):
    data = make_data(256)
    kw = dict(eval_data=data[:64], epochs=50, batch_size=32, lr=0.0, eval_every=2,
              patience=3, device="cpu", checkpoint_dir=tmp_path)
    first = train.fit(new_model(), data, **kw)
    assert any(e.startswith("early stop") for e in first.events)
    again = train.fit(new_model(), data, resume=True, **kw)
    assert again.steps == first.steps and len(again.train) == len(first.train)


def test_a_dataloader_needs_no_max_steps():
    loader = torch.utils.data.DataLoader(make_data(64), batch_size=16)
    hist = train.fit(new_model(), loader, epochs=2, device="cpu")
    assert hist.steps == 8 and hist.examples == 128


def test_warmup_float_is_a_fraction_and_int_is_steps():
    assert train.warmup_steps(1.0, 10) == 10 and train.warmup_steps(0.5, 10) == 5
    assert train.warmup_steps(1, 10) == 1 and train.warmup_steps(0, 10) == 0
    with pytest.raises(ValueError, match="fraction"):
        train.warmup_steps(1.5, 10)
    hist = train.fit(new_model(), make_data(160), max_steps=10, batch_size=16, lr=1.0,
                     warmup=1.0, rollback=False, device="cpu")
    lrs = [r["lr"] for r in hist.train]
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(0.2)   # warms up the whole run


def test_pyproject_asks_for_a_torch_with_the_device_grad_scaler():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"torch>=2.3"' in text       # torch.amp.GradScaler(device) arrived in 2.3


def test_gpu_check_exits_cleanly_without_a_gpu(monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    assert "no CUDA GPU is visible here" in capsys.readouterr().out


def test_validation_and_the_test_rows_are_scored_alike(monkeypatch):
    """`evaluate` (which picks the best weights) and `protocol.predict` (which reports
    them) run under the same precision: the one scorer, `train.scoring`."""
    import datasets

    from labkit import protocol

    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 2)
            self.config = SimpleNamespace(pad_token_id=0)

        def forward(self, input_ids, attention_mask=None, labels=None):
            seen.append(torch.is_autocast_enabled("cpu"))
            logits = self.lin(input_ids[:, :1].float())
            loss = (torch.nn.functional.cross_entropy(logits.float(), labels)
                    if labels is not None else None)
            return SimpleNamespace(logits=logits, loss=loss)

    monkeypatch.setattr(device, "precision", lambda dev: "bf16")
    rows = datasets.Dataset.from_list([{"input_ids": [i % 3 + 1, 2], "label": i % 2}
                                       for i in range(6)])
    model = Recorder()
    train.evaluate(model, [{"input_ids": torch.tensor([1, 2]), "labels": torch.tensor(0)}],
                   device="cpu")
    protocol.predict(model, rows, device="cpu")
    assert seen and all(seen), seen


def test_protocol_and_finetune_import_each_other_only_one_way():
    import inspect

    from labkit import protocol

    assert "finetune" not in "".join(l for l in inspect.getsource(protocol).splitlines(True)
                                     if "import" in l)


def test_a_snapshot_copies_only_what_training_changes():
    """Rollback snapshots and the best weights hold the trainable parameters (and
    buffers), not the frozen ones: with a frozen body they stay small."""
    from labkit import checkpoint

    model = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.BatchNorm1d(64),
                                torch.nn.Linear(64, 2))
    model[0].requires_grad_(False)
    kept = checkpoint.trainable_state(model)
    assert "0.weight" not in kept and {"2.weight", "2.bias", "1.running_mean"} <= set(kept)
    with torch.no_grad():
        model[2].weight.add_(1.0)
    checkpoint.load_trainable_state(model, kept)
    assert torch.equal(model[2].weight, kept["2.weight"])


def test_history_reports_tokens_per_second():
    data = token_data(32)
    hist = train.fit(TokenTagger(), data, epochs=1, batch_size=8, device="cpu")
    assert hist.tokens == 32 * 6 and hist.tokens_per_s > 0
    assert all(math.isfinite(r["grad_norm"]) for r in hist.train)


class Bag(torch.nn.Module):
    """Embeddings with sparse or dense gradients, scored by a fixed readout."""

    def __init__(self, sparse: bool):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(12, 4, sparse=sparse)

    def forward(self, ids, labels=None):
        score = self.emb(ids).sum(-1).sum(-1)            # rows repeat within and across examples
        return SimpleNamespace(loss=((score - labels) ** 2).mean())


def test_sparse_gradients_give_the_dense_update_and_the_exact_gradient_norm():
    g = torch.Generator().manual_seed(0)
    data = [{"ids": torch.randint(0, 5, (6,), generator=g), "labels": torch.randn((), generator=g)}
            for _ in range(16)]
    runs = {}
    for sparse in (True, False):
        model = Bag(sparse)
        hist = train.fit(model, data, max_steps=3, batch_size=8, micro_batch_size=4, clip=None,
                         warmup=0, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                         device="cpu", seed=0)
        runs[sparse] = (model.emb.weight.detach(), [r["grad_norm"] for r in hist.train])
    (w_sparse, n_sparse), (w_dense, n_dense) = runs[True], runs[False]
    assert torch.allclose(w_sparse, w_dense, atol=1e-6)
    assert n_sparse == pytest.approx(n_dense, rel=1e-5)      # duplicates summed before the norm


def test_length_grouped_batches_pad_less_and_still_shuffle():
    from labkit import batching
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(4, 65, (500,), generator=g).tolist()
    plain = batching.global_batches(500, 16, seed=0, epoch=0)
    grouped = batching.global_batches(500, 16, seed=0, epoch=0, lengths=lengths)

    def padded(chunks):
        return sum(max(lengths[i] for i in c) * len(c) for c in chunks)

    # every row once per epoch, the same number of steps and the same last partial batch
    assert sorted(i for c in grouped for i in c) == list(range(500))
    assert [len(c) for c in sorted(grouped, key=len)] == [len(c) for c in sorted(plain, key=len)]
    assert padded(grouped) < 0.7 * padded(plain)          # measured: about half
    # seed and epoch still change which rows meet and in which order the batches come
    other_epoch = batching.global_batches(500, 16, seed=0, epoch=1, lengths=lengths)
    other_seed = batching.global_batches(500, 16, seed=1, epoch=0, lengths=lengths)
    for other in (other_epoch, other_seed):
        assert {tuple(sorted(c)) for c in other} != {tuple(sorted(c)) for c in grouped}
    assert grouped == batching.global_batches(500, 16, seed=0, epoch=0, lengths=lengths)


def test_fit_groups_tokenised_rows_by_length_and_refuses_other_data():
    from labkit import finetune
    g = torch.Generator().manual_seed(0)
    rows = [{"input_ids": list(range(1, int(n) + 1)), "attention_mask": [1] * int(n),
             "label": i % 2} for i, n in enumerate(torch.randint(2, 40, (96,), generator=g))]
    seen = []

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.EmbeddingBag(64, 2, mode="sum")

        def forward(self, input_ids, attention_mask, labels=None):
            seen.append(input_ids.shape[1] * input_ids.shape[0] / attention_mask.sum().item())
            logits = self.emb(input_ids, per_sample_weights=attention_mask.float())
            return SimpleNamespace(logits=logits,
                                   loss=torch.nn.functional.cross_entropy(logits, labels))

    kw = dict(collate_fn=finetune.collate(0), batch_size=16, max_steps=12, device="cpu",
              lr=1e-2)
    train.fit(Model(), rows, **kw)
    plain, seen[:] = sum(seen) / len(seen), []
    train.fit(Model(), rows, group_by_length=True, **kw)
    grouped = sum(seen) / len(seen)
    assert grouped < 1.3 < plain, (grouped, plain)     # padded tokens per real token
    with pytest.raises(ValueError, match="input_ids"):
        train.fit(Model(), make_data(32), group_by_length=True, max_steps=1, device="cpu")
