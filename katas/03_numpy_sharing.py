"""Kata 03: NumPy bridges, shared memory and copies.

A tensor and a NumPy array can be two views of the same memory: `torch.from_numpy`,
`torch.as_tensor` and `Tensor.numpy()` share it, so a write on one side shows on the other.
`torch.tensor(...)` and `np.array(tensor)` copy, and so does any change of dtype. `.numpy()`
refuses tensors that require grad or live on a GPU. Knowing which call shares and which copies
decides whether a data pipeline is fast, and whether a stray in-place write corrupts data
somewhere else. Run `dojo` to see which exercise is next and `dojo hint 03` when stuck.
"""

import numpy as np
import torch


def shared_tensor(arr: np.ndarray) -> torch.Tensor:
    """Return a tensor that shares memory with the NumPy array `arr` and keeps its dtype.

    After the call, a write into `arr` must show in the tensor (and a write into the tensor must
    show in `arr`): no copy. A float64 array gives a float64 tensor, an int32 array an int32
    tensor. `torch.tensor(arr)` copies; the `torch.Tensor(arr)` constructor copies *and* turns
    everything into float32; `.float()` on a float64 tensor copies too.
    """
    # TODO: a tensor on the array's own memory, same dtype
    raise NotImplementedError("03_numpy_sharing.shared_tensor is not done yet (stuck? dojo hint 03 shared_tensor)")


def independent_tensor(arr: np.ndarray) -> torch.Tensor:
    """Return a tensor with the values and dtype of `arr` that owns its own memory.

    Later writes into `arr` must not change the tensor, and writes into the tensor must not change
    `arr`. Keep the dtype (float64 stays float64): `torch.Tensor(arr)` copies but gives float32.
    This is what you want when the array's owner will reuse its buffer (a data loader filling
    the same array for every batch).
    """
    # TODO: a tensor copy of the array, same dtype
    raise NotImplementedError("03_numpy_sharing.independent_tensor is not done yet (stuck? dojo hint 03 independent_tensor)")


def float32_tensor(arr: np.ndarray) -> tuple[torch.Tensor, bool]:
    """Return `(t, shares)`: `t` is a float32 tensor of `arr`'s values, and `shares` tells whether
    `t` shares memory with `arr`.

    Copy only when you must, as `torch.as_tensor(arr, dtype=torch.float32)` does: a float32
    array is wrapped without a copy (so its later changes show in `t`), any other dtype is
    converted, and a dtype conversion is always a copy. `torch.tensor(arr, dtype=...)` copies even
    when it need not.

    `shares` must be measured on the result (a Python or NumPy bool), not guessed from what you
    expect the call to do: NumPy has a function that tells whether two arrays overlap in memory,
    and `t.numpy()` gives the array view of a CPU tensor.
    """
    # TODO: (float32 tensor, shares): copy only when the dtype must change
    raise NotImplementedError("03_numpy_sharing.float32_tensor is not done yet (stuck? dojo hint 03 float32_tensor)")


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """Return a NumPy array that shares memory with the CPU tensor `t` (which does not require
    grad).

    A write into the returned array must change `t`, and a write into `t` must show in the array,
    also when `t` is not contiguous (a transposed matrix). Do not copy: `np.array(t)`,
    `t.clone().numpy()` and `t.contiguous().numpy()` (for a non-contiguous `t`) all give an
    array with its own memory, and `t.tolist()` is not an array at all.

    A tensor on a GPU cannot share memory with a NumPy array: when given one, let PyTorch's own TypeError
    ("can't convert cuda:0 device type tensor to numpy...") come out rather than returning a silent copy.
    """
    # TODO: an ndarray on the tensor's own memory
    raise NotImplementedError("03_numpy_sharing.numpy_view is not done yet (stuck? dojo hint 03 numpy_view)")


def to_numpy_safe(t: torch.Tensor) -> np.ndarray:
    """Return a NumPy array with the values, shape and dtype of any tensor `t`.

    `t` may require grad (a model's weight, or a loss with a `grad_fn`) and may live on a GPU.
    Plain `t.numpy()` raises in both cases: RuntimeError "Can't call numpy() on Tensor that
    requires grad", and TypeError "can't convert cuda:0 device type tensor to numpy" on a GPU.
    This is the conversion for logging, plotting and metrics from a training loop.
    """
    # TODO: any tensor (requires grad, on a GPU) -> ndarray
    raise NotImplementedError("03_numpy_sharing.to_numpy_safe is not done yet (stuck? dojo hint 03 to_numpy_safe)")


def flip_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """Return a tensor with the values, shape and dtype of `arr`, an array that `np.flip` (or a
    `[::-1]` slice) has reversed along some axis.

    `np.flip` returns a view that walks memory backwards: one of its strides is negative. Torch
    tensors only have non-negative strides, so no tensor can describe that view, and
    `torch.from_numpy`, `torch.as_tensor` and even `torch.tensor` refuse it with
    ValueError "At least one stride in the given numpy array is negative...". A copy is
    unavoidable: the values have to be laid out again in forward order before a tensor can hold
    them. Keep the dtype (`torch.tensor(arr.tolist())` turns float64 into float32).
    """
    # TODO: a negatively strided (flipped) array -> tensor, same dtype
    raise NotImplementedError("03_numpy_sharing.flip_to_tensor is not done yet (stuck? dojo hint 03 flip_to_tensor)")
