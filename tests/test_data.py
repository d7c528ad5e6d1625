"""Datasets: every official layout, the npz forms, the cache, and clear errors for absent or damaged data."""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from ddbench.core.errors import DDBenchError
from ddbench.data import dataset_status, get_spec, list_datasets, load_dataset


def test_digits_split_is_fixed_and_stratified():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1257, 1, 8, 8) and ds.x_test.shape == (540, 1, 8, 8)
    assert ds.x_train.dtype.is_floating_point is False
    # golden values: a change to the split (seed, fraction, sklearn's order) changes every digits number
    assert ds.class_counts().tolist() == [124, 127, 124, 128, 127, 127, 127, 125, 122, 126]
    assert hashlib.sha256(ds.y_train.numpy().tobytes()).hexdigest()[:16] == "7ccd324319b54677"
    assert hashlib.sha256(ds.y_test.numpy().tobytes()).hexdigest()[:16] == "c109985223b344bc"
    assert ds.fingerprint == "7231e0f4396d67ea" and ds.complete


def test_every_advertised_dataset_is_known():
    assert set(list_datasets()) >= {"mnist", "fashion_mnist", "cifar10", "cifar100", "tinyimagenet", "cub200", "digits"}


def test_real_mnist_from_shared_data_and_cache_is_fast(shared_data):
    first = load_dataset("mnist", shared_data)
    assert first.x_train.shape == (60000, 1, 28, 28) and first.x_test.shape == (10000, 1, 28, 28)
    assert abs(first.x_train.float().mean().item() / 255 - 0.1307) < 1e-3
    import ddbench.data as data

    def never(*args, **kwargs):
        raise AssertionError("the second load parsed the npz again instead of reading the tensor cache")

    original, data.read_npz = data.read_npz, never  # a cache hit never reads the source (speed is benchmarked, not timed here)
    try:
        again = load_dataset("mnist", shared_data)
    finally:
        data.read_npz = original
    assert torch.equal(again.x_train, first.x_train) and again.fingerprint == first.fingerprint


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


