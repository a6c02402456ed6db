"""Kata 01: tensor operations.

A tensor is more than its numbers: it also has a shape, a dtype and a device, and it lives in
memory that other names may point at. The exercises create tensors that match another one, write
results where the caller will look for them, and do the shape bookkeeping (columns, flattening,
batch dimensions, the winning class, tables of sums) that every model does on every line. Most
mistakes here raise no error on the line that is wrong: the numbers look right and the shape,
dtype, device or memory is not. Run `dojo` to see which exercise is next and `dojo hint 01` when
stuck.
"""

import torch


def zeros_with_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Return a new tensor of zeros with the shape and device of `x` and the given `dtype`.

    `x` may have any shape (a 0-d scalar included) and any dtype, and may live on any device. Its
    values do not matter, not even when they are `inf` or `nan`: every element of the result is
    zero. `x` is left as it was. The result is a fresh tensor: it shares no memory with `x` and
    carries no autograd graph (`requires_grad` False, no `grad_fn`), even when `x` requires grad.

    The usual slip keeps the shape and loses the rest: everything works on a CPU-only laptop, and
    on a GPU the first operation that meets `x` fails because two tensors sit on different devices.
    """
    # TODO: zeros with x's shape and device and the given dtype
    raise NotImplementedError("01_tensor_ops.zeros_with_dtype is not done yet (stuck? dojo hint 01 zeros_with_dtype)")


def ones_like_template(template: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Return a new tensor of ones of the given `shape`, with the dtype and device of `template`.

    Only the dtype and the device come from `template`: its own shape and its values do not matter
    (the requested shape usually differs from it), and `template` is left as it was. `shape` is a
    tuple of ints; `()` asks for a 0-d tensor. The result is a fresh tensor: it shares no memory
    with `template` and carries no autograd graph, even when `template` requires grad.

    Built from the shape alone, the ones come out as float32 on the CPU: a mask made that way
    fails when it meets a float16 model on the GPU, or quietly turns the model's numbers into
    float32.
    """
    # TODO: ones of a new shape with the template's dtype and device
    raise NotImplementedError("01_tensor_ops.ones_like_template is not done yet (stuck? dojo hint 01 ones_like_template)")


