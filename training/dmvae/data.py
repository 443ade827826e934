"""Datasets: Fashion-MNIST from Debian's IDX files, and ImageNet-style class folders.

Both give images as float32 [N, C, H, W] in [-1, 1] (x = p / 127.5 - 1) with int64 labels,
plus the class list that travels into the model manifest.
"""
import gzip
import json
import os
import struct

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from .errors import PipelineError

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                       "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """IDX file (optionally .gz) -> numpy array with the shape its header declares."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise PipelineError("data_invalid", f"{path} is not an IDX file (bad magic {raw[:4]!r})")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    body = raw[4 + 4 * ndim:]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(body) != expected:
        raise PipelineError("data_invalid", f"{path}: header says {dims} ({expected} bytes), "
                            f"file has {len(body)} bytes (truncated download?)")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def to_model_range(pixels_uint8):
    """uint8 [N, H, W] or [N, H, W, C] -> float32 tensor [N, C, H, W] in [-1, 1]."""
    x = torch.from_numpy(np.array(pixels_uint8, dtype=np.float32))  # copy: IDX buffers are read-only
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return x / 127.5 - 1.0


def load_fashion_mnist(root, split, limit=None):
    """-> (images [N, 1, 28, 28] in [-1, 1], labels [N] int64)."""
    img_name, lbl_name = FASHION_MNIST_FILES[split]
    paths = [os.path.join(root, n) for n in (img_name, lbl_name)]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise PipelineError("data_missing", f"Fashion-MNIST file(s) {missing} not found. Install "
                            "the Debian package dataset-fashion-mnist (apt-get install "
                            "dataset-fashion-mnist) or point data.root at a folder holding the "
                            "four *-ubyte.gz files (--set data.root=/path)")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.shape[0] != labels.shape[0]:
        raise PipelineError("data_invalid", f"{split}: {images.shape[0]} images but "
                            f"{labels.shape[0]} labels")
    if limit:
        images, labels = images[:limit], labels[:limit]
    return to_model_range(images), torch.from_numpy(labels.astype(np.int64))


# ---------------------------------------------------------------------------------------------
# ImageNet-style folders: <root>/<split>/<class folder>/*.png|jpg, plus a class-index JSON
# ---------------------------------------------------------------------------------------------

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def read_class_index(path):
    """Class index JSON -> list of (folder, id, name), sorted by id.

    Accepts the torchvision ImageNet form {"0": ["n01440764", "tench"], ...} or
    {"n01440764": [0, "tench"], ...} or a list [{"id", "folder", "name"}].
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise PipelineError("data_missing", f"class index {path} not found; set "
                            "data.class_index to a JSON file mapping folders to ids") from None
    rows = []
    if isinstance(data, list):
        rows = [(r["folder"], int(r["id"]), r["name"]) for r in data]
    else:
        for key, value in data.items():
            if key.isdigit():
                rows.append((value[0], int(key), value[1]))
            else:
                rows.append((key, int(value[0]), value[1]))
    rows.sort(key=lambda r: r[1])
    if [r[1] for r in rows] != list(range(len(rows))):
        raise PipelineError("data_invalid", f"class ids in {path} must be 0..{len(rows) - 1}")
    return rows


class FolderDataset(Dataset):
    """Images under <root>/<split>/<folder>/, resized (shorter side) and centre-cropped."""

    def __init__(self, root, split, class_index, image_size, channels=3, limit=None):
        self.classes = read_class_index(class_index)
        self.image_size, self.channels = image_size, channels
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            raise PipelineError("data_missing", f"image folder {split_dir} not found; expected "
                                f"{root}/{split}/<class folder>/<images> (set data.root)")
        self.items = []
        for folder, cid, _ in self.classes:
            d = os.path.join(split_dir, folder)
            if not os.path.isdir(d):
                continue  # a class may be absent from a small split
            names = sorted(n for n in os.listdir(d) if n.lower().endswith(IMAGE_EXTENSIONS))
            self.items += [(os.path.join(d, n), cid) for n in names]
        if not self.items:
            raise PipelineError("data_missing", f"no images found under {split_dir}")
        if limit:
            self.items = self.items[:limit]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image
        path, label = self.items[i]
        with Image.open(path) as im:
            im = im.convert("L" if self.channels == 1 else "RGB")
            s = self.image_size
            scale = s / min(im.size)
            im = im.resize((max(s, round(im.width * scale)), max(s, round(im.height * scale))),
                           Image.BICUBIC)
            left, top = (im.width - s) // 2, (im.height - s) // 2
            im = im.crop((left, top, left + s, top + s))
            arr = np.asarray(im, dtype=np.uint8)
        x = to_model_range(arr[None])[0]
        return x, torch.tensor(label, dtype=torch.long)


# ---------------------------------------------------------------------------------------------
# Entry point used by the stages
# ---------------------------------------------------------------------------------------------

def class_names(cfg):
    if cfg.data.kind == "fashion-mnist":
        return list(FASHION_MNIST_CLASSES)
    return [name for _, _, name in read_class_index(cfg.data.class_index)]


def load_split(cfg, split):
    """-> torch Dataset of (image [C, H, W] in [-1, 1], label) for 'train' or 'test'."""
    limit = cfg.data.max_train if split == "train" else cfg.data.max_test
    if cfg.data.kind == "fashion-mnist":
        return TensorDataset(*load_fashion_mnist(cfg.data.root, split, limit))
    if cfg.data.kind == "folder":
        if not cfg.data.class_index:
            raise PipelineError("config_invalid", "data.kind=folder needs data.class_index")
        vit = cfg.ssl.model
        return FolderDataset(cfg.data.root, "val" if split == "test" else split,
                             cfg.data.class_index, vit.image_size, vit.in_channels, limit)
    raise PipelineError("config_invalid", f"data.kind must be fashion-mnist or folder, "
                        f"got {cfg.data.kind!r}")


def stack(dataset, limit=None):
    """Whole dataset (or its first `limit` items) as (images, labels) tensors."""
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors
        return (x[:limit], y[:limit]) if limit else (x, y)
    n = min(len(dataset), limit or len(dataset))
    pairs = [dataset[i] for i in range(n)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
