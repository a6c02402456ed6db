"""Kata 02: views, copies and shared storage.

A tensor is a window (shape, strides, offset) onto a block of memory, its *storage*. Many
operations return a new window onto the same storage, a *view*: `view`, `reshape` of a
contiguous tensor, slicing, `t()`/`transpose`, `expand`, `detach`. Writing through a view
changes the original. Others allocate new memory, a *copy*: `clone`, `contiguous` of a
non-contiguous tensor, `repeat`, arithmetic. Knowing which is which avoids two classes of bug:
a write that silently reaches a tensor the caller still uses, and a copy that silently breaks a
link you were counting on. Autograd adds a second axis: `clone` stays in the graph, `detach`
leaves the graph but keeps the memory. Run `dojo` to see which exercise is next and
`dojo hint 02` when stuck.
"""

import torch


def reshape_shared(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Return `x` with the given `shape` (one entry may be -1), sharing `x`'s memory.

    `x` is contiguous. The result must be a view: no new memory, so writing into the result
    changes `x` (that is how in-place updates of a reshaped buffer reach the original).
    A copy has the right shape and values but breaks that link: `x.clone().view(shape)`,
    `torch.tensor(x.tolist())` and `.clone()` after reshaping all allocate new memory.
    """
    # TODO: a reshaped tensor that shares x's memory
    raise NotImplementedError("02_view_vs_clone.reshape_shared is not done yet (stuck? dojo hint 02 reshape_shared)")


def independent_copy(x: torch.Tensor) -> torch.Tensor:
    """Return a snapshot of `x`: equal values, same dtype and device, but fully independent.

    Independent twice over:
    - memory: it shares no storage with `x`, so later in-place updates of `x` (an optimizer
      step) do not change the snapshot, and writes into the snapshot do not change `x`;
    - autograd: it is out of the graph (`requires_grad` False, no `grad_fn`), even when `x` is
      a parameter or the result of a computation that requires grad.
    `x.detach()` and `x.data` leave the graph but share memory; `x.clone()` copies the memory
    but stays in the graph (its `grad_fn` is CloneBackward).
    """
    # TODO: a snapshot with its own memory and no autograd history
    raise NotImplementedError("02_view_vs_clone.independent_copy is not done yet (stuck? dojo hint 02 independent_copy)")


def flatten_any(x: torch.Tensor) -> torch.Tensor:
    """Return the elements of `x` as a 1-D tensor in row-major order of `x`'s *indices*.

    `x` may be non-contiguous: transposed, permuted, or a strided slice such as `x[:, ::2]`.
    Element order follows indexing (`x[0, 0], x[0, 1], ...`), not the order in memory, so
    reading the storage directly (`as_strided`, `untyped_storage()`) gives the wrong order for a
    transposed tensor. `x.view(-1)` refuses non-contiguous input with a RuntimeError.
    When `x` is contiguous, return a view (no copy); copy only when a view is impossible.
    """
    # TODO: any tensor, even transposed or sliced, as 1-D in index order
    raise NotImplementedError("02_view_vs_clone.flatten_any is not done yet (stuck? dojo hint 02 flatten_any)")


def checked_view(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Return `x.view(shape)`; where PyTorch cannot make that view, raise a `ValueError`.

    Use this where silently copying would be a bug (say, the result is written to and the
    writes must reach `x`): `reshape` would copy without a word. The `ValueError` message must
    contain "cannot view" (add the shape and strides of `x`: they explain why), and it must
    chain PyTorch's own RuntimeError as its cause (`raise ... from err`), so the traceback
    keeps PyTorch's explanation.
    Do not decide in advance with `x.is_contiguous()`: some non-contiguous tensors can be
    viewed (a column slice `x[:, :2]` can be viewed as shape (rows, 1, 2)). Ask `view` itself.
    """
    # TODO: view, or a ValueError chained to PyTorch's error
    raise NotImplementedError("02_view_vs_clone.checked_view is not done yet (stuck? dojo hint 02 checked_view)")


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Return True if `a` and `b` use the same underlying memory (storage), else False.

    True for `x` with any view of it: `x[1:]`, `x[::2]`, `x.t()`, `x.view(-1)`; False for
    `x.clone()` and for a separate tensor that merely holds equal values. Return a Python bool.
    `a.data_ptr()` is the address of a tensor's *first element*, so it differs for `x` and
    `x[1:]`; compare where the storages begin instead (`untyped_storage()`). Comparing values
    (`torch.equal`) or identity (`a is b`) answers another question. `a` and `b` may be on a GPU.
    """
    # TODO: do two tensors share underlying memory?
    raise NotImplementedError("02_view_vs_clone.shares_storage is not done yet (stuck? dojo hint 02 shares_storage)")


def tile_rows(row: torch.Tensor, n: int) -> torch.Tensor:
    """Return an (n, M) tensor whose every row equals the 1-D `row` of shape (M,).

    The rows must be independent: the caller writes into them (say, one row per sample to be
    edited), so writing into one row must change neither the other rows nor `row`. Keep the
    dtype and device of `row`.
    `row.expand(n, -1)` has the right shape and values but every row is the same memory as
    `row` (stride 0): writing into one row writes into all of them and into `row`, and an
    in-place operation on the whole result raises "unsupported operation: more than one element
    of the written-to tensor refers to a single memory location".
    """
    # TODO: (M,) -> (n, M) with rows that own their memory
    raise NotImplementedError("02_view_vs_clone.tile_rows is not done yet (stuck? dojo hint 02 tile_rows)")


def clamp_negatives_copy(x: torch.Tensor) -> torch.Tensor:
    """Return a new tensor equal to `x` with every negative entry replaced by 0.

    The caller's `x` must stay exactly as it was, and the result must be new memory even when
    nothing was negative. Traps: `y = x` names the same tensor, `y = x[:]` is a view of it, and
    the in-place methods (`clamp_`, `relu_`, anything ending in `_`) modify `x` itself.
    """
    # TODO: negatives set to 0 in a new tensor; x untouched
    raise NotImplementedError("02_view_vs_clone.clamp_negatives_copy is not done yet (stuck? dojo hint 02 clamp_negatives_copy)")
