"""Datasets: IDX reading, value range, class names, and the ImageNet-style folder.

Run: cd training && /usr/bin/python3 -m pytest -q tests/test_data.py
"""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from dmvae.config import load_config
from dmvae.data import (FASHION_MNIST_CLASSES, FolderDataset, class_names, load_fashion_mnist,
                        load_split, read_class_index)
from dmvae.errors import PipelineError

from conftest import CONFIG, synthetic_images

REAL_ROOT = "/usr/share/datasets/fashion-mnist"


def test_idx_files_load_as_nchw_in_minus_one_to_one(fake_fmnist):
    x, y = load_fashion_mnist(fake_fmnist, "train")
    raw, labels = synthetic_images(320, 0)
    assert x.shape == (320, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert torch.allclose(x[:, 0], torch.from_numpy(raw.astype(np.float32)) / 127.5 - 1)
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.skipif(not os.path.exists(REAL_ROOT), reason="dataset-fashion-mnist not installed")
def test_the_real_fashion_mnist_has_60k_train_and_10k_test_images():
    x, y = load_fashion_mnist(REAL_ROOT, "test")
    assert x.shape == (10000, 1, 28, 28) and sorted(set(y.tolist())) == list(range(10))
    cfg = load_config(CONFIG, ["data.max_train=100"])
    assert len(load_split(cfg, "train")) == 100


def test_class_names_travel_with_the_config():
    cfg = load_config(CONFIG)
    assert class_names(cfg) == FASHION_MNIST_CLASSES
    assert class_names(cfg)[0] == "T-shirt/top" and class_names(cfg)[9] == "Ankle boot"


def make_folder(root):
    """root/train/<wnid>/*.png with three classes and a torchvision-style class index."""
    index = {"0": ["n001", "cat"], "1": ["n002", "dog"], "2": ["n003", "fish"]}
    for cid, (wnid, _) in index.items():
        d = root / "train" / wnid
        d.mkdir(parents=True)
        for i in range(2):
            arr = np.full((40, 30, 3), 40 * int(cid) + i, dtype=np.uint8)
            Image.fromarray(arr).save(d / f"img{i}.png")
    (root / "index.json").write_text(json.dumps(index))
    return str(root / "index.json")


def test_folder_dataset_reads_classes_from_the_index_and_crops_to_size(tmp_path):
    index = make_folder(tmp_path)
    ds = FolderDataset(str(tmp_path), "train", index, image_size=16, channels=3)
    assert len(ds) == 6
    x, y = ds[4]
    assert x.shape == (3, 16, 16) and int(y) == 2
    assert torch.allclose(x, torch.full_like(x, 80 / 127.5 - 1))
    cfg = load_config(CONFIG, ["data.kind=folder", f"data.root={tmp_path}",
                               f"data.class_index={index}", "ssl.model.in_channels=3"])
    assert class_names(cfg) == ["cat", "dog", "fish"]
    assert len(load_split(cfg, "train")) == 6


def test_folder_class_index_in_list_form_and_bad_ids(tmp_path):
    good = tmp_path / "list.json"
    good.write_text(json.dumps([{"id": 1, "folder": "b", "name": "B"},
                                {"id": 0, "folder": "a", "name": "A"}]))
    assert read_class_index(str(good)) == [("a", 0, "A"), ("b", 1, "B")]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"a": [0, "A"], "b": [5, "B"]}))
    with pytest.raises(PipelineError, match="class ids"):
        read_class_index(str(bad))


def test_a_missing_image_folder_is_named(tmp_path):
    index = make_folder(tmp_path)
    with pytest.raises(PipelineError, match="val"):
        FolderDataset(str(tmp_path), "val", index, image_size=16)


def test_loader_workers_deliver_the_same_batches_as_the_main_process():
    from dmvae.distributed import Dist
    from dmvae.runtime import batches
    ds = torch.utils.data.TensorDataset(torch.arange(40.0).view(40, 1), torch.arange(40))
    d = Dist()  # one process on the CPU
    inline, workers = batches(ds, 8, 0, d), batches(ds, 8, 0, d, workers=2)
    for _ in range(7):  # across an epoch boundary (5 batches an epoch)
        (a, ya), (b, yb) = next(inline), next(workers)
        assert torch.equal(a, b) and torch.equal(ya, yb)
