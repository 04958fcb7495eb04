"""Batch iterators over a DataBundle split: ``make_loader``.

Two paths, one contract (batches of normalised float32 images and int64 labels on the
training device, reproducible from (seed, epoch) alone, the same number of batches on
every DDP rank):

* ``TensorSplit`` (synthetic, CIFAR): the whole split is copied to the device once and
  cached on the bundle; each epoch computes the shuffle (and the crop offsets/flips) on
  the CPU from a generator seeded by (seed, epoch), moves those index tensors to the
  device once, and every batch is an ``index_select`` plus one vectorised gather that does
  the random crop and flip: no per-batch host-device copies and no ``.item()`` syncs.
  ``augment="full"`` adds torchvision's AutoAugment (ImageNet policy), which has no batched
  form: it runs per sample on the CPU copy of the split (about 0.5-0.9 ms per 32 px image
  on one core, i.e. 5-9 s per 10k-image epoch -- as much as a vitp_mini epoch on 2 CPU
  cores; on a GPU the device waits for it, so budget for it) and the
  augmented batch is copied to the device, the one per-batch copy of this path.
* ``Dataset`` (imagefolder, or any Dataset yielding (uint8 [3,R,R], label)): a torch
  DataLoader with ``workers`` processes, ``pin_memory`` on CUDA and non-blocking copies.
  The sampler shards like ``DistributedSampler(drop_last=True)`` and reshuffles per epoch
  (``set_epoch`` semantics via the ``epoch`` argument); every sample's random transform is
  seeded from (seed, epoch, position), so the augmentation does not depend on the number
  of workers either.  Unreadable images are replaced (train) or dropped (val), counted,
  and reported with one warning per epoch; the count is ``loader.n_skipped``.
  ``decode="device"`` (the default on CUDA, ``"auto"``) has the workers send JPEG bytes and
  crop boxes instead of pixels, and the batch is decoded and augmented on the device
  (:mod:`bench.data.device_decode`); ``"cpu"`` decodes in the workers (at reduced size, see
  :mod:`bench.data.folder`).

Train split: shuffled, ``drop_last`` (every batch has exactly ``batch_size`` images, which
must be even for mixup/cutmix), sharded by rank.  Val split: in order, no drop, no
augmentation; with ``world_size > 1`` rank r gets samples r, r+W, ... (no padding, so
summing correct counts over ranks gives the exact error).  ``batch_size`` is per rank.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterator

import torch
import torch.nn.functional as F

from bench.core.dataspec import DECODES

from .core import DataBundle, DataError, TensorSplit
from .device_decode import assemble
from .folder import JpegBytes

AUGMENTS = ("none", "light", "full")
_MASK64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """Deterministic 63-bit seed from integers (splitmix64 steps; not Python's hash())."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        z = h
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = z ^ (z >> 31)
    return h >> 1


def crop_pad(resolution: int) -> int:
    """Padding of the light random crop: 4 px at 32 px, scaled with the resolution."""
    return max(1, round(4 * resolution / 32))


def shard_indices(
    n: int, split: str, batch_size: int, *, seed: int, epoch: int, rank: int, world_size: int
) -> torch.Tensor:
    """CPU int64 indices this rank visits this epoch (train: shuffled + drop_last)."""
    if split == "val":
        return torch.arange(rank, n, world_size, dtype=torch.int64)
    g = torch.Generator().manual_seed(mix_seed(seed, epoch, 0x7A11))
    perm = torch.randperm(n, generator=g)
    per_rank = n // world_size
    n_batches = per_rank // batch_size
    if n_batches == 0:
        raise DataError(
            f"train split has {n} images: too few for batch_size {batch_size} per rank "
            f"x world_size {world_size} (one full batch per rank is needed)"
        )
    used = perm[: per_rank * world_size][rank::world_size]
    return used[: n_batches * batch_size].contiguous()


def _check_args(bundle, split, batch_size, augment, rank, world_size, decode) -> None:
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}; got {augment!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if split == "train" and batch_size % 2:
        raise ValueError(f"train batch_size must be even (mixup/cutmix pair samples), got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank} world_size={world_size}")
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {', '.join(DECODES)}; got {decode!r}")
    if not isinstance(bundle, DataBundle):
        raise TypeError(f"expected a DataBundle, got {type(bundle).__name__}")


# AlexNet-style PCA lighting: ImageNet's RGB eigenvalues and eigenvectors (pycls, fb.resnet.torch)
EIG_VALS = (0.2175, 0.0188, 0.0045)
EIG_VECS = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))


