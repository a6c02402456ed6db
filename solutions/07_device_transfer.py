"""Kata 07: moving data between devices.

A tensor lives on one device (the CPU, a CUDA GPU, Apple's MPS), and an operation runs only on
tensors of one device. Most "it worked on my laptop" bugs are device bugs: a `.to()` whose result
was thrown away, a weight that stopped being a leaf when it was moved, `.numpy()` on a GPU tensor,
a checkpoint that only opens on a GPU machine, a timing that measured a kernel launch instead of
the kernel. Run `dojo` to see which exercise is next and `dojo hint 07` when stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def pick_device() -> torch.device:
    """Return the best device available here, as a `torch.device`: CUDA if
    `torch.cuda.is_available()`, else MPS (Apple GPU) if `torch.backends.mps.is_available()`,
    else the CPU.

    Return a `torch.device`, not the string "cuda": code downstream compares devices and reads
    `device.type`. Ask exactly those two functions (the tests pretend each accelerator is
    present or absent through them), CUDA first.
    """
    # BEGIN SOLUTION
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
    # END SOLUTION


def move_and_cast(x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return `x` on `device` with the given `dtype` (e.g. integer pixels -> float32 on the GPU).

    `Tensor.to` never changes the tensor it is called on: it *returns* a tensor (a new one, or
    `x` itself when nothing had to change). `x.to(device); return x` throws the moved tensor
    away. The caller's `x` must stay as it was.
    """
    # BEGIN SOLUTION
    # One call does both: a single copy instead of a copy to the device and a second one to cast.
    return x.to(device=device, dtype=dtype)
    # END SOLUTION


def normalize_batch(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Return `(x - mean) / std` for a batch `x` of shape (N, C) and per-channel statistics
    `mean` and `std` of shape (C,).

    `x` may live on any device; `mean` and `std` were computed once on the CPU. An operation
    on a CUDA tensor and a CPU tensor fails with "RuntimeError: Expected all tensors to be on
    the same device, but found at least two devices, cuda:0 and cpu!". Move the small
    statistics to `x`'s device (not the big batch to the CPU): the result must be on `x`'s
    device.
    """
    # BEGIN SOLUTION
    # x.device, not a device picked elsewhere: the function then works wherever its input lives.
    mean = mean.to(x.device)
    std = std.to(x.device)
    return (x - mean) / std
    # END SOLUTION


def new_weight(shape: tuple[int, ...], std: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return a trainable weight: a tensor of the given `shape`, `device` and `dtype` with values
    drawn from a normal distribution of mean 0 and standard deviation `std`, that requires grad
    and is a *leaf* (so `backward()` fills its `.grad` and an optimizer can update it).

    Only tensors created by the user are leaves. `torch.randn(..., requires_grad=True).to(device)`
    and `torch.randn(..., requires_grad=True) * std` are results of an operation: not leaves, so
    their `.grad` stays None and the "trained" weight never changes. Create the tensor where it
    will live, scale it, and only then ask for gradients.
    """
    # BEGIN SOLUTION
    # Created directly on the device with its final dtype: no copy, nothing recorded by autograd.
    w = torch.randn(shape, device=device, dtype=dtype) * std
    # requires_grad_() after the arithmetic: w is a result with no history, so it becomes a leaf.
    return w.requires_grad_()
    # END SOLUTION


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Return the values of `t` as a NumPy array (same shape and dtype), whatever device `t` is
    on and whether or not it requires grad (a model's output usually does both).

    NumPy only knows host memory: `.numpy()` of a CUDA tensor raises "TypeError: can't convert
    cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory
    first.", and of a tensor that requires grad "RuntimeError: Can't call numpy() on Tensor
    that requires grad. Use tensor.detach().numpy() instead.".
    """
    # BEGIN SOLUTION
    # detach: leave the autograd graph; cpu: copy to host memory (a no-op for a CPU tensor).
    return t.detach().cpu().numpy()
    # END SOLUTION


def batch_to_device(batch: Any, device: torch.device) -> Any:
    """Return a copy of `batch` with every tensor in it moved to `device`.

    A batch from a DataLoader is often nested: a tuple, list or dict whose items are tensors,
    non-tensors (file names, ids, None) or more tuples, lists and dicts. Keep the structure:
    a tuple stays a tuple, a list a list, a dict keeps its keys; non-tensors are returned as
    they are (the same objects); dtypes do not change; the caller's `batch` is not modified.

    Move each tensor with `Tensor.to`, passing `non_blocking=True` only for a tensor whose
    `is_pinned()` is true: a copy from pinned (page-locked) memory can run asynchronously,
    overlapped with GPU work; from ordinary memory it cannot, and the flag only misleads.
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
    """Load the checkpoint saved with `torch.save` at `path` with every tensor on the CPU, and
    only if it holds plain data (tensors, numbers, strings, lists, dicts...).

    A checkpoint remembers the device each tensor was saved from; loading one saved on a GPU
    machine puts its tensors back on the GPU, or fails where there is none: "RuntimeError:
    Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False."
    Unpickling can run arbitrary code: refuse anything but plain data (PyTorch then raises
    `pickle.UnpicklingError`, "Weights only load failed..."; let it propagate).
    """
    # BEGIN SOLUTION
    # map_location rewrites every storage's device while loading: no GPU memory is touched.
    # weights_only=True (the default since torch 2.6) is spelled out: it is the security choice.
    return torch.load(path, map_location="cpu", weights_only=True)
    # END SOLUTION


def time_on_device(fn: Callable[[], Any], device: torch.device) -> float:
    """Call `fn()` once and return how long its work took on `device`, in seconds (a float).

    CUDA kernels run asynchronously: `fn()` returns as soon as its kernels are *queued*, so a
    host clock read right after it measures almost nothing. For a CUDA device, call
    `torch.cuda.synchronize()` before starting the clock (so work queued earlier is not
    counted) and again before stopping it (so `fn`'s own work is); read the clock with
    `time.perf_counter()`. (CUDA events, `torch.cuda.Event(enable_timing=True)` recorded
    around `fn()`, are the other correct way: wait for the end event, and note that
    `elapsed_time` is in milliseconds.) For any other device no synchronization is needed,
    and on a machine without CUDA the CUDA calls raise.
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
