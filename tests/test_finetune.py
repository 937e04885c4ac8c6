"""Fine-tuning helpers on real data: the 4.4M-parameter offline BERT, a few movie reviews."""

import pytest
import torch

from labkit import data, finetune, ledger, models


@pytest.fixture(scope="module")
def base():
    model, tok = models.load("tiny-mlm", task="sequence-classification", num_labels=2)
    return model, tok


@pytest.fixture(scope="module")
def splits(base):
    reviews = data.load("movie_reviews")
    small = {"train": reviews["train"].select(range(300)),
             "validation": reviews["validation"].select(range(64)),
             "test": reviews["test"].select(range(64))}
    return {k: finetune.tokenize(v, base[1], max_length=32) for k, v in small.items()}


def test_tokenize_keeps_labels_and_truncates(splits):
    train = splits["train"]
    assert set(train.column_names) >= {"input_ids", "attention_mask", "label"}
    assert "text" not in train.column_names
    assert max(len(ids) for ids in train["input_ids"]) <= 32
    few = data.sample(train, 20, seed=0)            # budgets drawn from tokenised rows
    assert sorted(few["label"]).count(0) == 10


def test_collate_pads_to_the_longest_row(splits):
    rows = [splits["train"][i] for i in range(4)]
    batch = finetune.collate(pad_id=0)(rows)
    longest = max(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape == (4, longest)
    assert batch["labels"].tolist() == [r["label"] for r in rows]
    assert batch["attention_mask"].sum().item() == sum(len(r["input_ids"]) for r in rows)


def test_build_classifier_pretrained_copies_encoder_and_makes_a_new_head(base):
    model, _ = base
    a, _ = finetune.build_classifier(model, seed=0)
    b, _ = finetune.build_classifier(model, seed=1)
    assert torch.equal(a.bert.embeddings.word_embeddings.weight,
                       model.bert.embeddings.word_embeddings.weight)
    assert a.bert.embeddings.word_embeddings.weight is not model.bert.embeddings.word_embeddings.weight
    assert not torch.equal(a.classifier.weight, b.classifier.weight)   # seed -> new head
    again, _ = finetune.build_classifier(model, seed=0)
    assert torch.equal(a.classifier.weight, again.classifier.weight)   # repeatable


def test_scratch_has_the_same_shape_but_random_weights(base):
    model, _ = base
    scratch, _ = finetune.build_classifier(model, init="scratch", seed=0)
    assert models.count_parameters(scratch) == models.count_parameters(model)
    assert not torch.equal(scratch.bert.embeddings.word_embeddings.weight,
                           model.bert.embeddings.word_embeddings.weight)


def test_freeze_leaves_only_the_head_trainable(base):
    probe, _ = finetune.build_classifier(base[0], freeze=True, seed=0)
    head = finetune.head(probe)
    assert models.count_parameters(probe, trainable_only=True) == sum(
        p.numel() for p in head.parameters())


def test_replace_head_changes_the_number_of_labels(base):
    model, _ = finetune.build_classifier(base[0], seed=0)
    finetune.replace_head(model, 5, seed=0)
    assert model.classifier.out_features == 5 and model.config.num_labels == 5
    out = model(input_ids=torch.tensor([[101, 2023, 102]]))
    assert out.logits.shape == (1, 5)


def test_layerwise_optimizer_gives_lower_layers_smaller_rates(base):
    model, _ = finetune.build_classifier(base[0], seed=0)
    opt = finetune.layerwise_optimizer(model, 1e-3, 0.5)
    rates = sorted({g["lr"] for g in opt.param_groups})
    layers = model.config.num_hidden_layers
    assert rates[-1] == pytest.approx(1e-3)
    assert rates[0] == pytest.approx(1e-3 * 0.5 ** (layers + 1))     # the embeddings
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    assert finetune.layer_depth("bert.encoder.layer.1.output.dense.weight", layers) == 2


def test_fit_classifier_learns_and_reports(base, splits):
    model, _ = finetune.build_classifier(base[0], seed=0)
    res = finetune.fit_classifier(model, splits["train"], validation=splits["validation"],
                                  test=splits["test"], lr=3e-4, epochs=1, batch_size=32,
                                  evals=2, layer_decay=0.9, device="cpu")
    assert 0.0 <= res.accuracy <= 1.0
    assert res.history.steps == 10 and len(res.history.evals) == 2
    assert res.trainable == res.total == models.count_parameters(model)
    assert res.history.train[0]["loss"] > res.history.final_loss(3)


def test_learning_curve_rows_and_summary(base, splits):
    logged = []
    rows = finetune.learning_curve(
        lambda s: finetune.build_classifier(base[0], freeze=True, seed=s)[0],
        splits["train"], [8, 1000], [0, 1], strategy="probe",
        validation=splits["validation"], test=splits["test"], lr=1e-2, epochs=1,
        min_steps=2, batch_size=16, evals=1, device="cpu", on_result=logged.append)
    assert [(r["n"], r["seed"]) for r in rows] == [(8, 0), (8, 1), (300, 0), (300, 1)]
    assert logged == rows
    summary = finetune.summarize(rows)
    assert [(s["n"], s["runs"]) for s in summary] == [(8, 2), (300, 2)]
    run = ledger.Run("test_finetune", profile="smoke")
    for r in rows:
        run.log(f"acc_probe@{r['n']}", r["accuracy"], seed=r["seed"])
    assert len(ledger.read()) == 4
    import matplotlib
    matplotlib.use("Agg")
    assert finetune.plot_curve(rows) is not None


# --------------------------------------------------------------------------- failures
def test_tokenize_names_the_missing_column(base):
    reviews = data.load("movie_reviews")["validation"].select(range(4))
    with pytest.raises(ValueError, match="rename_column"):
        finetune.tokenize(reviews.rename_column("text", "sentence"), base[1])


def test_fit_classifier_wants_tokenised_rows(base):
    reviews = data.load("movie_reviews")["validation"].select(range(4))
    with pytest.raises(ValueError, match="finetune.tokenize"):
        finetune.fit_classifier(base[0], reviews, validation=reviews)


def test_bad_init_and_bad_source_are_named(base):
    with pytest.raises(ValueError, match="pretrained, scratch"):
        finetune.build_classifier(base[0], init="random")
    with pytest.raises(TypeError, match="model name or a loaded model"):
        finetune.build_classifier(42)
    with pytest.raises(ValueError, match="new_head=True"):
        finetune.build_classifier(base[0], num_labels=5, new_head=False)


def test_layer_decay_out_of_range(base):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        finetune.layerwise_optimizer(base[0], 1e-3, 1.5)


def test_surgery_names_copied_new_and_dropped_parts(base):
    rows = finetune.surgery("tiny-mlm", base[0])
    status = {(r["part"], r["status"]) for r in rows}
    assert ("embeddings", "copied") in status and ("encoder.layer.1", "copied") in status
    assert ("classifier", "new") in status and ("pooler", "new") in status  # no pooler saved
    assert ("cls", "dropped") in status
    assert not any(r["status"] == "new" for r in rows if r["part"].startswith("encoder"))


def test_target_task_has_fixed_evaluation_subsets(base):
    task = finetune.target_task(base[1], "smoke", max_length=16)
    assert (len(task["train"]), len(task["validation"]), len(task["test"])) == (9751, 32, 32)
    assert finetune.recipe("quick")["min_steps"] == 80
    assert finetune.learning_rate(base[0], "full_ft") == pytest.approx(3e-4)   # small model
    with pytest.raises(KeyError, match="known: probe"):
        finetune.learning_rate(base[0], "lora")
    # from scratch: a pre-training rate and a longer recipe of its own
    assert finetune.learning_rate(base[0], "scratch") == pytest.approx(1e-3)
    scratch = finetune.recipe("quick", "scratch")
    assert scratch["min_steps"] >= 150 and scratch["batch_size"] == 32 and scratch["warmup"] > 0


def test_replace_head_with_a_seed_leaves_the_global_stream_alone(base):
    import copy

    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = finetune.replace_head(copy.deepcopy(base[0]), 3, seed=4)
    b = finetune.replace_head(copy.deepcopy(base[0]), 3, seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert float(a.classifier.weight.detach().std()) == pytest.approx(a.config.initializer_range, rel=0.2)
    assert not torch.equal(a.classifier.weight,
                           finetune.replace_head(copy.deepcopy(base[0]), 3, seed=5).classifier.weight)


def test_features_match_the_model_and_ignore_padding_and_order(base, splits):
    model = base[0].eval()
    rows = splits["test"].select(range(10))
    both = finetune.features(model, rows, pool=("cls", "mean"), batch_size=4)
    pad = finetune.collate(0)
    with torch.no_grad():
        for i in (0, 7):                             # one row alone: no padding at all
            batch = pad([rows[i]])
            batch.pop("labels")
            out = model.bert(**batch)
            assert torch.allclose(both["cls"][i], out.pooler_output[0], atol=1e-5)
            assert torch.allclose(both["mean"][i], out.last_hidden_state[0].mean(0), atol=1e-5)
    assert torch.allclose(finetune.features(model, rows), both["cls"], atol=1e-5)
    with pytest.raises(ValueError, match="pool must be"):
        finetune.features(model, rows, pool="max")


def test_fit_probe_trains_only_the_head_on_cached_features(base):
    model, _ = finetune.build_classifier(base[0], seed=0, freeze=True)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.randn(64, model.config.hidden_size, generator=g) + 2.0 * y[:, None]
    before = {k: v.clone() for k, v in model.bert.state_dict().items()}
    head, hist = finetune.fit_probe(model, x, y, validation=(x, y), lr=1e-2, epochs=5,
                                    batch_size=16, device="cpu")
    assert head is finetune.head(model) and hist.best_score >= 0.9
    assert all(torch.equal(v, model.bert.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="labels"):
        finetune.fit_probe(model, x, y[:10], validation=(x, y))


def test_principal_direction_finds_the_spread_not_the_mean():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 1, generator=g) * 5 * torch.tensor([0.0, 1.0, 0.0]) \
        + torch.randn(500, 3, generator=g) * 0.3 + torch.tensor([50.0, 0.0, 0.0])
    d = finetune.principal_direction(x)
    assert abs(abs(float(d[1])) - 1) < 1e-2 and abs(float(d.norm()) - 1) < 1e-6


def test_build_classifier_seeds_its_weights_without_touching_the_global_stream(base):
    torch.manual_seed(7)
    before = torch.get_rng_state()
    a, _ = finetune.build_classifier(base[0], init="scratch", seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    b, _ = finetune.build_classifier(base[0], init="scratch", seed=3)
    c, _ = finetune.build_classifier(base[0], init="scratch", seed=4)
    wa, wb, wc = (m.classifier.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_validation_sorted_by_length_scores_the_same_with_less_padding(base, splits):
    """fit_classifier validates on its rows sorted by length: the same rows (so the same
    accuracy), in an order whose batches pad less; rows without tokens pass through."""
    from labkit import train

    model, tok = base
    val = splits["validation"]
    ordered = finetune.sorted_by_length(val)
    lengths = [len(x) for x in ordered["input_ids"]]
    assert lengths == sorted(lengths) and len(ordered) == len(val)
    assert sorted(ordered["input_ids"]) == sorted(val["input_ids"])
    as_list = finetune.sorted_by_length([dict(r) for r in val])
    assert [len(r["input_ids"]) for r in as_list] == lengths
    pad = finetune.collate(tok.pad_token_id)
    a = train.evaluate(model, val, collate_fn=pad, batch_size=16, device="cpu")
    b = train.evaluate(model, ordered, collate_fn=pad, batch_size=16, device="cpu")
    assert a["accuracy"] == b["accuracy"] and a["n"] == b["n"]
    raw = [{"text": "no tokens here", "label": 0}]
    assert finetune.sorted_by_length(raw) is raw and finetune.sorted_by_length(None) is None
