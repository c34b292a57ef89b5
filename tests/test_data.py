"Tests of wdim_nb.data: loading, formats, errors, batching and augmentation."
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from wdim_nb.data import (AUGMENTATIONS, DATASETS, CorruptFileError, DatasetNotFoundError, ImageDataset,
                          augment_images, batches, center_crop, get_dataset, num_batches, random_crop, random_flip,
                          read_idx, to_float, write_fake)

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def test_to_float_range_and_dtype():
    x = torch.arange(256, dtype=torch.uint8)
    y = to_float(x)
    assert y.dtype == torch.float32 and y[0] == -1 and y[-1] == 1
    assert (y.double() - (x.double() / 127.5 - 1)).abs().max() < 1e-6
    with pytest.raises(TypeError, match="uint8"): to_float(x.float())


def test_image_dataset_checks_and_to():
    ds = ImageDataset(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, -1]), ["a", "b"], "t", "train")
    assert ds.shape == (1, 4, 4) and len(ds) == 3 and ds.labels.dtype == torch.int64
    assert ds.to("cpu") is ds and len(ds.subset(slice(0, 2))) == 2
    with pytest.raises(TypeError): ImageDataset(torch.zeros(3, 1, 4, 4), torch.zeros(3))
    with pytest.raises(ValueError): ImageDataset(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.zeros(2))


@pytest.mark.parametrize("name,k", [("cifar10", 10), ("cifar100", 100), ("stl10", 10)])
def test_torchvision_formats_roundtrip(tmp_path, name, k):
    write_fake(name, tmp_path, n=5, seed=1)
    for split in DATASETS[name]:
        ds = get_dataset(name, split, tmp_path, verify=False, download=False)
        side = 96 if name == "stl10" else 32
        assert ds.shape == (3, side, side) and ds.images.dtype == torch.uint8
        expected = 25 if (name == "cifar10" and split == "train") else 5
        assert len(ds) == expected
        if split == "unlabeled": assert (ds.labels == -1).all()
        else: assert ds.labels.min() >= 0 and ds.labels.max() < k
        assert len(ds.classes) == k


def test_cifar_pixel_layout(tmp_path):
    # torchvision's layout: row of 3072 bytes = R plane, G plane, B plane, each row-major 32x32
    folder = write_fake("cifar10", tmp_path, n=2)
    data = np.zeros((2, 3072), np.uint8); data[0, 1024 + 32 * 2 + 5] = 200  # green channel, row 2, column 5
    (folder / "test_batch").write_bytes(pickle.dumps({"data": data, "labels": [3, 4]}))
    ds = get_dataset("cifar10", "test", tmp_path, verify=False)
    assert ds.images[0, 1, 2, 5] == 200 and ds.images.sum() == 200 and ds.labels.tolist() == [3, 4]


def test_stl10_column_major_and_one_based_labels(tmp_path):
    folder = write_fake("stl10", tmp_path, n=1)
    x = np.zeros((1, 3, 96, 96), np.uint8); x[0, 2, 7, 3] = 9  # stored as [n, C, W, H]: column 7, row 3
    x.tofile(folder / "test_X.bin"); np.array([10], np.uint8).tofile(folder / "test_y.bin")
    ds = get_dataset("stl10", "test", tmp_path, verify=False)
    assert ds.images[0, 2, 3, 7] == 9 and ds.labels.tolist() == [9] and ds.classes[9] == "c9"


def test_n_option_keeps_first_images(tmp_path):
    write_fake("stl10", tmp_path, n=5)
    full = get_dataset("stl10", "unlabeled", tmp_path, verify=False)
    part = get_dataset("stl10", "unlabeled", tmp_path, verify=False, n=2)
    assert torch.equal(part.images, full.images[:2])


def test_missing_without_network_is_one_clear_error(tmp_path):
    for name in ("cifar10", "cifar100", "stl10", "mnist"):
        with pytest.raises(DatasetNotFoundError) as e:
            get_dataset(name, "train", tmp_path / "nothing", download=False)
        msg = str(e.value)
        assert name in msg and str(tmp_path / "nothing") in msg and "To provide it" in msg
        assert isinstance(e.value, FileNotFoundError)


