"""The data layer on the real Fashion-MNIST: contents, d2l parity, search order, broken files."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.data.vision import transforms

from gluon_resnet import data, idx
from gluon_resnet.data import DatasetError, DatasetNotFound, batches, epoch_order

# docs/DESIGN.md section 4, copied here so the test does not trust the module's own table.
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
NAMES = tuple(SHA256)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    """Keep the verification cache of these tests out of the user's ~/.cache."""
    root = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    return root / "gluon-resnet-orderings" / "verified.json"


def real_file(folder: Path, name: str) -> Path:
    """The real file `name` or `name.gz` in folder."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    raise FileNotFoundError(name)


def decompressed(folder: Path, name: str) -> bytes:
    path = real_file(folder, name)
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def dataset_folder(folder: Path, real: Path, skip: tuple[str, ...] = ()) -> Path:
    """A folder of symlinks to the real four files, leaving out `skip`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        if name not in skip:
            source = real_file(real, name)
            (folder / source.name).symlink_to(source)
    return folder


# ---------------------------------------------------------------- the real data


def test_counts_shapes_and_dtypes(fashion_mnist):
    d = fashion_mnist
    assert d.train_images.shape == (60000, 28, 28) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (10000, 28, 28) and d.test_images.dtype == np.uint8
    assert d.train_labels.shape == (60000,) and d.train_labels.dtype == np.int32
    assert d.test_labels.shape == (10000,) and d.test_labels.dtype == np.int32


def test_first_ten_training_labels(fashion_mnist):
    assert fashion_mnist.train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]


def test_every_class_has_6000_train_and_1000_test_images(fashion_mnist):
    assert np.bincount(fashion_mnist.train_labels, minlength=11).tolist() == [6000] * 10 + [0]
    assert np.bincount(fashion_mnist.test_labels, minlength=11).tolist() == [1000] * 10 + [0]


def test_training_pixel_mean_and_std(fashion_mnist):
    images = fashion_mnist.train_images
    # An exact histogram of pixel values, in chunks (bincount widens uint8 to int64).
    counts = sum(np.bincount(images[i:i + 5000].ravel(), minlength=256)
                 for i in range(0, len(images), 5000))
    values = np.arange(256) / 255
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    assert counts.sum() == 60000 * 28 * 28
    assert (round(mean, 4), round(std, 4)) == (0.2860, 0.3530)


# ---------------------------------------------------------------- parity with d2l


def d2l_pipeline(images: np.ndarray, size: int) -> np.ndarray:
    """d2l's load_data_fashion_mnist transforms, image by image, on what its dataset yields
    in numpy mode: mx.np uint8 HWC arrays."""
    trans = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    return np.stack([trans(mx.np.array(img[:, :, None], dtype=np.uint8)).asnumpy()
                     for img in images])


def test_batches_match_d2l_resize_and_to_tensor(fashion_mnist):
    images = np.concatenate([fashion_mnist.train_images[:150], fashion_mnist.test_images[:150]])
    labels = np.concatenate([fashion_mnist.train_labels[:150], fashion_mnist.test_labels[:150]])
    expected = d2l_pipeline(images, 96)
    got = list(batches(images, labels, batch_size=128, size=96))
    x = np.concatenate([xb.asnumpy() for xb, _ in got])
    assert x.shape == expected.shape == (300, 1, 96, 96)
    assert np.abs(x - expected).max() <= 1 / 255
    assert np.concatenate([yb.asnumpy() for _, yb in got]).tolist() == labels.tolist()


def test_size_28_is_plain_scaling(small_data):
    x, _ = next(batches(small_data.test_images, small_data.test_labels, 100, size=28))
    np.testing.assert_allclose(x.asnumpy()[:, 0], small_data.test_images / 255.0, atol=1e-7)


# ---------------------------------------------------------------- where the data is found


@pytest.fixture
def places(tmp_path, monkeypatch, fashion_mnist):
    """Four complete dataset folders, one per place searched, with a clean environment."""
    real = fashion_mnist.data_dir
    folders = {
        "arg": dataset_folder(tmp_path / "arg", real),
        "env": dataset_folder(tmp_path / "env", real),
        "mxnet": dataset_folder(tmp_path / "mxhome" / "datasets" / "fashion-mnist", real),
        "system": dataset_folder(tmp_path / "system", real),
    }
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FASHION_MNIST_DIR", str(folders["env"]))
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    monkeypatch.setattr(idx, "SYSTEM_DIR", folders["system"])
    return folders


