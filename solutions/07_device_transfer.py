"""Kata 07: moving data between devices.

A tensor lives on one device (the CPU, a CUDA GPU, Apple's MPS), and an operation runs only on
tensors of one device. Most "it worked on my laptop" bugs are device bugs, and on a machine
without a GPU most of them stay hidden: a move whose result went nowhere, a weight that stopped
being trainable when it was moved, a GPU tensor handed to NumPy, a checkpoint that only opens on
a GPU machine, a timing that measured how fast work was queued rather than how long it took. Run
`dojo` to see which exercise is next and `dojo hint 07` when stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def pick_device() -> torch.device:
    """Return the best device available here, as a device object (not a string): CUDA if PyTorch
    reports it available, else Apple's MPS if PyTorch reports that available, else the CPU.

    Ask exactly PyTorch's two availability checks, `torch.cuda.is_available()` and
    `torch.backends.mps.is_available()`, CUDA first: the tests pretend each accelerator is
    present or absent through them. The result's `.type` is "cuda", "mps" or "cpu" (an index
    such as cuda:0 is allowed).

    The trap, by its symptom: a string such as "cuda" looks the same in a print, but code
    downstream that compares devices or reads `.type` from it fails.
    """
    # BEGIN SOLUTION
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
    # END SOLUTION


def move_and_cast(x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return the values of `x` on `device` with the given `dtype` (e.g. integer pixels -> float32
    on the GPU): a tensor of x's shape whose values are x's, converted to `dtype` as a cast does.

    `x` may be on any device, with any layout (a transposed view, say). The caller's `x` stays as
    it was: its device, its dtype and its values.

    The trap, by its symptom: the function returns a tensor still on x's old device, or with its
    old dtype, although a move or a cast was written: an operation that returns a new tensor
    leaves the one it was called on alone.
    """
    # BEGIN SOLUTION
    # One call does both: a single copy instead of a copy to the device and a second one to cast.
    return x.to(device=device, dtype=dtype)
    # END SOLUTION