def test_md5_mismatch_names_the_file(tmp_path):
    write_fake("cifar100", tmp_path, n=2)
    with pytest.raises(CorruptFileError, match="cifar-100-python/test"):
        get_dataset("cifar100", "test", tmp_path, verify=True)


@pytest.mark.parametrize("name,file,cut", [("cifar10", "test_batch", 50), ("stl10", "train_X.bin", 7),
                                           ("stl10", "train_y.bin", 1), ("mnist", "t10k-images-idx3-ubyte", 3)])
def test_truncated_file_names_the_file(tmp_path, name, file, cut):
    folder = write_fake(name, tmp_path, n=4)
    p = folder / file; p.write_bytes(p.read_bytes()[:-cut])
    split = "test" if "test" in file or "t10k" in file else "train"
    with pytest.raises(CorruptFileError, match=file):
        get_dataset(name, split, tmp_path, verify=False, download=False)


def test_idx_reader_gz_and_bad_magic(tmp_path):
    import gzip
    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    blob = bytes([0, 0, 8, 3]) + b"".join(int(s).to_bytes(4, "big") for s in x.shape) + x.tobytes()
    (tmp_path / "a.gz").write_bytes(gzip.compress(blob))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), x)
    (tmp_path / "b").write_bytes(b"\x01\x02" + blob[2:])
    with pytest.raises(CorruptFileError, match="magic"): read_idx(tmp_path / "b")


