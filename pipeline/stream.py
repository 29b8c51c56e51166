"""Where training batches come from: a seeded stream of simulated spectra, or a fixed set.

Both sources answer :meth:`batches` with ``(x, y)`` pairs of normalised ``(B, 1, L)`` float32
tensors (:func:`to_tensors`), starting at a given count of spectra already consumed, so a
resumed run picks up exactly where it stopped.

:class:`SimulatedStream`
    Fresh spectra for every step. The stream is cut into blocks of :data:`BLOCK` spectra;
    block ``k`` is ``simulate(params, BLOCK, seed=block_seed(seed, k))``, its seed derived
    from the training seed and the block index alone (numpy ``SeedSequence`` with spawn key
    ``(k,)``, the documented way to independent child streams). Blocks are simulated by
    ``workers`` processes of a torch ``DataLoader`` (worker ``w`` of ``W`` makes blocks
    ``w, w + W, ...``; the loader hands them over in round-robin order, so the main process
    sees blocks ``0, 1, 2, ...``) with ``prefetch`` blocks queued per worker, or in-process
    when ``workers`` is 0. The sequence of spectra therefore depends on the simulation params
    and the seed only, not on the worker count or the batch size. Under DDP, rank ``r`` of ``W``
    makes blocks ``r, r + W, ...`` and the ranks exchange them
    (:func:`pipeline.distributed.shared_batches`): the same sequence again.
:class:`FixedSet`
    In-memory tensors (fine-tuning's real + replayed spectra), in passes: pass ``p`` visits
    them in the order of the ``p + 1``-th ``randperm`` of a generator seeded with ``seed``
    (as the epoch loop before the stream did), the last batch of a pass possibly shorter.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator

import numpy as np
import torch

from pipeline.config import SimulateParams, to_dict
from pipeline.normalise import normalise
from pipeline.simulate import simulate

BLOCK = 512  # spectra per simulate() call, each block with its own derived seed
Batch = tuple[torch.Tensor, torch.Tensor]


def to_tensors(observed: np.ndarray, baseline: np.ndarray, normalisation: str = "minmax") -> Batch:
    """Normalised ``(N, 1, L)`` inputs and targets, with the shared normalisation step.

    ``observed`` and ``baseline`` are ``(N, L)`` in raw units; the target is the baseline
    in the linear units of the normalised input (:func:`pipeline.normalise.normalise` with
    the model's ``normalisation``, ``model.normalisation``).
    """
    x, low, span = normalise(observed, normalisation)
    target = ((baseline - low) / span).astype(np.float32)
    return torch.from_numpy(x[:, None, :]), torch.from_numpy(target[:, None, :])


def block_seed(seed: int, block: int) -> int:
    """The simulator seed of block ``block`` of the stream seeded ``seed``."""
    sequence = np.random.SeedSequence(seed, spawn_key=(block,))
    return int(sequence.generate_state(1, np.uint64)[0])


def simulated_block(
    params: SimulateParams,
    seed: int,
    block: int,
    size: int = BLOCK,
    normalisation: str = "minmax",
) -> Batch:
    """Block ``block`` of the stream: ``size`` spectra, scaled by ``normalisation``."""
    spectra = simulate(params, size, block_seed(seed, block))
    return to_tensors(spectra.observed, spectra.baseline, normalisation)


class _Blocks(torch.utils.data.IterableDataset):
    """Blocks ``first, first + stride, ...`` of the stream, shared out among loader workers."""

    def __init__(
        self,
        params: SimulateParams,
        seed: int,
        first: int,
        block: int,
        normalisation: str,
        stride: int = 1,
    ) -> None:
        self.params, self.seed, self.first, self.block = params, seed, first, block
        self.normalisation, self.stride = normalisation, stride

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        if info is not None:
            torch.set_num_threads(1)  # a worker simulates in numpy; leave the cores to training
        step = workers * self.stride
        for k in itertools.count(self.first + worker * self.stride, step):
            yield simulated_block(self.params, self.seed, k, self.block, self.normalisation)


class SimulatedStream:
    """Endless simulated training spectra (see the module's docstring).

    Parameters
    ----------
    params
        The simulator's params (``simulate`` section; its ``n_*`` and ``seed`` are not used).
    seed
        The stream's seed (``train.seed``).
    workers
        Simulation processes; 0 simulates in the training process.
    prefetch
        Blocks queued per worker.
    block
        Spectra per block (changing it changes the stream).
    normalisation
        How the spectra are scaled for the network (``model.normalisation``).
    """

    def __init__(
        self,
        params: SimulateParams,
        seed: int,
        workers: int = 0,
        prefetch: int = 4,
        block: int = BLOCK,
        normalisation: str = "minmax",
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers: expected a value >= 0, got {workers}")
        self.params, self.seed, self.workers = params, seed, workers
        self.prefetch, self.block = prefetch, block
        self.normalisation = normalisation

    def identity(self) -> bytes:
        """What a resume checkpoint must match: simulator params, seed, block size, scaling."""
        return json.dumps(
            ["stream", to_dict(self.params), self.seed, self.block, self.normalisation]
        ).encode()

    def blocks(self, first: int = 0, stride: int = 1) -> Iterator[Batch]:
        """Blocks ``first, first + stride, ...`` in order, from the workers (or in-process).

        ``stride`` > 1: the blocks of one of ``stride`` training processes
        (:func:`pipeline.distributed.shared_batches`).
        """
        dataset = _Blocks(self.params, self.seed, first, self.block, self.normalisation, stride)
        if self.workers == 0:
            return iter(dataset)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=None,  # a block is already a batch of spectra
            num_workers=self.workers,
            prefetch_factor=self.prefetch,
            pin_memory=torch.cuda.is_available(),
        )
        return iter(loader)

    def batches(self, start: int, batch_size: int) -> Iterator[Batch]:
        """Batches of ``batch_size`` spectra, from spectrum ``start`` of the stream on."""
        first, skip = divmod(start, self.block)
        return cut_batches(self.blocks(first), skip, batch_size)


def cut_batches(blocks: Iterator[Batch], skip: int, batch_size: int) -> Iterator[Batch]:
    """The spectra of ``blocks``, the first ``skip`` left out, in batches of ``batch_size``."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    held = 0
    for x, y in blocks:
        if skip:
            x, y, skip = x[skip:], y[skip:], 0
        xs.append(x)
        ys.append(y)
        held += len(x)
        while held >= batch_size:
            x_all = xs[0] if len(xs) == 1 else torch.cat(xs)
            y_all = ys[0] if len(ys) == 1 else torch.cat(ys)
            yield x_all[:batch_size], y_all[:batch_size]
            xs, ys, held = [x_all[batch_size:]], [y_all[batch_size:]], held - batch_size


class FixedSet:
    """Fixed training tensors, visited in seeded random passes (see the module's docstring).

    Parameters
    ----------
    xy
        Inputs and targets, ``(N, 1, L)`` each (:func:`to_tensors`).
    seed
        Seeds the order of every pass.
    """

    def __init__(self, xy: Batch, seed: int) -> None:
        self.x, self.y = xy
        self.seed = seed

    def __len__(self) -> int:
        return len(self.x)

    def identity(self) -> bytes:
        """What a resume checkpoint must match: a digest of the data and the seed."""
        h = hashlib.sha256(self.x[: min(len(self.x), 256)].numpy().tobytes())
        h.update(f"{len(self.x)}:{self.seed}".encode())
        return h.hexdigest().encode()

    def batches(self, start: int, batch_size: int) -> Iterator[Batch]:
        """Batches from spectrum ``start`` of the sequence of passes on, endlessly."""
        shuffle = torch.Generator().manual_seed(self.seed)
        n = len(self.x)
        first, offset = divmod(start, n)
        for p in itertools.count():
            order = torch.randperm(n, generator=shuffle)
            if p < first:
                continue
            for i in range(offset if p == first else 0, n, batch_size):
                idx = order[i : i + batch_size]
                yield self.x[idx], self.y[idx]