def test_a_changed_source_file_replaces_its_cache_file_and_other_sources_keep_theirs(tmp_path, private_cache, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):  # both loaded as "." from their own folder: the same relative source, different files
        root.mkdir()
        _npz(root / "mnist.npz")
        monkeypatch.chdir(root)
        load_dataset("mnist", ".")

    def mine() -> dict[Path, str]:
        """This test's cache files and the absolute source each was made from."""
        out = {}
        for path in (private_cache / "datasets").glob("mnist-*.safetensors"):
            with safe_open(str(path), framework="pt") as handle:
                origin = handle.metadata().get("origin", "")
            if str(tmp_path) in origin:
                out[path] = origin
        return out

    before = mine()
    assert sorted(before.values()) == [f"npz:{first / 'mnist.npz'}", f"npz:{second / 'mnist.npz'}"]
    stat = (first / "mnist.npz").stat()
    os.utime(first / "mnist.npz", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # re-mounted: same bytes, new mtime
    monkeypatch.chdir(first)
    again = load_dataset("mnist", ".")
    after = mine()
    assert sorted(after.values()) == sorted(before.values())  # one file per source: the stale copy was deleted
    (kept,) = [path for path, origin in before.items() if str(second) in origin]
    assert kept in after and len(set(after) - set(before)) == 1
    assert again.x_train.shape == (40, 1, 28, 28)


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
    ds = get_spec("tinyimagenet").read_official(tmp_path)  # the reader, on a 2-class fixture in the official layout
    assert ds.x_train.shape == (6, 64, 64, 3) and ds.x_test.shape == (4, 64, 64, 3)
    assert ds.y_test.tolist() == [0, 1, 0, 1] and ds.class_names == ["goldfish", "salamander"]
    with pytest.raises(DDBenchError, match="has 2 classes; tinyimagenet has 200"):
        load_dataset("tinyimagenet", tmp_path)  # a 2-class copy is not Tiny-ImageNet


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
    ds = get_spec("cub200").read_official(tmp_path)
    assert ds.x_train.shape == (4, 32, 32, 3) and ds.x_test.shape == (2, 32, 32, 3)
    assert ds.class_names == ["001.Albatross", "002.Auklet"]
    assert get_spec("cub200_64").read_official(tmp_path).x_train.shape == (4, 64, 64, 3)
    with pytest.raises(DDBenchError, match="has 2 classes; cub200 has 200"):
        load_dataset("cub200", tmp_path)


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
    ds = get_spec("aircraft").read_official(tmp_path)
    assert ds.x_train.shape == (3, 32, 32, 3) and ds.y_train.tolist() == [0, 1, 1] and ds.class_names[1] == "A300B4"

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
    ds = get_spec("dogs_64").read_official(tmp_path)
    assert ds.x_train.shape == (2, 64, 64, 3) and ds.class_names == ["Chihuahua", "Japanese_spaniel"]

    flowers = tmp_path / "flowers-102"
    for i in range(1, 5):
        _jpeg(flowers / "jpg" / f"image_{i:05d}.jpg", 45, 20 + i)
    savemat(flowers / "imagelabels.mat", {"labels": np.array([[1, 2, 1, 2]])})
    savemat(flowers / "setid.mat", {"trnid": np.array([[1, 2]]), "valid": np.array([[3]]), "tstid": np.array([[3, 4]])})
    ds = get_spec("flowers102").read_official(tmp_path)
    assert ds.x_train.shape == (2, 32, 32, 3) and ds.y_test.tolist() == [0, 1]
    assert get_spec("flowers102").mean is None  # normalised with its own statistics
    with pytest.raises(DDBenchError, match="has 2 classes; flowers102 has 102"):
        load_dataset("flowers102", tmp_path)


def _npz(path, n_train=40, n_test=20, classes=10, size=(28, 28, 1), labels=None, names=True, y_dtype=np.int64):
    rng = np.random.default_rng(0)
    y_train = np.arange(n_train) % classes if labels is None else labels
    kw = {"class_names": np.array([f"c{i}" for i in range(classes)])} if names else {}
    np.savez(path, x_train=rng.integers(0, 256, (n_train, *size), dtype=np.uint8), y_train=y_train.astype(y_dtype),
             x_test=rng.integers(0, 256, (n_test, *size), dtype=np.uint8), y_test=(np.arange(n_test) % classes).astype(y_dtype), **kw)


@pytest.mark.parametrize("kwargs, why", [
    ({"classes": 9, "names": False}, "has 9 classes; mnist has 10"),  # class 9 missing, no class_names
    ({"classes": 50, "size": (32, 32, 3)}, "has 50 classes; cub200 has 200"),
    ({"y_dtype": np.float32}, "must hold integer class labels"),
    ({"n_test": 0}, "the test split is empty"),
    ({"size": (32, 32, 1)}, "images are 32×32×1"),
])
def test_a_file_that_is_not_the_dataset_is_refused(tmp_path, kwargs, why):
    name = "cub200" if kwargs.get("classes") == 50 else "mnist"
    _npz(tmp_path / f"{name}.npz", **kwargs)
    with pytest.raises(DDBenchError, match=why):
        load_dataset(name, tmp_path)


def test_a_partial_copy_loads_marked_and_its_rows_are_not_standard(tmp_path):
    from ddbench.cli import main
    from ddbench.store.results import ResultStore

    _npz(tmp_path / "mnist.npz", n_train=60, n_test=30)
    ds = load_dataset("mnist", tmp_path)
    assert not ds.complete and len(ds.fingerprint) == 16
    lb = tmp_path / "lb"
    assert main(["evaluate", "--method", "random", "--protocol", "mnist-ipc1", "--data-root", str(tmp_path), "--seeds", "1",
                 "--epochs", "1", "--results", str(lb), "--no-progress"]) == 0
    (row,) = ResultStore(lb).rows()
    assert row["data_complete"] is False and row["data_fingerprint"] == ds.fingerprint


def test_a_class_smaller_than_the_ipc_is_refused_not_capped(tmp_path, capsys):
    from ddbench.cli import main

    _npz(tmp_path / "mnist.npz", n_train=60, n_test=30)  # 6 images per class
    code = main(["evaluate", "--method", "random", "--protocol", "mnist-ipc10", "--data-root", str(tmp_path),
                 "--results", str(tmp_path / "lb"), "--no-progress"])
    assert code == 2 and "has 6 training images; card 'mnist-ipc10' needs ipc 10" in capsys.readouterr().err
    assert not (tmp_path / "lb" / "results.jsonl").exists()


def test_rows_are_tied_to_their_data_and_a_resume_on_other_data_is_refused(tmp_path, capsys):
    from ddbench.cli import main

    data, lb = tmp_path / "data", tmp_path / "lb"
    data.mkdir()
    _npz(data / "mnist.npz", n_train=60, n_test=30)
    args = ["evaluate", "--method", "random", "--protocol", "mnist-ipc1", "--data-root", str(data), "--seeds", "1",
            "--epochs", "1", "--results", str(lb), "--no-progress"]
    assert main(args) == 0
    rng = np.random.default_rng(1)  # the same file name, other (e.g. corrupted) content
    with np.load(data / "mnist.npz") as old:
        arrays = dict(old)
    arrays["x_test"] = rng.integers(0, 256, arrays["x_test"].shape, dtype=np.uint8)
    np.savez(data / "mnist.npz", **arrays)
    capsys.readouterr()
    more = list(args)
    more[more.index("--seeds") + 1] = "2"  # a second seed to run, on the changed file
    assert main(more) == 2
    assert "made on other mnist data" in capsys.readouterr().err


def test_real_datasets_have_their_published_shape_counts_and_pixels(shared_data):
    """Per-channel means, per-class counts and one image's checksum: swapped axes or permuted channels fail."""
    mnist = load_dataset("mnist", shared_data)
    assert mnist.complete and mnist.x_train.shape == (60000, 1, 28, 28)
    assert mnist.class_counts().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(mnist.x_train.float().mean().item() / 255 - 0.1307) < 1e-3
    assert hashlib.sha256(mnist.x_train[0].numpy().tobytes()).hexdigest()[:16] == MNIST_FIRST_IMAGE
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    cifar = load_dataset("cifar10", shared_data)
    assert cifar.complete and cifar.x_train.shape == (50000, 3, 32, 32) and cifar.class_counts().tolist() == [5000] * 10
    means = (cifar.x_train.float().mean((0, 2, 3)) / 255).tolist()
    assert all(abs(m - want) < 2e-3 for m, want in zip(means, (0.4914, 0.4822, 0.4465))), means  # R, G, B in order
    assert hashlib.sha256(cifar.x_train[0].numpy().tobytes()).hexdigest()[:16] == CIFAR10_FIRST_IMAGE


MNIST_FIRST_IMAGE = "23ceaef5eb61f0e7"  # sha256 of x_train[0] (uint8, 1×28×28), the official file's first digit
CIFAR10_FIRST_IMAGE = "f68fa80ca620ea97"  # of the shared JPEG copy's first image (3×32×32)
