"""Kata 03: NumPy bridges, shared memory and copies.

A NumPy array and a CPU tensor are both a description (shape, dtype, strides) laid over a block
of memory, and two descriptions can be laid over the same block. Some ways across the bridge do
exactly that: nothing is copied, the result is free, and a write on one side shows on the other.
Other ways copy the values into new memory: the two sides then live separate lives. Which one you
get is decided by the call you choose and by what the memory can hold: memory has one dtype, so a
change of dtype is always a copy; tensor strides cannot be negative, so a reversed array cannot be
wrapped at all; and NumPy reaches neither a GPU's memory nor the autograd graph. Knowing which way
you crossed decides whether a data pipeline is fast, and whether a stray in-place write corrupts
data somewhere else. Run `dojo` to see which exercise is next and `dojo hint 03` when stuck.
"""

import numpy as np
import torch


def shared_tensor(arr: np.ndarray) -> torch.Tensor:
    """Return a CPU tensor with the shape, dtype and values of the NumPy array `arr`, on `arr`'s
    own memory.

    `arr` has at least one dimension and any layout a tensor can describe: C or Fortran order,
    or a strided view that starts inside a larger array (its strides are not negative). No value
    is copied, for every such layout: a later write into `arr` shows in the tensor, and a write
    into the tensor shows in `arr`. The dtype is kept: a float64 array gives a float64 tensor,
    an int32 array an int32 tensor. The wrong answers print the right numbers: one is a snapshot
    that a later write into `arr` never reaches, another turns every array into float32.
    """
    # BEGIN SOLUTION
    # from_numpy wraps the array's buffer with its strides, without copying; the tensor keeps the
    # array alive.
    return torch.from_numpy(arr)
    # END SOLUTION


def independent_tensor(arr: np.ndarray) -> torch.Tensor:
    """Return a CPU tensor with the shape, dtype and values of `arr` that owns its own memory.

    `arr` is as in `shared_tensor` (at least one dimension, C or Fortran order or a strided view,
    no negative strides). The result and `arr` do not overlap in memory: a later write into
    `arr` leaves the tensor as it was, and a write into the tensor leaves `arr` alone. The dtype
    is kept (float64 stays float64, int32 stays int32); the tensor's own strides are free. This
    is the copy to take when the array's owner reuses its buffer: a data loader that fills the
    same array for every batch would otherwise rewrite the batches it has already handed out.
    """
    # BEGIN SOLUTION
    # The lower-case constructor always copies its data and infers the dtype from the array.
    return torch.tensor(arr)
    # END SOLUTION


def float32_tensor(arr: np.ndarray) -> tuple[torch.Tensor, bool]:
    """Return `(t, shares)`: `t` is a float32 CPU tensor with `arr`'s shape and values, and
    `shares` tells whether `t` shares memory with `arr`.

    Copy only when you must. A float32 array, in any layout a tensor can describe (C or Fortran
    order, a strided view inside a larger array), is used as it is: `t` lies on its memory, so
    its later changes show in `t`. An array of another real dtype (float64, float16, int64,
    int32, uint8) has to be converted, and converted values need new memory: later changes of
    `arr` do not reach `t`. A float32 array copied anyway costs time and memory, and its copy no
    longer follows the array.

    `shares` is a bool (Python's or NumPy's) that is True exactly when `t` and `arr` overlap in
    memory, as measured on the `t` you return.
    """
    # BEGIN SOLUTION
    t = torch.as_tensor(arr, dtype=torch.float32)
    # t.numpy() is a view of t's memory, so NumPy can compare the two buffers directly.
    shares = np.shares_memory(arr, t.numpy())
    return t, shares
    # END SOLUTION


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """Return a NumPy array with the shape, dtype and values of the tensor `t`, on `t`'s own
    memory.

    `t` does not require grad; it may have any shape (0-d included) and any strides (a
    transposed matrix, a slice that starts inside a larger tensor). No value is copied, for
    every layout: a write into the array changes `t`, and a write into `t` shows in the array.
    An answer that first makes the values contiguous, or builds a new array from them, prints
    the same numbers but has memory of its own.

    Only a tensor in CPU memory can share memory with an array. For a tensor anywhere else (a
    GPU, or the `meta` device, which holds no values at all) raise TypeError, as PyTorch itself
    does for such a tensor, rather than return a copy; the message is free.
    """
    # BEGIN SOLUTION
    # The tensor method wraps the storage with the tensor's own strides: no copy, any layout. It
    # raises TypeError for a tensor outside CPU memory, where no shared memory is possible.
    return t.numpy()
    # END SOLUTION


def to_numpy_safe(t: torch.Tensor) -> np.ndarray:
    """Return a NumPy array with the shape, dtype and values of any tensor `t`.

    `t` may require grad (a model's weight, or a loss with a graph behind it), may live on a GPU,
    and may be 0-d (a loss gives a 0-d array, not a Python float). Its dtype is one NumPy has
    (not bfloat16). The direct conversion raises for a tensor that requires grad and for one on
    a GPU; this one works for both, on every device. `t` is left as it was: still requiring
    grad, its graph still there for a later backward, on its device. Whether the array shares
    memory with a CPU `t` is free. This is the conversion for logging, plotting and metrics in a
    training loop.
    """
    # BEGIN SOLUTION
    # detach() leaves the autograd graph (numpy knows nothing of gradients) without changing t;
    # cpu() copies a GPU tensor to host memory and is a no-op on the CPU. Both are needed.
    return t.detach().cpu().numpy()
    # END SOLUTION


def flip_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """Return a tensor with the shape, dtype and values of `arr`, an array that has been reversed
    (flipped, or sliced with a negative step) along at least one axis.

    A reversed array is a view that walks memory backwards: at least one of its strides is
    negative. A tensor's strides cannot be negative, so no tensor can describe that view, and
    every bridge from NumPy refuses it ("At least one stride in the given numpy array is
    negative..."). The values have to be laid out again before a tensor can hold them. `arr` may
    have any shape, and any of its axes may be the reversed ones, an axis of length one included
    (a batch of one reversed along the batch axis). The dtype is kept: an answer that goes
    through Python lists turns float64 into float32 and int32 into int64. The result owns its
    memory: later writes into `arr`, or into the array it views, leave the tensor as it was.
    """
    # BEGIN SOLUTION
    # A C-order copy writes the values into fresh memory with positive strides (for axes of
    # length one too); the tensor then wraps that copy without a second one.
    return torch.from_numpy(arr.copy())
    # END SOLUTION