def normalize_batch(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Return `(x - mean) / std` for a batch `x` of shape (N, C) and per-channel statistics
    `mean` and `std` of shape (C,): row n, channel c of the result is
    (x[n, c] - mean[c]) / std[c].

    `x` may live on any device (a CUDA GPU, or "meta" in the tests); `mean` and `std` were
    computed once and live on the CPU. The result is on x's device, and the batch is never
    copied off it: the work happens where the batch is. The caller's `x`, `mean` and `std` keep
    their values and devices.

    The trap, by its symptom: "RuntimeError: Expected all tensors to be on the same device, but
    found at least two devices, cuda:0 and cpu!" as soon as the batch is on a GPU; or a result
    that comes back on the CPU.
    """
    # BEGIN SOLUTION
    # x.device, not a device picked elsewhere: the function then works wherever its input lives.
    mean = mean.to(x.device)
    std = std.to(x.device)
    return (x - mean) / std
    # END SOLUTION


def new_weight(shape: tuple[int, ...], std: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return a new trainable weight: a tensor of the given `shape`, `device` and `dtype` whose
    values are drawn (from the global random generator) from a normal distribution of mean 0 and
    standard deviation `std`.

    It requires grad and is a *leaf*: a backward pass through any loss computed from it fills
    its `.grad`, and an optimizer given it can update it.

    The trap, by its symptom: a tensor with the right values, device, dtype and
    `requires_grad=True`, whose `.grad` stays None after backward (so the "trained" weight never
    changes): the gradient went to another tensor, one that was not returned. On the CPU a move
    to "cpu" or a cast to float32 changes nothing and can hide the mistake; the tests also ask
    for float64 and for the "meta" device.
    """
    # BEGIN SOLUTION
    # Created directly on the device with its final dtype: no copy, nothing recorded by autograd.
    w = torch.randn(shape, device=device, dtype=dtype) * std
    # requires_grad_() after the arithmetic: w is a result with no history, so it becomes a leaf.
    return w.requires_grad_()
    # END SOLUTION


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Return the values of `t` as a NumPy array of the same shape and dtype, whatever device `t`
    is on and whether or not it requires grad (a model's output usually does both); a 0-d tensor
    gives a 0-d array.

    The caller's `t` stays as it was: on its device, requiring grad if it did, part of its graph.

    The traps, by their symptoms: NumPy only knows host memory, so a GPU tensor raises "TypeError:
    can't convert cuda:0 device type tensor to numpy"; and NumPy knows nothing of autograd, so a
    tensor that requires grad raises "RuntimeError: Can't call numpy() on Tensor that requires
    grad".
    """
    # BEGIN SOLUTION
    # detach: leave the autograd graph; cpu: copy to host memory (a no-op for a CPU tensor).
    return t.detach().cpu().numpy()
    # END SOLUTION


def batch_to_device(batch: Any, device: torch.device) -> Any:
    """Return a copy of `batch` with every tensor in it moved to `device`.

    A batch from a DataLoader is often nested: a tuple, list or dict whose items are tensors,
    non-tensors (file names, ids, None) or more tuples, lists and dicts. Keep the structure: a
    tuple stays a tuple, a list a list, a dict keeps its keys in their order; non-tensors are
    returned as they are (the same objects); values and dtypes do not change; the caller's
    `batch` and everything in it stay as they were.

    Move each tensor with `Tensor.to`, and let the host go on without waiting for the copy
    (`non_blocking=True`) exactly when that tensor is in pinned (page-locked) memory: such a copy
    can overlap with GPU work, while asking it of ordinary memory gets a synchronous copy anyway
    and only misleads the reader. Decide per tensor: a batch can mix both.
    """
    # BEGIN SOLUTION
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned())
    # Build new containers: assigning into the caller's dict or list would change their batch.
    if isinstance(batch, dict):
        return {key: batch_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(batch_to_device(item, device) for item in batch)
    if isinstance(batch, list):
        return [batch_to_device(item, device) for item in batch]
    return batch
    # END SOLUTION


def load_to_cpu(path: str) -> Any:
    """Load the checkpoint that `torch.save` wrote at `path` and return what was saved, with every
    tensor in it on the CPU, but only if it holds plain data (tensors, numbers, strings, lists,
    dicts...).

    A checkpoint remembers the device each tensor was saved from; loading one saved on a GPU
    machine puts its tensors back on the GPU, or fails where there is none: "RuntimeError:
    Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False."
    Unpickling can run arbitrary code: a checkpoint that holds anything but plain data is
    refused, with the `pickle.UnpicklingError` PyTorch raises for it ("Weights only load
    failed..."), before any of its code runs.
    """
    # BEGIN SOLUTION
    # map_location rewrites every storage's device while loading: no GPU memory is touched.
    # weights_only=True (the default since torch 2.6) is spelled out: it is the security choice.
    return torch.load(path, map_location="cpu", weights_only=True)
    # END SOLUTION


def time_on_device(fn: Callable[[], Any], device: torch.device) -> float:
    """Call `fn()` exactly once and return how long its work took on `device`, in seconds, as a
    float: from the moment the device has finished everything queued before the call, to the
    moment it has finished the work `fn` gave it.

    On a CUDA device kernels run asynchronously: `fn()` returns as soon as its work is *queued*,
    and the GPU may still be busy with work queued earlier. On any other device the work is
    done when `fn()` returns; there the function must not touch CUDA at all (it runs on
    machines without CUDA, where CUDA calls raise).

    The traps, by their symptoms: a CUDA timing of microseconds for work that takes
    milliseconds (the launch was timed, not the work); a timing that includes work queued
    before the call; a result in milliseconds.
    """
    # BEGIN SOLUTION
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()  # finish work queued before us
    start = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()  # wait for fn's kernels to finish, not only to be launched
    return time.perf_counter() - start
    # END SOLUTION
