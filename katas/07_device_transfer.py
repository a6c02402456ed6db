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
    # TODO: CUDA, else MPS, else CPU, as a torch.device
    raise NotImplementedError("07_device_transfer.pick_device is not done yet (stuck? dojo hint 07 pick_device)")


def move_and_cast(x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return `x` on `device` with the given `dtype` (e.g. integer pixels -> float32 on the GPU).

    `Tensor.to` never changes the tensor it is called on: it *returns* a tensor (a new one, or
    `x` itself when nothing had to change). `x.to(device); return x` throws the moved tensor
    away. The caller's `x` must stay as it was.
    """
    # TODO: x on another device with another dtype, without losing the result
    raise NotImplementedError("07_device_transfer.move_and_cast is not done yet (stuck? dojo hint 07 move_and_cast)")


def normalize_batch(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Return `(x - mean) / std` for a batch `x` of shape (N, C) and per-channel statistics
    `mean` and `std` of shape (C,).

    `x` may live on any device; `mean` and `std` were computed once on the CPU. An operation
    on a CUDA tensor and a CPU tensor fails with "RuntimeError: Expected all tensors to be on
    the same device, but found at least two devices, cuda:0 and cpu!". Move the small
    statistics to `x`'s device (not the big batch to the CPU): the result must be on `x`'s
    device.
    """
    # TODO: (x - mean) / std with the statistics moved to x's device
    raise NotImplementedError("07_device_transfer.normalize_batch is not done yet (stuck? dojo hint 07 normalize_batch)")


def new_weight(shape: tuple[int, ...], std: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Return a trainable weight: a tensor of the given `shape`, `device` and `dtype` with values
    drawn from a normal distribution of mean 0 and standard deviation `std`, that requires grad
    and is a *leaf* (so `backward()` fills its `.grad` and an optimizer can update it).

    Only tensors created by the user are leaves. `torch.randn(..., requires_grad=True).to(device)`
    and `torch.randn(..., requires_grad=True) * std` are results of an operation: not leaves, so
    their `.grad` stays None and the "trained" weight never changes. Create the tensor where it
    will live, scale it, and only then ask for gradients.
    """
    # TODO: a trainable leaf tensor created on its device, scaled by std
    raise NotImplementedError("07_device_transfer.new_weight is not done yet (stuck? dojo hint 07 new_weight)")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Return the values of `t` as a NumPy array (same shape and dtype), whatever device `t` is
    on and whether or not it requires grad (a model's output usually does both).

    NumPy only knows host memory: `.numpy()` of a CUDA tensor raises "TypeError: can't convert
    cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory
    first.", and of a tensor that requires grad "RuntimeError: Can't call numpy() on Tensor
    that requires grad. Use tensor.detach().numpy() instead.".
    """
    # TODO: a NumPy array from a tensor on any device that may require grad
    raise NotImplementedError("07_device_transfer.to_numpy is not done yet (stuck? dojo hint 07 to_numpy)")


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
    # TODO: move every tensor of a nested tuple/list/dict batch, non_blocking only if pinned
    raise NotImplementedError("07_device_transfer.batch_to_device is not done yet (stuck? dojo hint 07 batch_to_device)")


def load_to_cpu(path: str) -> Any:
    """Load the checkpoint saved with `torch.save` at `path` with every tensor on the CPU, and
    only if it holds plain data (tensors, numbers, strings, lists, dicts...).

    A checkpoint remembers the device each tensor was saved from; loading one saved on a GPU
    machine puts its tensors back on the GPU, or fails where there is none: "RuntimeError:
    Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False."
    Unpickling can run arbitrary code: refuse anything but plain data (PyTorch then raises
    `pickle.UnpicklingError`, "Weights only load failed..."; let it propagate).
    """
    # TODO: torch.load a checkpoint saved on a GPU onto the CPU, plain data only
    raise NotImplementedError("07_device_transfer.load_to_cpu is not done yet (stuck? dojo hint 07 load_to_cpu)")


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
    # TODO: time a call's GPU work: synchronize before and after reading the clock
    raise NotImplementedError("07_device_transfer.time_on_device is not done yet (stuck? dojo hint 07 time_on_device)")
