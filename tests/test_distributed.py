"""Data-parallel `fit` on the CPU: two processes (gloo) spawned from the test.

One spawn runs three scenarios in the same process group and saves what each rank saw:
(a) the final weights of a 2-process run, to compare with one process and the same global
batch; (b) an interrupted 2-process run resumed from its checkpoint, to compare with an
uninterrupted one; (c) a NaN on rank 1 only, which both ranks must skip; (d) SFT and DPO (pairs) on a tiny
causal LM, to compare with one process; (e) a shuffled DataLoader, each row once per epoch
over the ranks; (f) a parameter outside the forward pass, untouched as in one process.
"""

import os
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp

from labkit import distributed, train

WORLD = 2


class Tagger(torch.nn.Module):
    """Token-level loss (mean over labels that are not -100), no dropout."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Parameter(torch.randn(20, 8, generator=g) * 0.5)
        self.out = torch.nn.Parameter(torch.randn(8, 20, generator=g) * 0.5)

    def forward(self, input_ids, labels=None):
        logits = self.emb[input_ids] @ self.out
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return SimpleNamespace(logits=logits, loss=loss)


def rows(n=96, length=6):
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        ids = torch.randint(0, 20, (length,), generator=g)
        labels = ids.roll(1)
        labels[1 + i % length:] = -100     # 1 to 6 labelled tokens per row
        out.append({"input_ids": ids, "labels": labels})
    return out


# (a) uses SGD: the comparison is of arithmetic, not of Adam's normalisation of tiny numbers
KW_A = dict(epochs=2, batch_size=16, micro_batch_size=4, warmup=0, device="cpu", seed=0)
KW_B = dict(epochs=2, batch_size=16, lr=1e-2, device="cpu", seed=0, checkpoint_every=3)


def scenario_a():
    model = Tagger()
    train.fit(model, rows(), optimizer=torch.optim.SGD(model.parameters(), lr=0.5), **KW_A)
    return model.state_dict()


def scenario_b(tmp):
    full = Tagger()
    train.fit(full, rows(), checkpoint_dir=tmp / "full", **KW_B)
    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated interruption")
        return train.default_loss(model, batch)

    try:
        train.fit(Tagger(), rows(), checkpoint_dir=tmp / "cut", loss_fn=crashing, **KW_B)
    except KeyboardInterrupt:
        pass
    distributed.barrier()
    resumed = Tagger()
    with torch.no_grad():
        for p in resumed.parameters():
            p.mul_(3)     # different start: everything must come from the checkpoint
    hist = train.fit(resumed, rows(), checkpoint_dir=tmp / "cut", resume=True, **KW_B)
    files = sorted(p.name for p in (tmp / "cut").iterdir())
    return {"full": full.state_dict(), "resumed": resumed.state_dict(),
            "events": hist.events, "steps": hist.steps, "files": files}


def scenario_c():
    calls = {"n": 0}

    def nan_on_rank_1(model, batch):
        calls["n"] += 1
        loss, out = train.default_loss(model, batch)
        if distributed.rank() == 1 and calls["n"] == 8:
            loss = loss * float("nan")
        return loss, out

    model = Tagger()
    hist = train.fit(model, rows(), loss_fn=nan_on_rank_1, snapshot_every=4, epochs=2,
                     batch_size=16, lr=1e-2, device="cpu")
    return {"events": hist.events, "steps": hist.steps, "weights": model.state_dict()}


def tiny_llama():
    from tiny_models import tiny_llama as llama

    return llama(40, 0, hidden=16, layers=1, heads=2, kv_heads=1, positions=64)


def sft_rows(n=12):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        p, c = 2 + i % 3, 1 + (5 * i) % 6          # 1 to 6 completion tokens
        out.append({"input_ids": torch.randint(1, 40, (p + c,), generator=g).tolist(),
                    "completion_mask": [0] * p + [1] * c})
    return out


def scenario_d():
    """SFT, then DPO on pairs: three SGD steps of batch 6 (3 per rank), micro-batches of 2."""
    from labkit import align

    kw = dict(max_steps=3, batch_size=6, micro_batch_size=2, warmup=0, clip=None,
              rollback=False, device="cpu", seed=0)
    sft = tiny_llama()
    sft.train = lambda mode=True: sft            # no dropout to compare
    train.fit(sft, sft_rows(), loss_fn=align.sft_loss, collate_fn=align.collate(0),
              optimizer=torch.optim.SGD(sft.parameters(), lr=0.5), **kw)
    rows = sft_rows(24)
    pairs = align.add_reference_logps(tiny_llama(), [{"chosen": rows[i], "rejected": rows[12 + i]}
                                                     for i in range(12)], pad_id=0)
    dpo = tiny_llama()
    dpo.train = lambda mode=True: dpo
    train.fit(dpo, pairs, loss_fn=align.DPOLoss(beta=0.5), collate_fn=align.pair_collate(0),
              optimizer=torch.optim.SGD(dpo.parameters(), lr=0.5), **kw)
    return {"sft": sft.state_dict(), "dpo": dpo.state_dict()}


def scenario_e():
    """A shuffled DataLoader of 40 rows, global batch 8, two epochs: the row ids each rank
    trained on, per epoch."""
    data = [{"id": i, **r} for i, r in enumerate(rows(40))]
    seen = []

    def spy(model, batch):
        seen.append(batch["id"].tolist())
        return train.default_loss(model, {k: v for k, v in batch.items() if k != "id"})

    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    model = Tagger()
    hist = train.fit(model, loader, loss_fn=spy, epochs=2, lr=1e-2, device="cpu", seed=0)
    return {"seen": seen, "steps": hist.steps, "weights": model.state_dict()}


class WithSpare(Tagger):
    def __init__(self):
        super().__init__()
        self.spare = torch.nn.Parameter(torch.ones(4, 4))    # never in the forward pass


def scenario_f():
    model = WithSpare()
    train.fit(model, rows(32), epochs=1, batch_size=16, lr=1e-1, weight_decay=0.5,
              device="cpu")
    return {"spare": model.spare.detach().clone()}


def worker(rank, tmp):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                      LABKIT_HEADLESS="1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous",
                                         rank=rank, world_size=WORLD)
    try:
        out = {"a": scenario_a(), "b": scenario_b(tmp), "c": scenario_c(), "d": scenario_d(),
               "e": scenario_e(), "f": scenario_f()}
        torch.save(out, tmp / f"rank{rank}.pt")
    finally:
        distributed.teardown()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Spawn the two processes once per test session, even when pytest-xdist spreads
    these tests over several workers (they share the folder above their temp dirs)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent           # this session's folder, above each worker's own
    tmp = base / "labkit-ddp"
    with FileLock(str(tmp) + ".lock"):
        if not all((tmp / f"rank{r}.pt").exists() for r in range(WORLD)):
            tmp.mkdir(exist_ok=True)
            mp.start_processes(worker, args=(tmp,), nprocs=WORLD, start_method="spawn")
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_two_processes_end_where_one_process_does(ranks):
    one = scenario_a()      # single process, same global batch of 16, same seed
    for r in ranks:
        for k, v in one.items():
            assert torch.allclose(r["a"][k], v, atol=1e-5), k


def test_checkpoint_and_resume_under_two_processes(ranks):
    for r in ranks:
        b = r["b"]
        assert b["events"][0] == "resumed from step 3" and b["steps"] == 12
        assert b["files"] == ["last.pt"]            # one writer, no leftover .tmp
        for k, v in b["full"].items():
            assert torch.equal(b["resumed"][k], v), k


def test_a_nan_on_one_rank_is_skipped_by_both(ranks):
    for r in ranks:
        assert "NaN/inf loss at step 7: step skipped" in r["c"]["events"]
        assert not any("rolled back" in e for e in r["c"]["events"])
        assert r["c"]["steps"] == 12
    for k, v in ranks[0]["c"]["weights"].items():
        assert torch.equal(ranks[1]["c"]["weights"][k], v), k


def test_sft_and_dpo_pairs_under_two_processes_match_one(ranks):
    one = scenario_d()
    for r in ranks:
        for what in ("sft", "dpo"):
            for k, v in one[what].items():
                assert torch.allclose(r["d"][what][k], v, atol=1e-5), (what, k)


def test_a_dataloader_is_sharded_each_row_once_per_epoch(ranks):
    steps = ranks[0]["e"]["steps"]
    assert steps == 10                                      # 40 rows / global batch 8, x2
    for epoch in range(2):
        batches = [r["e"]["seen"][epoch * 5:(epoch + 1) * 5] for r in ranks]
        ids = [i for b in batches for step in b for i in step]
        assert sorted(ids) == list(range(40)), epoch        # every row once, none twice
        assert all(len(step) == 4 for b in batches for step in b)   # 8 split over 2 ranks
    assert ranks[0]["e"]["seen"][:5] != ranks[0]["e"]["seen"][5:]  # reshuffled (set_epoch)
    for k, v in ranks[0]["e"]["weights"].items():
        assert torch.equal(ranks[1]["e"]["weights"][k], v), k


def test_an_unused_parameter_is_left_alone_as_in_one_process(ranks):
    one = scenario_f()["spare"]
    assert torch.equal(one, torch.ones(4, 4))               # no gradient: no decay, no step
    for r in ranks:
        assert torch.equal(r["f"]["spare"], one)
