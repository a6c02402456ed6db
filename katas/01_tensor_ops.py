"""Kata 01: tensor operations.

Creating tensors that match another one, writing results where the caller expects them, and the
shape bookkeeping (columns, flattening, batch dimensions, argmax, broadcasting) that every model
does on every line. Run `dojo` to see which exercise is next and `dojo hint 01` when stuck.
"""

import torch


def zeros_with_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Return zeros with the shape and device of `x`, but with the given `dtype`.

    `x` may live on any device. `torch.zeros(x.shape)` is the tempting answer: it forgets the
    device (and defaults to float32), which is how a model ends up with tensors on two devices.
    """
    # TODO: zeros shaped and placed like x, with another dtype
    raise NotImplementedError("01_tensor_ops.zeros_with_dtype is not done yet (stuck? dojo hint 01 zeros_with_dtype)")


def ones_like_template(template: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Return ones of the given `shape` with the dtype and device of `template`.

    The shape differs from the template's, so `ones_like` does not fit; tensors have `new_*`
    methods (`new_ones`, `new_zeros`, `new_full`, `new_tensor`) for exactly this case.
    """
    # TODO: ones of a new shape with the template's dtype and device
    raise NotImplementedError("01_tensor_ops.ones_like_template is not done yet (stuck? dojo hint 01 ones_like_template)")


def add_into(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write `x + y` into the existing tensor `out` and return `out`.

    The caller keeps a reference to `out` (a preallocated buffer) and reads it afterwards, so the
    result must land in *that* tensor's memory. `out = x + y` only rebinds a local name: the
    caller's buffer never changes.
    """
    # TODO: write x + y into the caller's `out` tensor
    raise NotImplementedError("01_tensor_ops.add_into is not done yet (stuck? dojo hint 01 add_into)")


def add_in_place(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Add `y` to `x` in place and return `x` itself (the same object, same memory).

    Methods ending in `_` modify their tensor and return it. `x = x + y` makes a new tensor and
    leaves the caller's `x` as it was.
    """
    # TODO: add y to x in place and return x itself
    raise NotImplementedError("01_tensor_ops.add_in_place is not done yet (stuck? dojo hint 01 add_in_place)")


def column(x: torch.Tensor, j: int) -> torch.Tensor:
    """Return column `j` of the 2-D tensor `x` as a 1-D tensor of shape (rows,).

    `x[j]` is a row, not a column; `x[:, j:j+1]` keeps a dimension of size 1.
    """
    # TODO: column j of a 2-D tensor, as 1-D
    raise NotImplementedError("01_tensor_ops.column is not done yet (stuck? dojo hint 01 column)")


def flatten_rows(x: torch.Tensor) -> torch.Tensor:
    """Flatten everything after the first dimension: shape (N, d1, d2, ...) -> (N, d1*d2*...).

    This is what happens between the convolutional and the linear layers of a network. The batch
    dimension N must survive, even when N is 1; `view(-1)` would flatten the batch away too.
    """
    # TODO: (N, d1, d2, ...) -> (N, d1*d2*...)
    raise NotImplementedError("01_tensor_ops.flatten_rows is not done yet (stuck? dojo hint 01 flatten_rows)")


def add_batch_dim(image: torch.Tensor) -> torch.Tensor:
    """Turn one image of shape (C, H, W) into a batch of one, shape (1, C, H, W).

    Models expect a batch dimension first, even for a single input.
    """
    # TODO: (C, H, W) -> (1, C, H, W)
    raise NotImplementedError("01_tensor_ops.add_batch_dim is not done yet (stuck? dojo hint 01 add_batch_dim)")


def to_python_number(t: torch.Tensor) -> float | int:
    """Return the value of a one-element tensor as a plain Python number (int or float).

    Use it to log a loss or count: a Python number holds no memory on the GPU and no autograd
    graph. The number keeps its kind: an integer tensor gives an `int`, a float one a `float`.
    A tensor with more than one element must raise PyTorch's own RuntimeError, not be summed or
    indexed into silence.
    """
    # TODO: a one-element tensor as a Python int/float
    raise NotImplementedError("01_tensor_ops.to_python_number is not done yet (stuck? dojo hint 01 to_python_number)")


def predicted_classes(scores: torch.Tensor) -> torch.Tensor:
    """Given class scores of shape (N, C), one row per sample, return the predicted class of
    each sample: the column index of the row's largest score, shape (N,), dtype int64.
    """
    # TODO: row-wise argmax of (N, C) class scores
    raise NotImplementedError("01_tensor_ops.predicted_classes is not done yet (stuck? dojo hint 01 predicted_classes)")


def pairwise_sums(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the (N, M) table with `out[i, j] = a[i] + b[j]` for 1-D `a` (N,) and `b` (M,).

    Use broadcasting, not loops: an (N, 1) tensor plus a (1, M) tensor is (N, M).
    """
    # TODO: (N,) and (M,) -> (N, M) table of sums by broadcasting
    raise NotImplementedError("01_tensor_ops.pairwise_sums is not done yet (stuck? dojo hint 01 pairwise_sums)")
