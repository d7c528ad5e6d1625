"""Datasets: every official layout, the npz forms, the cache, and clear errors for absent or damaged data."""
from __future__ import annotations

import gzip
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddbench.data import dataset_status, list_datasets, load_dataset
from ddbench.errors import DDBenchError


def test_digits_split_is_fixed_and_stratified():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1257, 1, 8, 8) and ds.x_test.shape == (540, 1, 8, 8)
    assert ds.x_train.dtype.is_floating_point is False
    counts = np.bincount(ds.y_train.numpy(), minlength=10)
    assert counts.min() >= 120 and counts.max() <= 130  # stratified: ~126 per class
    again = load_dataset("digits")
    assert (again.x_train == ds.x_train).all() and (again.y_test == ds.y_test).all()


def test_every_advertised_dataset_is_known():
    assert set(list_datasets()) >= {"mnist", "fashion_mnist", "cifar10", "cifar100", "tinyimagenet", "cub200", "digits"}


def test_real_mnist_from_shared_data_and_cache_is_fast(shared_data):
    first = load_dataset("mnist", shared_data)
    assert first.x_train.shape == (60000, 1, 28, 28) and first.x_test.shape == (10000, 1, 28, 28)
    assert abs(first.x_train.float().mean().item() / 255 - 0.1307) < 1e-3
    start = time.perf_counter()
    load_dataset("mnist", shared_data)
    assert time.perf_counter() - start < 1.0


def test_jpeg_packed_cifar10_from_shared_data(shared_data):
    if not (shared_data / "cifar10-jpeg.npz").is_file():
        pytest.skip("cifar10-jpeg.npz absent")
    ds = load_dataset("cifar10", shared_data)
    assert ds.x_train.shape == (50000, 3, 32, 32) and ds.num_classes == 10
    assert ds.class_names[0] == "airplane"


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def _fake_mnist(root: Path, folder: str = "MNIST", compress: bool = False) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (30, 28, 28)), compress)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(30) % 10, compress)
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)), compress)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(20) % 10, compress)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_layout(tmp_path, compress):
    _fake_mnist(tmp_path, compress=compress)
    ds = load_dataset("mnist", tmp_path)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.y_test.tolist()[:3] == [0, 1, 2]
    assert ds.mean == (0.1307,)  # the field's constant, not the fixture's statistics


def test_fashion_mnist_idx_layout(tmp_path):
    _fake_mnist(tmp_path, folder="FashionMNIST")
    ds = load_dataset("fashion_mnist", tmp_path)
    assert ds.class_names[0] == "T-shirt/top"


def test_truncated_idx_is_refused_and_nothing_is_cached(tmp_path, private_cache):
    _fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    before = set((private_cache / "datasets").glob("*")) if (private_cache / "datasets").exists() else set()
    with pytest.raises(DDBenchError, match="truncated"):
        load_dataset("mnist", tmp_path)
    after = set((private_cache / "datasets").glob("*")) if (private_cache / "datasets").exists() else set()
    assert after == before