def add_into(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write the sum `x + y` into the caller's existing tensor `out`, and return `out`.

    `x`, `y` and `out` have one shape, one dtype and one device, and none of them requires grad.
    `out` is a preallocated buffer, distinct from `x` and `y` and overlapping neither; it may be a
    view into a larger tensor (a few columns of a matrix, say), so it need not be contiguous.

    Afterwards the caller's `out` holds the sum, in the memory it already had: whatever it held
    before is overwritten, not summed with, and when `out` is part of a larger tensor, that tensor
    shows the sum in exactly those places and nothing else changes. The returned object is `out`
    itself. `x` and `y` are left as they were.

    The slip to watch for: the function returns the right numbers while the caller's buffer still
    holds its old ones.
    """
    # TODO: write x + y into the caller's `out` tensor and return it
    raise NotImplementedError("01_tensor_ops.add_into is not done yet (stuck? dojo hint 01 add_into)")


def add_in_place(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Add `y` to the caller's tensor `x` in place, and return `x` itself.

    `x` may have any shape, a 0-d running total included, and need not be contiguous (it may be
    a column of a matrix). `y` has x's dtype and device and a shape that broadcasts to x's (one
    row added to every row of a matrix, say); neither requires grad.

    Afterwards the caller sees the sum through `x` and through every view of the same memory:
    when `x` is a row or a column of a larger matrix, the matrix shows the change there and
    nowhere else. `x` keeps its shape and its memory, and the returned object is `x` itself, not a
    copy. `y` is left as it was.

    The slip to watch for: a running total that still reads 0 however many times it was updated.
    """
    # TODO: add y to x in place and return x itself
    raise NotImplementedError("01_tensor_ops.add_in_place is not done yet (stuck? dojo hint 01 add_in_place)")


def column(x: torch.Tensor, j: int) -> torch.Tensor:
    """Return column `j` of the 2-D tensor `x`, as a 1-D tensor of shape (rows,).

    `x` has shape (rows, cols), any dtype and any device, and need not be contiguous (it may be
    the transpose of another tensor). `j` counts from 0; a negative `j` counts from the last
    column, as Python's indexing does (-1 is the last column). Element `i` of the result is
    `x[i, j]`, and the result has x's dtype and device. It may share memory with `x` or not;
    `x` itself is left as it was.

    Watch the shape: one row still gives shape (1,), never a 0-d scalar, and a result of shape
    (rows, 1) looks the same when printed but turns into a (rows, rows) table as soon as it meets
    a (rows,) vector. A square `x` hides taking a row instead: both have the same length.
    """
    # TODO: column j of a 2-D tensor, as a 1-D tensor
    raise NotImplementedError("01_tensor_ops.column is not done yet (stuck? dojo hint 01 column)")


def flatten_rows(x: torch.Tensor) -> torch.Tensor:
    """Flatten everything after the first dimension: shape (N, d1, d2, ...) -> (N, d1*d2*...).

    This is what happens between the convolutional and the linear layers of a network. `x` has at
    least two dimensions and N >= 1, any number of trailing dimensions, and need not be contiguous
    (it may be a permuted or transposed tensor). Row `n` of the result holds the elements of `x[n]`
    in row-major order (the last index varying fastest), with x's dtype and device. The result may
    share memory with `x` or not; `x` itself is left as it was.

    The batch dimension must survive, even when N is 1 and when trailing dimensions have size 1.
    When the batch is flattened away too, the next layer sees one long row: it fails on a shape
    mismatch, or, where the sizes happen to fit, silently reads several images as one.
    """
    # TODO: (N, d1, d2, ...) -> (N, d1*d2*...)
    raise NotImplementedError("01_tensor_ops.flatten_rows is not done yet (stuck? dojo hint 01 flatten_rows)")


def add_batch_dim(image: torch.Tensor) -> torch.Tensor:
    """Turn one image of shape (C, H, W) into a batch of one, of shape (1, C, H, W).

    Models expect a batch dimension first, even for a single input. The batch's only element is
    the image: `result[0]` equals `image`, and the result has the image's dtype and device. The
    caller's `image` keeps its shape (C, H, W) and its values, since it may be shown, saved or
    batched again afterwards. The result may share memory with `image` or not.

    Check the shape, not only the values: a new dimension in the wrong place gives the same
    numbers in a shape the model reads differently (for a single-channel image it even looks
    right).
    """
    # TODO: (C, H, W) -> (1, C, H, W), leaving the caller's image as it was
    raise NotImplementedError("01_tensor_ops.add_batch_dim is not done yet (stuck? dojo hint 01 add_batch_dim)")


def to_python_number(t: torch.Tensor) -> float | int:
    """Return the value of a one-element tensor as a plain Python number.

    `t` holds exactly one element but may have any shape ((), (1,), (1, 1), ...), any dtype and any
    device, and it may require grad (a loss). The result is a built-in Python number of the
    matching kind: an `int` for an integer dtype, a `float` for a floating-point one, a `bool` for
    a bool tensor; not a tensor, not a NumPy scalar, not a list. It holds no device memory and no
    autograd graph, which is why a loss or a count is logged this way.

    A tensor with no element, or with more than one, raises RuntimeError (the message is free):
    summing a batch of losses or picking one of them would put a silently wrong number in the log.
    """
    # TODO: a one-element tensor as a Python int, float or bool
    raise NotImplementedError("01_tensor_ops.to_python_number is not done yet (stuck? dojo hint 01 to_python_number)")


def predicted_classes(scores: torch.Tensor) -> torch.Tensor:
    """Given class scores of shape (N, C), one row per sample and one column per class, return the
    predicted class of each sample: the column index of the largest score in its row.

    The result has shape (N,), also when N is 1, dtype int64 and the device of `scores`. When
    several classes of a row share its largest score, the smallest of their indices wins.
    `scores` is floating point and holds no nan.

    With as many samples as classes, reading the table the wrong way round still gives N indices:
    only their values are wrong, so an accuracy computed from them is quietly off.
    """
    # TODO: the index of the largest score in each row of (N, C) class scores
    raise NotImplementedError("01_tensor_ops.predicted_classes is not done yet (stuck? dojo hint 01 predicted_classes)")


def pairwise_sums(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the (N, M) table of all sums, `table[i, j] = a[i] + b[j]`, for 1-D `a` of shape (N,)
    and 1-D `b` of shape (M,).

    Rows follow `a` and columns follow `b`. `a` and `b` have one dtype and one device, and the
    table has them too. N and M are at least 1 and may be equal. `a` and `b` are left as they
    were, shapes included.

    With N == M the slip hides: the two vectors meet element by element and give N sums instead of
    N * M, or the table comes out transposed; nothing raises.
    """
    # TODO: (N,) and (M,) -> the (N, M) table of all sums a[i] + b[j]
    raise NotImplementedError("01_tensor_ops.pairwise_sums is not done yet (stuck? dojo hint 01 pairwise_sums)")