def test_search_order(places, monkeypatch):
    assert data.find_data_dir(places["arg"]) == places["arg"]
    assert data.find_data_dir(str(places["arg"])) == places["arg"]
    assert data.find_data_dir() == places["env"]
    monkeypatch.delenv("FASHION_MNIST_DIR")
    assert data.find_data_dir() == places["mxnet"]
    monkeypatch.delenv("MXNET_HOME")
    assert data.find_data_dir() == places["system"]


def test_mxnet_home_defaults_to_dot_mxnet(places, fashion_mnist, tmp_path, monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_DIR")
    monkeypatch.delenv("MXNET_HOME")
    home_copy = dataset_folder(tmp_path / "home" / ".mxnet" / "datasets" / "fashion-mnist",
                               fashion_mnist.data_dir)
    assert data.find_data_dir() == home_copy


def test_incomplete_folders_are_skipped(places, monkeypatch):
    (places["env"] / "t10k-labels-idx1-ubyte.gz").unlink()
    for path in places["mxnet"].iterdir():
        path.unlink()
    assert data.find_data_dir() == places["system"]


def test_missing_dataset_lists_places_and_both_remedies(places, monkeypatch, tmp_path):
    monkeypatch.setattr(idx, "SYSTEM_DIR", tmp_path / "nowhere")
    (places["env"] / "train-images-idx3-ubyte.gz").unlink()
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotFound) as info:
        data.load_fashion_mnist()
    message = str(info.value)
    for searched in (places["env"], tmp_path / "empty" / "datasets" / "fashion-mnist",
                     tmp_path / "nowhere"):
        assert str(searched) in message
    assert "missing train-images-idx3-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message and "FASHION_MNIST_DIR" in message


def test_explicit_folder_with_a_missing_file_is_an_error(places):
    (places["arg"] / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFound) as info:
        data.load_fashion_mnist(places["arg"])  # not silently replaced by $FASHION_MNIST_DIR
    assert str(places["arg"]) in str(info.value)
    assert "missing t10k-labels-idx1-ubyte" in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_reads_decompressed_files(tmp_path, fashion_mnist):
    for name in NAMES:
        (tmp_path / name).write_bytes(decompressed(fashion_mnist.data_dir, name))
    loaded = data.load_fashion_mnist(tmp_path)
    assert loaded.data_dir == tmp_path
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(fashion_mnist, field))


# ---------------------------------------------------------------- broken files


def _labels(count_in_header: int, n: int, base: bytes) -> bytes:
    return struct.pack(">II", 2049, count_in_header) + base[8:8 + n]


def _flip_last(content: bytes) -> bytes:
    return content[:-1] + bytes([content[-1] ^ 1])