def _pickle(obj, path: Path) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def test_cifar10_and_cifar100_pickle_layouts(tmp_path):
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for i in range(1, 6):
        _pickle({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}, base / f"data_batch_{i}")
    _pickle({"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), "labels": [9, 8, 7]}, base / "test_batch")
    _pickle({"label_names": [f"c{i}" for i in range(10)]}, base / "batches.meta")
    ds = load_dataset("cifar10", tmp_path)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.y_test.tolist() == [9, 8, 7] and ds.class_names[9] == "c9"

    base = tmp_path / "cifar-100-python"
    base.mkdir()
    _pickle({"data": rng.integers(0, 256, (5, 3072), dtype=np.uint8), "fine_labels": [0, 10, 20, 30, 99]}, base / "train")
    _pickle({"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), "fine_labels": [5, 6]}, base / "test")
    _pickle({"fine_label_names": [f"f{i}" for i in range(100)]}, base / "meta")
    ds = load_dataset("cifar100", tmp_path)
    assert ds.num_classes == 100 and ds.y_train.tolist() == [0, 10, 20, 30, 99]


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    (base / "train").write_bytes(pickle.dumps({"data": Evil()}))
    (base / "test").write_bytes(b"")
    (base / "meta").write_bytes(b"")
    with pytest.raises(DDBenchError, match="refusing|corrupt"):
        load_dataset("cifar100", tmp_path)


def _jpeg(path: Path, size: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="JPEG")


def test_tinyimagenet_folder_layout(tmp_path):
    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    base.mkdir()
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tsalamander\n")
    for i, w in enumerate(wnids):
        for j in range(3):
            _jpeg(base / "train" / w / "images" / f"{w}_{j}.JPEG", 64, 10 * i + j)
    lines = []
    for j in range(4):
        _jpeg(base / "val" / "images" / f"val_{j}.JPEG", 64, 100 + j)
        lines.append(f"val_{j}.JPEG\t{wnids[j % 2]}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    ds = load_dataset("tinyimagenet", tmp_path)
    assert ds.x_train.shape == (6, 3, 64, 64) and ds.x_test.shape == (4, 3, 64, 64)
    assert ds.y_test.tolist() == [0, 1, 0, 1] and ds.class_names == ["goldfish", "salamander"]


def test_cub200_folder_layout_uses_official_split(tmp_path):
    base = tmp_path / "CUB_200_2011"
    (base / "images").mkdir(parents=True)
    images, split, labels = [], [], []
    for i in range(1, 7):
        name = f"00{1 + (i % 2)}.Bird/img_{i}.jpg"
        _jpeg(base / "images" / name, 40 + i, i)  # varied sizes, resized on load
        images.append(f"{i} {name}")
        split.append(f"{i} {1 if i <= 4 else 0}")
        labels.append(f"{i} {1 + (i % 2)}")
    (base / "images.txt").write_text("\n".join(images))
    (base / "train_test_split.txt").write_text("\n".join(split))
    (base / "image_class_labels.txt").write_text("\n".join(labels))
    (base / "classes.txt").write_text("1 001.Albatross\n2 002.Auklet\n")
    ds = load_dataset("cub200", tmp_path)
    assert ds.x_train.shape == (4, 3, 32, 32) and ds.x_test.shape == (2, 3, 32, 32)
    assert ds.class_names == ["001.Albatross", "002.Auklet"]
    assert load_dataset("cub200_64", tmp_path).x_train.shape == (4, 3, 64, 64)


def test_plain_npz_and_shape_checks(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cifar100.npz", x_train=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(10), x_test=rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
             y_test=np.arange(5), class_names=np.array([f"c{i}" for i in range(100)]))
    ds = load_dataset("cifar100", tmp_path)
    assert ds.x_train.shape == (10, 3, 32, 32) and ds.num_classes == 100
    np.savez(tmp_path / "cifar10.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8), y_train=np.arange(3),
             x_test=np.zeros((2, 32, 32, 3), np.uint8), y_test=np.arange(2))
    with pytest.raises(DDBenchError, match="one label per image"):
        load_dataset("cifar10", tmp_path)


def test_corrupt_npz_is_a_clear_error(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 this is not a real zip archive")
    with pytest.raises(DDBenchError, match="corrupt or truncated"):
        load_dataset("mnist", tmp_path)


def test_missing_dataset_names_paths_files_and_prepare_command(tmp_path):
    with pytest.raises(DDBenchError) as err:
        load_dataset("cifar10", tmp_path)
    message = str(err.value)
    assert "'cifar10'" in message and str(tmp_path) in message
    assert "cifar-10-batches-py/data_batch_1" in message and "cifar10.npz" in message
    assert "ddbench data prepare cifar10" in message
    assert "\n" not in message
    assert dataset_status("cifar10", tmp_path)["present"] is False


def test_unknown_dataset():
    with pytest.raises(DDBenchError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def test_fine_grained_layouts(tmp_path):
    from scipy.io import savemat

    base = tmp_path / "fgvc-aircraft-2013b" / "data"
    (base / "images").mkdir(parents=True)
    (base / "variants.txt").write_text("707-320\nA300B4\n")
    for i in range(4):
        _jpeg(base / "images" / f"{1000 + i}.jpg", 50, i)
    (base / "images_variant_trainval.txt").write_text("1000 707-320\n1001 A300B4\n1002 A300B4\n")
    (base / "images_variant_test.txt").write_text("1003 707-320\n")
    ds = load_dataset("aircraft", tmp_path)
    assert ds.x_train.shape == (3, 3, 32, 32) and ds.y_train.tolist() == [0, 1, 1] and ds.class_names[1] == "A300B4"

    dogs = tmp_path / "StanfordDogs"
    files = ["n02085620-Chihuahua/a.jpg", "n02085782-Japanese_spaniel/b.jpg", "n02085620-Chihuahua/c.jpg"]
    for i, f in enumerate(files):
        _jpeg(dogs / "Images" / f, 40, 10 + i)
    cell = np.empty((2, 1), dtype=object)
    cell[0, 0], cell[1, 0] = np.array([files[0]]), np.array([files[1]])
    savemat(dogs / "train_list.mat", {"file_list": cell, "labels": np.array([[1], [2]])})
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = np.array([files[2]])
    savemat(dogs / "test_list.mat", {"file_list": cell, "labels": np.array([[1]])})
    ds = load_dataset("dogs_64", tmp_path)
    assert ds.x_train.shape == (2, 3, 64, 64) and ds.class_names == ["Chihuahua", "Japanese_spaniel"]

    flowers = tmp_path / "flowers-102"
    for i in range(1, 5):
        _jpeg(flowers / "jpg" / f"image_{i:05d}.jpg", 45, 20 + i)
    savemat(flowers / "imagelabels.mat", {"labels": np.array([[1, 2, 1, 2]])})
    savemat(flowers / "setid.mat", {"trnid": np.array([[1, 2]]), "valid": np.array([[3]]), "tstid": np.array([[3, 4]])})
    ds = load_dataset("flowers102", tmp_path)
    assert ds.x_train.shape == (2, 3, 32, 32) and ds.y_test.tolist() == [0, 1]
    assert ds.std != (0.229, 0.224, 0.225)  # its own statistics
