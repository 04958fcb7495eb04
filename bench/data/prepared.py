"""``prepared:DIR``: a data set ``bench data prepare`` made (:mod:`bench.prepare` has its layout).

* ``jpeg``: the shards' images, transformed exactly as ``imagefolder``'s (:class:`ShardDataset` is a
  :class:`~bench.data.folder.FolderDataset` whose files are byte ranges of memory-mapped shards): the
  same RandomResizedCrop + flip, resize / centre crop and device decoding, from the smaller images.
* ``raw``: each split's uint8 array, memory-mapped (copy-on-write) as a :class:`TensorSplit`: the
  in-memory path of the synthetic set (random crop + flip on the device, no decoding). It trains at
  the resolution it was prepared at and no other.

The folder is checked against its manifest before anything is read: a missing or torn file, a
manifest of another preparation than the spec's hash, or a file whose checksum is not the recorded
one (every index and label file, and ``manifest.SAMPLED`` shards or arrays drawn at random) is one
DataError naming the file and the command that rebuilds it.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from bench.core import manifest
from bench.core.dataspec import DataError, DataSpec

from .core import DataBundle, TensorSplit, balanced_subset
from .folder import FolderDataset


class ShardDataset(FolderDataset):
    """One split of a jpeg preparation; ``samples`` are ("<shard>@<offset>+<length>", label)."""

    def __init__(self, root: Path, samples: list[tuple[str, int]], resolution: int, split: str):
        super().__init__(samples, resolution, split)
        self.root = root
        self._shards: dict = {}  # shard name -> memmap, opened in the process that reads

    def __getstate__(self):  # DataLoader workers (spawn) reopen the shards
        return {**self.__dict__, "_shards": {}}

    def read(self, i: int) -> bytes:
        shard, _, span = self.samples[i][0].partition("@")
        offset, _, length = span.partition("+")
        if shard not in self._shards:
            self._shards[shard] = np.memmap(self.root / f"{shard}.jpg.bin", dtype=np.uint8, mode="r")
        return self._shards[shard][int(offset):int(offset) + int(length)].tobytes()

    def open(self, i: int):
        return io.BytesIO(self.read(i))


def _subset(n_items: int, labels, n: int | None, seed: int):
    return None if n is None or n >= n_items else balanced_subset(np.asarray(labels), n, seed)


def load_prepared(spec: DataSpec, resolution: int, n_train, n_val, seed) -> DataBundle:
    root = Path(spec.folder)
    problems = manifest.problems(root, spec.digest, depth="sample") if root.is_dir() else [f"prepared: folder {root} does not exist"]
    if problems:
        raise DataError("; ".join(problems))
    m = manifest.read(root)
    splits = {}
    if m["format"] == "raw":
        r = m["params"]["resolution"]
        if resolution != r:
            raise DataError(f"{spec}: prepared as raw arrays at {r} px, so it trains at {r} px, not {resolution} "
                            f"(prepare it with --res {resolution}, or as --format jpeg)")
        for split, n in (("train", n_train), ("val", n_val)):
            images = torch.from_numpy(np.load(root / f"{split}.npy", mmap_mode="c"))
            labels = torch.from_numpy(np.load(root / f"{split}-labels.npy"))
            idx = _subset(len(labels), labels.numpy(), n, seed)
            splits[split] = TensorSplit(images, labels) if idx is None else \
                TensorSplit(images[torch.from_numpy(idx)].contiguous(), labels[torch.from_numpy(idx)].contiguous())
    else:
        for split, n in (("train", n_train), ("val", n_val)):
            samples = []
            for shard in m["splits"][split]["shards"]:
                rows = np.load(root / f"{shard}.idx.npy")
                samples += [(f"{shard}@{o}+{ln}", int(c)) for o, ln, c in rows.tolist()]
            idx = _subset(len(samples), [c for _, c in samples], n, seed)
            if idx is not None:
                samples = [samples[i] for i in idx]
            splits[split] = ShardDataset(root, samples, resolution, split)
    return DataBundle("prepared", len(m["classes"]), resolution, splits["train"], splits["val"],
                      tuple(m["mean"]), tuple(m["std"]), class_names=tuple(m["classes"]))
