"""A failing stage says what is wrong and how to fix it; bad config never trains silently.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_errors.py
"""
import pytest

from dmvae.cli import main
from dmvae.config import load_config
from dmvae.data import load_fashion_mnist
from dmvae.errors import PipelineError

from conftest import CONFIG


def test_a_stage_without_its_previous_stage_names_the_command_to_run(tiny_args, capsys):
    assert main(["tokenizer", *tiny_args]) == 2
    err = capsys.readouterr().err
    assert "error[missing_stage]" in err
    assert "tokenizer needs the ssl stage" in err
    assert "python -m dmvae ssl --run-dir" in err


def test_export_before_training_fails_naming_the_missing_stage(tiny_args, capsys):
    assert main(["export", *tiny_args]) == 2
    assert "needs the align stage" in capsys.readouterr().err


def test_a_missing_dataset_names_the_debian_package(tmp_path):
    with pytest.raises(PipelineError) as e:
        load_fashion_mnist(str(tmp_path), "train")
    assert e.value.code == "data_missing"
    assert "dataset-fashion-mnist" in str(e.value)


def test_the_cli_reports_a_missing_dataset_path_without_a_traceback(tiny_args, tmp_path, capsys):
    args = tiny_args + ["--set", f"data.root={tmp_path / 'nowhere'}"]
    assert main(["ssl", *args]) == 2
    err = capsys.readouterr().err
    assert "error[data_missing]" in err and "data.root" in err


def test_truncated_idx_files_are_reported_not_misread(tmp_path):
    import gzip
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
                + b"\0" * 100)
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\0" * 10)
    with pytest.raises(PipelineError, match="truncated"):
        load_fashion_mnist(str(tmp_path), "train")


def test_unknown_config_keys_are_errors_not_silently_ignored():
    with pytest.raises(PipelineError, match="unknown key.*stpes"):
        load_config(CONFIG, ["tokenizer.stpes=10"])


def test_a_missing_config_file_says_where_to_run_from(tmp_path):
    with pytest.raises(PipelineError, match="run from training/"):
        load_config(str(tmp_path / "nope.json"))


def test_generator_warm_start_requires_matching_architectures():
    with pytest.raises(PipelineError, match="generator.model must equal reference.model"):
        load_config(CONFIG, ["generator.model.depth=2"])


def test_cuda_request_without_a_gpu_is_refused(tiny_args, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["ssl", *tiny_args, "--device", "cuda"]) == 2
    assert "error[device_unavailable]" in capsys.readouterr().err


def test_non_finite_losses_stop_the_run():
    from dmvae.runtime import check_finite
    with pytest.raises(PipelineError, match="non_finite|loss = nan"):
        check_finite("ssl", 3, loss=float("nan"))