class _Normalize:
    """uint8 [B,3,H,W] on device -> normalised float32, as one fused multiply-add; with ``lighting``
    > 0 each image also gets pycls's PCA colour jitter (alpha ~ N(0, lighting) per eigenvector, the
    shift eigvecs @ (alpha x eigvals) added to its [0, 1] pixels), drawn from (seed, epoch, batch)."""

    def __init__(self, mean, std, device, lighting: float = 0.0, seed: int = 0, epoch: int = 0):
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t
        self.lighting, self.seed, self.epoch, self.std = lighting, seed, epoch, std_t.view(1, 3)
        self.basis = torch.tensor(EIG_VECS, dtype=torch.float32) * torch.tensor(EIG_VALS, dtype=torch.float32)

    def __call__(self, x: torch.Tensor, batch: int = 0) -> torch.Tensor:
        out = torch.addcmul(self.shift, x.float(), self.scale)
        if self.lighting:
            g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, batch, 0x119))
            alpha = torch.randn(x.shape[0], 3, generator=g) * self.lighting
            rgb = (alpha @ self.basis.T).to(x.device)  # [B,3]: eigvecs @ (alpha * eigvals) per image
            out = out + (rgb / self.std).view(-1, 3, 1, 1)
        return out


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int) -> torch.Tensor:
    """Batched random crop (zero padding ``pad``) and horizontal flip as one gather.

    x: [B,C,R,R] (any dtype); offsets: int64 [B,2] in [0, 2*pad] (y, x); flips: bool [B].
    """
    b, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = offsets[:, :1] + ar_h  # [B,H]
    cols = torch.where(flips[:, None], offsets[:, 1:] + (w - 1) - ar_w, offsets[:, 1:] + ar_w)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = xp[bi, :, rows[:, :, None], cols[:, None, :]]  # [B,H,W,C]
    return out.permute(0, 3, 1, 2).contiguous()


class TensorLoader:
    """Iterable over one epoch of a TensorSplit; see the module docstring."""

    def __init__(self, bundle: DataBundle, split: str, batch_size: int, *, device, epoch, seed,
                 augment, rank, world_size, lighting=0.0):
        self.bundle, self.split, self.batch_size = bundle, split, batch_size
        self.device = torch.device(device)
        self.epoch, self.seed = epoch, seed
        self.augment = augment if split == "train" else "none"
        self.lighting = lighting if split == "train" else 0.0
        self.n_skipped = 0
        data: TensorSplit = getattr(bundle, split)
        self.indices = shard_indices(len(data), split, batch_size, seed=seed, epoch=epoch,
                                     rank=rank, world_size=world_size)

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dev = self.bundle.on_device(self.split, self.device)
        norm = _Normalize(self.bundle.mean, self.bundle.std, self.device, self.lighting, self.seed, self.epoch)
        n = len(self.indices)
        idx = self.indices.to(self.device)
        if self.augment != "none":
            pad = crop_pad(dev.images.shape[-1])
            g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, 0xA06))
            offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=g).to(self.device)
            flips = (torch.rand(n, generator=g) < 0.5).to(self.device)
        if self.augment == "full":
            from torchvision.transforms import v2

            autoaug = v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)
            host = getattr(self.bundle, self.split)  # the CPU copy
            pin = self.device.type == "cuda"
        for b, start in enumerate(range(0, n, self.batch_size)):
            sl = slice(start, start + self.batch_size)
            ii = idx[sl]
            y = dev.labels.index_select(0, ii)
            if self.augment == "full":
                x = host.images.index_select(0, self.indices[sl])
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(mix_seed(self.seed, self.epoch, b, 0xF011))
                    x = torch.stack([autoaug(img) for img in x])
                if pin:
                    x = x.pin_memory()
                x = x.to(self.device, non_blocking=True)
            else:
                x = dev.images.index_select(0, ii)
            if self.augment != "none":
                x = crop_flip(x, offsets[sl], flips[sl], pad)
            yield norm(x, b), y


class _KeySampler:
    """Yields (index, sample_seed, split, augment, decode) keys for FolderDataset (or plain ints)."""

    def __init__(self, indices: torch.Tensor, seed: int, epoch: int, split: str, augment: str, keyed: bool,
                 decode: str):
        self.indices, self.seed, self.epoch = indices.tolist(), seed, epoch
        self.split, self.augment, self.keyed, self.decode = split, augment, keyed, decode

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        if not self.keyed:
            yield from self.indices
            return
        for pos, i in enumerate(self.indices):
            yield (i, mix_seed(self.seed, self.epoch, pos, 0x5A3), self.split, self.augment, self.decode)