@pytest.mark.skipif(not FMNIST.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_files(tmp_path):
    ds = get_dataset("fashion_mnist", "test", tmp_path, download=False)  # empty data_dir: must use /usr/share
    assert len(ds) == 10_000 and ds.shape == (1, 28, 28)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10 and ds.classes[9] == "Ankle boot"
    assert 0.2 < ds.images.float().mean().item() / 255 < 0.4


def test_bad_names_options():
    with pytest.raises(ValueError, match="cifar10"): get_dataset("imagenet")
    with pytest.raises(ValueError, match="unlabeled"): get_dataset("stl10", "validation")
    with pytest.raises(TypeError, match="n_classes"): get_dataset("synthetic", colours=3)


def test_digits_and_synthetic():
    tr, te = get_dataset("digits", "train"), get_dataset("digits", "test")
    assert (len(tr), len(te), tr.shape) == (1437, 360, (1, 8, 8)) and tr.images.max() == 255
    assert get_dataset("digits", "test", size=32).shape == (1, 32, 32)
    a = get_dataset("synthetic", n=40, shape=(3, 16, 12), n_classes=4, seed=5)
    b = get_dataset("synthetic", n=40, shape=(3, 16, 12), n_classes=4, seed=5)
    assert a.shape == (3, 16, 12) and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    # class structure: nearest class mean of train classifies test far above chance (0.25)
    te = get_dataset("synthetic", "test", n=40, shape=(3, 16, 12), n_classes=4, seed=5)
    means = torch.stack([to_float(a.images[a.labels == k]).mean(0).flatten() for k in range(4)])
    pred = torch.cdist(to_float(te.images).flatten(1), means).argmin(1)
    assert (pred == te.labels).float().mean() > 0.9


def test_batches_deterministic_resume_and_cover():
    ds = get_dataset("synthetic", n=70, shape=(1, 8, 8))
    full = list(batches(ds, 16, seed=3, epoch=1, augment="crop_flip"))
    assert len(full) == num_batches(ds, 16) == 4
    again = list(batches(ds, 16, seed=3, epoch=1, augment="crop_flip"))
    resumed = list(batches(ds, 16, seed=3, epoch=1, start=2, augment="crop_flip"))
    for (x1, y1), (x2, y2) in zip(full, again): assert torch.equal(x1, x2) and torch.equal(y1, y2)
    for (x1, y1), (x2, y2) in zip(full[2:], resumed): assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other = list(batches(ds, 16, seed=4, epoch=1))
    assert not torch.equal(other[0][1], full[0][1])
    # without augmentation and with drop_last=False an epoch is a permutation of the dataset
    xs = torch.cat([x for x, _ in batches(ds, 16, seed=0, drop_last=False)])
    assert len(xs) == 70
    assert torch.equal(xs.flatten(1).sort(0).values, to_float(ds.images).flatten(1).sort(0).values)
    with pytest.raises(ValueError, match="crop_flip"): next(batches(ds, 4, augment="cutout"))


def test_augmentations():
    x = torch.randint(0, 256, (8, 3, 96, 96), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    assert augment_images(x, "crop64_flip", generator=g).shape == (8, 3, 64, 64)
    assert torch.equal(augment_images(x, "center64"), x[..., 16:80, 16:80])
    assert torch.equal(center_crop(x, 96), x)
    c = random_crop(x[:, :, :32, :32], 32, padding=4, generator=g)
    assert c.shape == (8, 3, 32, 32) and c.dtype == torch.uint8
    assert torch.equal(random_flip(x, p=0.0), x) and torch.equal(random_flip(x, p=1.0), x.flip(-1))
    # crops vary across the batch, every crop is a window of the padded image
    xp = torch.nn.functional.pad(x[:, :, :32, :32], (4,) * 4)
    for b in range(8):
        assert any(torch.equal(c[b], xp[b, :, i:i + 32, j:j + 32]) for i in range(9) for j in range(9))
    assert set(AUGMENTATIONS) >= {"none", "flip", "crop_flip", "crop64_flip", "center64"}
    with pytest.raises(ValueError): random_crop(x, 100)


def test_random_resized_crop_samples_the_window_it_draws():
    "On a ramp image bilinear sampling is exact, so a window of side fraction w has slope w and lies inside the image."
    from wdim_nb.data import random_resized_crop
    W = 28
    ramp = torch.arange(W, dtype=torch.float32).expand(6, 1, W, W).contiguous()   # pixel value = its column
    for a in (0.25, 0.64):
        out = random_resized_crop(ramp, scale=(a, a), ratio=(1, 1), generator=torch.Generator().manual_seed(1))
        w = a ** 0.5
        inner = out[..., 2:-2, 2:-2]
        torch.testing.assert_close(inner.diff(dim=-1), torch.full_like(inner[..., 1:], w), atol=1e-4, rtol=0)
        assert torch.allclose(inner.diff(dim=-2), torch.zeros(()), atol=1e-5)   # no shear, no rotation
        left = out[:, 0, 0, 2] - 2.5 * w   # the window's left edge, in the pixel coordinates of the image (edges at +-0.5)
        assert (left >= -0.5 - 1e-4).all() and (left + W * w <= W - 0.5 + 1e-4).all() and left.unique().numel() > 1
    x = torch.randint(0, 256, (4, 1, W, W), dtype=torch.uint8)
    assert torch.equal(random_resized_crop(x, scale=(1, 1), ratio=(1, 1)), x)   # the whole image: unchanged
    y = augment_images(x, "resized_crop_flip", generator=torch.Generator().manual_seed(0))
    assert y.dtype == torch.uint8 and y.shape == x.shape and not torch.equal(y, x)


def test_view_shape_draws_nothing_from_the_global_stream():
    "train.ipynb seeds, asks for the view's shape, then builds the untrained network: it must be the trained one's init."
    from wdim_nb.data import view_shape
    for aug in AUGMENTATIONS:
        torch.manual_seed(0); expected = torch.rand(3)
        torch.manual_seed(0); view_shape((3, 96, 96), aug)
        assert torch.equal(torch.rand(3), expected), aug


def test_corrupt_gzip_names_the_file_and_remedy(tmp_path):
    "zlib's raw `Error -3 while decompressing data` named no file; it must say which one and what to do."
    import gzip, zlib
    folder = write_fake("mnist", tmp_path, n=50)
    p = folder / "t10k-images-idx3-ubyte"
    z = bytearray(gzip.compress(p.read_bytes(), mtime=0)); p.unlink()
    z[10] = 0xFF                                            # first deflate byte: an invalid block type (zlib Error -3)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(z))
    with pytest.raises(CorruptFileError, match="t10k-images-idx3-ubyte.gz.*delete it and provide it again") as e:
        get_dataset("mnist", "test", tmp_path, download=False)
    assert isinstance(e.value.__cause__, zlib.error)


@pytest.mark.parametrize("n", [-5, 0, 2.5, True])
def test_n_must_be_positive_whole_number(tmp_path, n):
    write_fake("mnist", tmp_path, n=6)
    for name, where in (("mnist", tmp_path), ("synthetic", None), ("digits", None)):
        with pytest.raises(ValueError, match="must be a whole number >= 1"):
            get_dataset(name, "train", where or "data", n=n, download=False)
