"""Kata 02: views, copies and shared storage.

A tensor is a window (shape, strides, offset) onto a block of memory, its *storage*. Many
operations only build a new window onto the same storage, a *view*: slicing, transposing and most
reshaping among them. Writing through a view changes every tensor that shares the storage. Other
operations allocate new memory, a *copy*, and a few do either, depending on the layout of their
input. From the outside a view and a copy look the same (same shape, same values), so the bug
shows later: a write that silently reaches a tensor the caller still uses, or an update that never
reaches the tensor it was meant for. Autograd asks a second, separate question: is the result still
recorded in its input's graph? Run `dojo` to see which exercise is next and `dojo hint 02` when
stuck.
"""

import torch


def reshape_shared(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Return `x` in the given `shape` (one entry may be -1), sharing `x`'s own memory.

    `x` is contiguous, of any dtype, on any device, and may start partway into its storage (a
    slice such as `big[1:]`); the result keeps its dtype and device. Nothing is copied: the
    result reads and writes `x`'s elements, so writing into the result changes `x` (that is how
    in-place updates of a reshaped buffer reach the original), while `x` itself keeps its shape.
    When `x` requires grad the result stays in its graph: a loss computed from the result gives
    `x` a gradient. A copy in the right shape has the right values as well; it shows only later,
    when the writes into it never reach `x`.
    """
    # BEGIN SOLUTION
    # view never copies: it only computes new strides over the same storage (and raises if it
    # cannot). reshape would also return a view here, because x is contiguous.
    return x.view(shape)
    # END SOLUTION


def independent_copy(x: torch.Tensor) -> torch.Tensor:
    """Return a snapshot of `x`: equal values, the same shape, dtype and device, but independent.

    `x` may be a parameter, the result of a computation that requires grad, or a plain tensor.
    The snapshot is independent twice over:
    - memory: it shares no storage with `x`, so later in-place updates of `x` (an optimizer
      step) do not change the snapshot, and writes into the snapshot do not change `x`;
    - autograd: it is out of the graph (`requires_grad` False, `grad_fn` None), so nothing
      computed from it sends a gradient back to `x`.
    `x` itself is left as it was: same values and, where it required grad, still requiring grad
    and still in its graph.
    Two snapshots that look right are each half wrong: one that is out of the graph but changes
    when the optimizer steps (it is still `x`'s memory), and one with its own memory that is
    still recorded in the graph (it has a `grad_fn`, and a loss computed from it reaches `x`).
    """
    # BEGIN SOLUTION
    # detach first, so the copy is made outside the graph (clone().detach() gives the same
    # result but records a CloneBackward node first, only to cut it off).
    return x.detach().clone()
    # END SOLUTION


def flatten_any(x: torch.Tensor) -> torch.Tensor:
    """Return the elements of `x` as a 1-D tensor, in row-major order of `x`'s *indices*.

    `x` has at least one element, any number of dimensions (a 0-d `x` gives one element) and any
    layout: contiguous, transposed, permuted, or a strided slice such as `x[:, ::2]`. The order
    follows indexing (`x[0, 0], x[0, 1], ..., x[1, 0], ...`), not the order of the elements in
    memory: for a transposed tensor the two differ, so an answer that reads memory in order gives
    the right values in the wrong order, and an answer that accepts only tensors whose memory is
    already in index order raises a RuntimeError on them. Keep the dtype and device of `x`.
    When `x` is contiguous the result is a view of it (nothing is copied: writes into the result
    change `x`); for any other `x` it may be a view or a copy.
    """
    # BEGIN SOLUTION
    # reshape is view-if-possible, copy-if-necessary: for a contiguous x it is x.view(-1); for
    # a transposed x it copies into a fresh contiguous tensor in logical order. torch.flatten
    # does the same; x.ravel() too, except that it copies every non-contiguous x (x[::2] as well).
    return x.reshape(-1)
    # END SOLUTION


def checked_view(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Return `x.view(shape)`; where that view cannot be made, raise a `ValueError` instead.

    For code where a silent copy would be a bug (the result is written to, and the writes must
    reach `x`), which `x.reshape(shape)` would make without a word. Whenever `x.view(shape)`
    succeeds, return that view (it shares `x`'s memory; one entry of `shape` may be -1). Whenever
    it raises a RuntimeError, because the layout of `x` does not allow that view or because
    `shape` does not hold `x`'s number of elements, raise a `ValueError` whose message contains
    "cannot view", in any letter case (the rest of the wording is free; the shape and strides of
    `x` explain why), and
    whose `__cause__` is PyTorch's RuntimeError, so the traceback keeps PyTorch's explanation.
    Being contiguous is not the question: a column slice `x[:, :2]` of a (3, 4) tensor is not
    contiguous, yet it can be viewed as (3, 1, 2), and must be.
    """
    # BEGIN SOLUTION
    try:
        return x.view(shape)
    except RuntimeError as err:
        # `from err` sets __cause__: the traceback shows PyTorch's message, then ours.
        raise ValueError(
            f"cannot view a tensor of shape {tuple(x.shape)} and strides {x.stride()} as shape {tuple(shape)} "
            "without copying"
        ) from err
    # END SOLUTION


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Return True if `a` and `b` use the same underlying memory (storage), else False.

    The answer is a Python bool, and the same whichever tensor comes first. True for a tensor and
    any view of it, and for two views of one tensor: views that start further into the memory
    (`x[1:]`), skip elements (`x[::2]`, `x[:, 1]`), transpose, expand, read the same bytes as
    another dtype, or leave the graph. True even when the two cover disjoint elements (`x[:5]`
    and `x[5:]`): the question is about the storage, not about overlapping elements. False for a
    copy, even one with equal values, for two separately made tensors, and for tensors on
    different devices. Comparing the addresses of the two tensors' first elements says False for
    `x` and `x[1:]`: a slice starts further into the same memory.
    """
    # BEGIN SOLUTION
    # The storage's data_ptr is where the whole block starts, whatever the view's offset.
    # Addresses on different devices are different address spaces, hence the device check.
    return a.device == b.device and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    # END SOLUTION


def tile_rows(row: torch.Tensor, n: int) -> torch.Tensor:
    """Return an (n, M) tensor whose every row equals the 1-D `row` of shape (M,); `n` >= 1.

    `row` may be a non-contiguous view (a column of a matrix). Keep its dtype and device. The
    rows must be independent: the caller writes into them (say, one row per sample to be edited),
    so writing into one row must change neither the other rows nor `row`, and an in-place
    operation on the whole result must work. A result that has the right shape and values but
    reuses `row`'s memory for every row shows itself later: a write into one row appears in every
    row and in `row`, and an in-place operation on the whole result raises "unsupported
    operation: more than one element of the written-to tensor refers to a single memory location".
    """
    # BEGIN SOLUTION
    # repeat copies the data n times into new memory (expand(...).clone() or torch.stack([row]*n)
    # would do as well).
    return row.repeat(n, 1)
    # END SOLUTION


def clamp_negatives_copy(x: torch.Tensor) -> torch.Tensor:
    """Return a new tensor equal to `x` with every negative entry (-inf included) replaced by 0.

    Every other entry is kept as it is, nan included (nan is not negative); so are the dtype
    (integer tensors stay integer) and the device. The caller's `x` must stay exactly as it was:
    not one element written, not even rewritten with its own value. The result is new memory
    even when nothing was negative: the caller may write into it. An answer that writes into `x`
    (or into another name or a view of it) returns the right result; the caller notices only
    when `x` has lost its negative entries.
    """
    # BEGIN SOLUTION
    # The out-of-place clamp allocates its result and never touches x; it keeps integer dtypes
    # (an int min), leaves nan alone and sends -inf to 0.
    return x.clamp(min=0)
    # END SOLUTION