def _collate(items):
    """Items are (uint8 [3,R,R] | JpegBytes | None, label[, bad_path | None]).

    Returns (images, labels, bad paths); images are stacked, or a list when some are JpegBytes.
    """
    imgs, labels, bad = [], [], []
    for item in items:
        img, label = item[0], item[1]
        path = item[2] if len(item) > 2 else None
        if path is not None:
            bad.append(path)
        if img is None:
            continue
        imgs.append(img if isinstance(img, JpegBytes) else torch.as_tensor(img))
        labels.append(int(label))
    if any(isinstance(i, JpegBytes) for i in imgs):
        x = imgs
    elif imgs:
        x = torch.stack(imgs)
    else:
        x = torch.empty((0, 3, 1, 1), dtype=torch.uint8)
    return x, torch.tensor(labels, dtype=torch.int64), bad


class DatasetLoader:
    """Iterable over one epoch of a Dataset split through a torch DataLoader."""

    def __init__(self, bundle: DataBundle, split: str, batch_size: int, *, device, epoch, seed,
                 augment, workers, rank, world_size, decode, lighting=0.0):
        self.bundle, self.split, self.batch_size = bundle, split, batch_size
        self.lighting = lighting if split == "train" else 0.0
        self.device = torch.device(device)
        self.epoch, self.seed, self.workers = epoch, seed, workers
        self.decode = decode if decode != "auto" else ("device" if self.device.type == "cuda" else "cpu")
        self.augment = augment if split == "train" else "none"
        self.dataset = getattr(bundle, split)
        self.indices = shard_indices(len(self.dataset), split, batch_size, seed=seed, epoch=epoch,
                                     rank=rank, world_size=world_size)
        self.n_skipped = 0
        self.skipped_paths: list[str] = []

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        keyed = getattr(self.dataset, "accepts_keys", False)
        sampler = _KeySampler(self.indices, self.seed, self.epoch, self.split, self.augment, keyed, self.decode)
        cuda = self.device.type == "cuda"
        dl = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.workers,
            collate_fn=_collate, pin_memory=cuda, drop_last=False,
            persistent_workers=False, prefetch_factor=4 if self.workers > 0 else None,
        )
        norm = _Normalize(self.bundle.mean, self.bundle.std, self.device, self.lighting, self.seed, self.epoch)
        self.n_skipped, self.skipped_paths = 0, []
        try:
            for b, (x, y, bad) in enumerate(dl):
                if isinstance(x, list):
                    x, y, more = assemble(x, y, self.dataset, self.device, self.bundle.resolution, self.augment)
                    bad = bad + more
                if bad:
                    self.n_skipped += len(bad)
                    self.skipped_paths.extend(bad)
                if len(y) == 0:
                    continue
                x = x.to(self.device, non_blocking=cuda)
                y = y.to(self.device, non_blocking=cuda)
                yield norm(x, b), y
        finally:
            if self.n_skipped:
                record = getattr(self.dataset, "corrupt_files", None)
                if isinstance(record, set):
                    record.update(self.skipped_paths)
                how = "replaced by other images" if self.split == "train" else "left out"
                warnings.warn(
                    f"{self.bundle.name}: {self.n_skipped} unreadable image(s) {how} in the "
                    f"{self.split} split, epoch {self.epoch} (first: {self.skipped_paths[0]})",
                    RuntimeWarning, stacklevel=2,
                )


def make_loader(
    bundle: DataBundle, split: str, batch_size: int, *, device: torch.device, epoch: int, seed: int,
    augment: str = "light", workers: int = 0, rank: int = 0, world_size: int = 1, decode: str = "auto",
    lighting: float = 0.0,
):
    """One epoch of batches ``(x float32 [B,3,R,R] normalised, y int64 [B])`` on ``device``.

    See the module docstring for the exact semantics; the returned object has ``len()``
    (number of batches) and ``n_skipped`` (unreadable images met this epoch). ``lighting``: the std of
    PCA colour jitter on the train split (0: none).
    """
    _check_args(bundle, split, batch_size, augment, rank, world_size, decode)
    data = getattr(bundle, split)
    kw = dict(device=device, epoch=epoch, seed=seed, augment=augment, rank=rank, world_size=world_size,
              lighting=lighting)
    if isinstance(data, TensorSplit):
        return TensorLoader(bundle, split, batch_size, **kw)
    return DatasetLoader(bundle, split, batch_size, workers=workers, decode=decode, **kw)