def _corrupt_gzip(content: bytes) -> bytes:
    packed = bytearray(gzip.compress(content))
    packed[len(packed) // 2] ^= 0xFF
    return bytes(packed)


T10K_LABELS = "t10k-labels-idx1-ubyte"
# (case, slot broken, file name written, make bytes from the real decompressed slot content,
#  words the message must contain besides the file's path)
BROKEN = [
    ("truncated", T10K_LABELS, ".gz", lambda c: gzip.compress(c[:5000]),
     ["truncated", "10008", "5000"]),
    ("truncated header", T10K_LABELS, ".gz", lambda c: gzip.compress(c[:6]),
     ["truncated", "header of 8 bytes", "6 bytes"]),
    ("trailing bytes", T10K_LABELS, "", lambda c: c + b"\0", ["trailing", "10008", "10009"]),
    ("wrong magic", T10K_LABELS, ".gz", lambda c: gzip.compress(b"\x12\x34\x56\x78" + c[4:]),
     ["wrong magic", "2049", str(0x12345678)]),
    ("wrong count", T10K_LABELS, ".gz", lambda c: gzip.compress(_labels(9999, 9999, c)),
     ["wrong item count", "10000", "9999"]),
    ("flipped byte", T10K_LABELS, ".gz", lambda c: gzip.compress(_flip_last(c)),
     ["checksum mismatch", SHA256[T10K_LABELS]]),  # + the found digest, added in the test
    ("corrupt gzip", T10K_LABELS, ".gz", _corrupt_gzip, ["corrupt gzip"]),
    ("cut gzip stream", T10K_LABELS, ".gz", lambda c: gzip.compress(c)[:2000],
     ["corrupt gzip", "complete gzip stream"]),
    ("not gzip but .gz", T10K_LABELS, ".gz", lambda c: c, ["not gzip", "1f 8b"]),
    ("gzip without .gz", T10K_LABELS, "", gzip.compress, ["without the .gz suffix"]),
]


@pytest.mark.parametrize("case, slot, suffix, make, words", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_file_is_named_with_expected_and_found(case, slot, suffix, make, words,
                                                      tmp_path, fashion_mnist):
    broken = make(decompressed(fashion_mnist.data_dir, slot))
    if case == "flipped byte":
        words = words + [hashlib.sha256(gzip.decompress(broken)).hexdigest()]
    folder = dataset_folder(tmp_path / "data", fashion_mnist.data_dir, skip=(slot,))
    (folder / f"{slot}{suffix}").write_bytes(broken)
    with pytest.raises(DatasetError) as info:
        data.load_fashion_mnist(folder)
    message = str(info.value)
    assert str(folder / f"{slot}{suffix}") in message
    assert "expected" in message and "found" in message
    for word in words:
        assert word in message


def test_labels_file_where_images_were_expected(tmp_path, fashion_mnist):
    folder = dataset_folder(tmp_path, fashion_mnist.data_dir, skip=("t10k-images-idx3-ubyte",))
    wrong = folder / "t10k-images-idx3-ubyte.gz"
    wrong.symlink_to(real_file(fashion_mnist.data_dir, "t10k-labels-idx1-ubyte"))
    with pytest.raises(DatasetError, match="labels file") as info:
        data.load_fashion_mnist(folder)
    assert str(wrong) in str(info.value) and "2051" in str(info.value)


def test_training_labels_in_the_test_slot(tmp_path, fashion_mnist):
    folder = dataset_folder(tmp_path, fashion_mnist.data_dir, skip=(T10K_LABELS,))
    (folder / f"{T10K_LABELS}.gz").symlink_to(
        real_file(fashion_mnist.data_dir, "train-labels-idx1-ubyte"))
    with pytest.raises(DatasetError, match="expected 10000 labels, found 60000"):
        data.load_fashion_mnist(folder)


def test_wrong_image_shape(tmp_path, fashion_mnist):
    name = "t10k-images-idx3-ubyte"
    content = decompressed(fashion_mnist.data_dir, name)
    folder = dataset_folder(tmp_path, fashion_mnist.data_dir, skip=(name,))
    (folder / name).write_bytes(content[:8] + struct.pack(">II", 32, 28) + content[16:])
    with pytest.raises(DatasetError, match="expected 28x28, found 32x28") as info:
        data.load_fashion_mnist(folder)
    assert str(folder / name) in str(info.value)


# ---------------------------------------------------------------- verification cache


def test_cache_records_each_verified_file(fashion_mnist, private_cache):
    data.load_fashion_mnist(fashion_mnist.data_dir)
    entries = json.loads(private_cache.read_text())
    for name in NAMES:
        path = real_file(fashion_mnist.data_dir, name).resolve()
        stat = path.stat()
        assert entries[str(path)] == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                      "inode": stat.st_ino, "ctime_ns": stat.st_ctime_ns,
                                      "sha256": SHA256[name]}


def test_unchanged_file_skips_the_hash_and_an_edit_is_hashed_again(tmp_path, fashion_mnist,
                                                                    private_cache):
    folder = dataset_folder(tmp_path, fashion_mnist.data_dir, skip=(T10K_LABELS,))
    copy = folder / T10K_LABELS
    copy.write_bytes(decompressed(fashion_mnist.data_dir, T10K_LABELS))
    data.load_fashion_mnist(folder)
    # Unchanged file: the remembered digest is used, not a new hash (a planted one shows it).
    entries = json.loads(private_cache.read_text())
    entries[str(copy.resolve())]["sha256"] = "0" * 64
    private_cache.write_text(json.dumps(entries))
    with pytest.raises(DatasetError, match="found 0000000000"):
        data.load_fashion_mnist(folder)
    private_cache.unlink()
    data.load_fashion_mnist(folder)
    # Same size and mtime, other bytes: the ctime moved, so the file is hashed again.
    stamp = copy.stat()
    copy.write_bytes(_flip_last(copy.read_bytes()))
    os.utime(copy, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        data.load_fashion_mnist(folder)


def test_damaged_cache_is_rebuilt(tmp_path, fashion_mnist, private_cache):
    private_cache.parent.mkdir(parents=True, exist_ok=True)
    private_cache.write_text("{not json")
    folder = dataset_folder(tmp_path, fashion_mnist.data_dir)
    data.load_fashion_mnist(folder)
    assert len(json.loads(private_cache.read_text())) == 4


# ---------------------------------------------------------------- subsets, order, batches


def test_subset_is_first_n_per_class_in_original_order(fashion_mnist, small_data):
    expected = sorted(i for c in range(10)
                      for i in np.flatnonzero(fashion_mnist.train_labels == c)[:20])
    np.testing.assert_array_equal(small_data.train_images, fashion_mnist.train_images[expected])
    np.testing.assert_array_equal(small_data.train_labels, fashion_mnist.train_labels[expected])
    assert np.bincount(small_data.test_labels).tolist() == [10] * 10
    assert len(small_data.test_images) == 100
    assert fashion_mnist.subset(None, None).train_images.shape == (60000, 28, 28)
    with pytest.raises(ValueError):
        fashion_mnist.subset(1001, 1001)


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    first = epoch_order(3, 2, 1000)
    np.random.seed(123)  # global RNG state must not matter
    mx.random.seed(123)
    np.testing.assert_array_equal(first, epoch_order(3, 2, 1000))
    assert sorted(first.tolist()) == list(range(1000))
    assert not np.array_equal(first, epoch_order(3, 3, 1000))
    assert not np.array_equal(first, epoch_order(4, 2, 1000))


def _collect(**kwargs):
    pairs = list(batches(**kwargs))
    return (np.concatenate([x.asnumpy() for x, _ in pairs]),
            np.concatenate([y.asnumpy() for _, y in pairs]), pairs)


def test_batch_shapes_dtypes_range_and_last_partial_batch(small_data):
    x, y, pairs = _collect(images=small_data.train_images, labels=small_data.train_labels,
                           batch_size=64, size=40)
    assert [len(yb) for _, yb in pairs] == [64, 64, 64, 8]
    for xb, yb in pairs:
        assert isinstance(xb, mx.np.ndarray) and isinstance(yb, mx.np.ndarray)
        assert xb.shape[1:] == (1, 40, 40) and xb.dtype == np.float32
        assert yb.dtype == np.int32 and xb.ctx == mx.cpu()
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    np.testing.assert_array_equal(y, small_data.train_labels)  # seed None: original order


def test_shuffled_batches_follow_epoch_order(small_data):
    _, y, _ = _collect(images=small_data.train_images, labels=small_data.train_labels,
                       batch_size=64, size=28, seed=5, epoch=3)
    np.testing.assert_array_equal(y, small_data.train_labels[epoch_order(5, 3, 200)])


def test_augmentation_is_deterministic_and_a_flip_or_shift(small_data):
    kw = dict(images=small_data.train_images, labels=small_data.train_labels,
              batch_size=64, size=28, seed=5)
    x1, y1, _ = _collect(epoch=2, augment=True, **kw)
    x2, _, _ = _collect(epoch=2, augment=True, **kw)
    x3, _, _ = _collect(epoch=3, augment=True, **kw)
    plain, y0, _ = _collect(epoch=2, **kw)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(x1, x3) and not np.array_equal(x1, plain)
    np.testing.assert_array_equal(y1, y0)  # augmentation never reorders
    originals = small_data.train_images[epoch_order(5, 2, 200)]
    flip, offsets = data.augment_params(5, 2, 200)
    for img, got, f, (dy, dx) in zip(originals, np.rint(x1[:, 0] * 255), flip, offsets):
        crop = np.pad(img, 4)[dy:dy + 28, dx:dx + 28]  # per-image oracle for the gather
        np.testing.assert_array_equal(got, crop[:, ::-1] if f else crop)
    assert 0.3 < flip.mean() < 0.7 and offsets.min() == 0 and offsets.max() == 8


def test_batches_reject_bad_arguments(small_data):
    with pytest.raises(ValueError, match="seed"):
        next(batches(small_data.train_images, small_data.train_labels, 8, augment=True))
    with pytest.raises(ValueError, match="labels"):
        next(batches(small_data.train_images, small_data.train_labels[:5], 8))
