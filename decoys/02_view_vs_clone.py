"""Known-wrong answers (decoys) and known-right alternatives for kata 02 (see dojo/variants.py)."""

import copy
import itertools

import numpy as np
import torch

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- reshape_shared


@decoy("clones before viewing: the right shape and values in new memory, so writes never reach x")
def reshape_shared(x, shape):
    return x.clone().view(shape)


@decoy("reshapes, then clones 'to be safe': new memory")
def reshape_shared(x, shape):
    return x.reshape(shape).clone()


@decoy("rebuilds the tensor from a Python list: new memory, and float64 comes back as float32")
def reshape_shared(x, shape):
    return torch.tensor(x.tolist()).view(shape)


@decoy(
    "views x.data: shares the memory but leaves the graph, so no gradient reaches x",
    cite="https://github.com/pytorch/pytorch/issues/6990",
)
def reshape_shared(x, shape):
    return x.data.view(shape)


@decoy("goes through NumPy: shares memory on the CPU, but leaves the graph (numpy() refuses x that requires grad)")
def reshape_shared(x, shape):
    return torch.from_numpy(x.detach().numpy().reshape(shape))


@decoy("builds the window from the storage's start, forgetting that x may start partway into it")
def reshape_shared(x, shape):
    size = x.view(shape).shape
    strides, step = [], 1
    for n in reversed(size):
        strides.insert(0, step)
        step *= n
    return x.as_strided(size, strides, 0)


@decoy("resize_ sounds like reshape, but it reshapes the caller's x itself")
def reshape_shared(x, shape):
    return x.resize_(x.view(shape).shape)


@alternative("reshape: a view, since x is contiguous")
def reshape_shared(x, shape):
    return x.reshape(shape)


@alternative("torch.reshape, the function form")
def reshape_shared(x, shape):
    return torch.reshape(x, shape)


@alternative("view with the shape unpacked")
def reshape_shared(x, shape):
    return x.view(*shape)


@alternative("flatten (a view of a contiguous x), then unflatten the one dimension into shape")
def reshape_shared(x, shape):
    return x.flatten().unflatten(0, shape)


@alternative("as_strided with the strides of a contiguous tensor of that shape, at x's own offset")
def reshape_shared(x, shape):
    size = x.view(shape).shape
    strides, step = [], 1
    for n in reversed(size):
        strides.insert(0, step)
        step *= n
    return x.as_strided(size, strides)


# ---------------------------------------------------------------- independent_copy


@decoy(
    "clone() alone: its own memory, but recorded in the graph (CloneBackward0)",
    cite="https://androidkt.com/difference-between-clone-vs-detach-copy-deepcopy-in-pytorch/",
)
def independent_copy(x):
    return x.clone()


@decoy("detach() alone: out of the graph, but the same memory, so an optimizer step changes the snapshot")
def independent_copy(x):
    return x.detach()


@decoy("x.data: out of the graph, but the same memory")
def independent_copy(x):
    return x.data


@decoy("a Python list round trip: float16 comes back as float32 (and a GPU tensor on the CPU)")
def independent_copy(x):
    return torch.tensor(x.tolist())


@decoy("copy_ into fresh memory: the copy is recorded in the graph (CopyBackwards), so it requires grad")
def independent_copy(x):
    return torch.empty_like(x).copy_(x)


@decoy("detach().cpu() taken for a copy: on the CPU cpu() returns the same tensor, memory shared")
def independent_copy(x):
    return x.detach().cpu()


@decoy("detach().contiguous(): contiguous() returns the tensor itself when it already is")
def independent_copy(x):
    return x.detach().contiguous()


@decoy(
    "returns x under no_grad: no_grad changes what is recorded next, not x itself",
    cite="https://github.com/pytorch/pytorch/issues/33629",
)
def independent_copy(x):
    with torch.no_grad():
        return x


@decoy("clone().requires_grad_(False): PyTorch refuses to change the flag of a non-leaf (use detach)")
def independent_copy(x):
    return x.clone().requires_grad_(False)


@decoy("detach_() detaches the caller's x itself: the snapshot is right, x has left its graph")
def independent_copy(x):
    return x.detach_().clone()


@decoy("switches off requires_grad of the caller's tensor, then copies: the caller's parameter is frozen")
def independent_copy(x):
    if x.is_leaf:
        x.requires_grad_(False)
    return x.detach().clone()


@decoy("copy.deepcopy: refuses a computed tensor, and a parameter's copy is a parameter that requires grad")
def independent_copy(x):
    return copy.deepcopy(x)


@decoy("detach().cpu().clone(): a copy out of the graph, but on the CPU whatever x's device", needs="cuda")
def independent_copy(x):
    return x.detach().cpu().clone()


@alternative("clone, then detach: the same result (a CloneBackward0 node is recorded and cut off)")
def independent_copy(x):
    return x.clone().detach()


@alternative("clone while autograd records nothing")
def independent_copy(x):
    with torch.no_grad():
        return x.clone()


@alternative("copy_ of the detached x into fresh memory")
def independent_copy(x):
    return torch.empty_like(x).copy_(x.detach())


@alternative("a contiguous copy (strides may differ from x's; the values and shape do not)")
def independent_copy(x):
    return x.detach().clone(memory_format=torch.contiguous_format)


@alternative("to(copy=True) of the detached x")
def independent_copy(x):
    return x.detach().to(copy=True)


# ---------------------------------------------------------------- flatten_any


@decoy(
    "view(-1): raises a RuntimeError for a transposed or strided x",
    cite="https://stackoverflow.com/questions/49643225/whats-the-difference-between-reshape-and-view-in-pytorch",
)
def flatten_any(x):
    return x.view(-1)


@decoy("clone().view(-1): clone keeps a transposed x's strides, so view still refuses")
def flatten_any(x):
    return x.clone().view(-1)


@decoy("reads memory in order: right for a contiguous x, wrong order for a transposed one")
def flatten_any(x):
    return x.as_strided((x.numel(),), (1,))


@decoy("flatten(1), as for a batch: keeps the first dimension, so the result is 2-D")
def flatten_any(x):
    return x.flatten(1)


@decoy("joins the rows one by one: right order, but always a copy (and a 0-d x cannot be iterated)")
def flatten_any(x):
    return torch.cat([r.reshape(-1) for r in x])


@alternative("torch.flatten")
def flatten_any(x):
    return torch.flatten(x)


@alternative("ravel (it copies every non-contiguous x, which the docstring allows)")
def flatten_any(x):
    return x.ravel()


@alternative("contiguous() first (a no-op when x already is), then view")
def flatten_any(x):
    return x.contiguous().view(-1)


@alternative("reshape to the number of elements")
def flatten_any(x):
    return x.reshape(x.numel())


@alternative("a view when contiguous, otherwise a loop over every index in row-major order")
def flatten_any(x):
    if x.is_contiguous():
        return x.view(-1)
    return torch.stack([x[idx] for idx in itertools.product(*map(range, x.shape))])


# ---------------------------------------------------------------- checked_view


@decoy("decides with is_contiguous(): refuses a column slice that view can handle")
def checked_view(x, shape):
    if not x.is_contiguous():
        raise ValueError(f"cannot view a non-contiguous tensor of shape {tuple(x.shape)}")
    return x.view(shape)


@decoy("reshape: copies silently where the view is impossible, the very thing to refuse")
def checked_view(x, shape):
    return x.reshape(shape)


@decoy("raises inside except without `from err`: __cause__ is None (only the implicit __context__ is set)")
def checked_view(x, shape):
    try:
        return x.view(shape)
    except RuntimeError:
        raise ValueError(f"cannot view shape {tuple(x.shape)} as {shape}")  # noqa: B904


@decoy("`from None`: the traceback loses PyTorch's explanation")
def checked_view(x, shape):
    try:
        return x.view(shape)
    except RuntimeError:
        raise ValueError(f"cannot view shape {tuple(x.shape)} as {shape}") from None


@decoy("re-raises PyTorch's text as a ValueError: the message lacks 'cannot view'")
def checked_view(x, shape):
    try:
        return x.view(shape)
    except RuntimeError as err:
        raise ValueError(str(err)) from err


@decoy("reshapes and compares storages: raises without a cause, and a wrong size stays a RuntimeError")
def checked_view(x, shape):
    y = x.reshape(shape)
    if y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
        raise ValueError(f"cannot view {tuple(x.shape)} as {shape}")
    return y


@decoy("converts only the layout error: a shape with the wrong number of elements stays a RuntimeError")
def checked_view(x, shape):
    try:
        return x.view(shape)
    except RuntimeError as err:
        if "view size is not compatible" in str(err):
            raise ValueError(f"cannot view {tuple(x.shape)} with strides {x.stride()} as {shape}") from err
        raise


@alternative("catches any Exception, keeps the view in an else block, shape unpacked")
def checked_view(x, shape):
    try:
        y = x.view(*shape)
    except Exception as err:
        raise ValueError(f"cannot view {x.shape} (strides {x.stride()}) as {shape}") from err
    else:
        return y


@alternative("a minimal message")
def checked_view(x, shape):
    try:
        return x.view(shape)
    except RuntimeError as err:
        raise ValueError("cannot view") from err


@alternative("checks the element count first, then lets view decide the layout; both errors chained")
def checked_view(x, shape):
    try:
        torch.empty(x.numel()).view(shape)
    except RuntimeError as err:
        raise ValueError(f"cannot view {x.numel()} elements as {shape}") from err
    try:
        return x.view(shape)
    except RuntimeError as err:
        raise ValueError(f"cannot view shape {tuple(x.shape)}, strides {x.stride()}, as {shape}") from err


# ---------------------------------------------------------------- shares_storage


@decoy(
    "compares data_ptr(), the address of the first element: False for x and x[1:]",
    cite="https://github.com/MB1151/understanding_pytorch",
)
def shares_storage(a, b):
    return a.data_ptr() == b.data_ptr()


@decoy("compares values: True for an equal copy")
def shares_storage(a, b):
    return torch.equal(a, b)


@decoy("compares identity: False for every view")
def shares_storage(a, b):
    return a is b


@decoy("np.shares_memory asks whether elements overlap: False for x[:5] and x[5:] (and CPU only)")
def shares_storage(a, b):
    return bool(np.shares_memory(a.detach().cpu().numpy(), b.detach().cpu().numpy())) and a.device == b.device


@decoy("one tensor is the other's _base: misses two views of one tensor, and a view of a view")
def shares_storage(a, b):
    return a is b or a._base is b or b._base is a


@decoy("compares _base: two separately made tensors both have _base None")
def shares_storage(a, b):
    return (a._base if a._base is not None else a) is (b._base if b._base is not None else b) or a._base is b._base


@decoy("checks whether the address ranges overlap: False for disjoint slices of one tensor")
def shares_storage(a, b):
    def span(t):
        return t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()

    (a0, a1), (b0, b1) = span(a), span(b)
    return a.device == b.device and a0 < b1 and b0 < a1


@decoy("compares a's storage start with b's first element: right one way round, wrong the other")
def shares_storage(a, b):
    return a.device == b.device and a.untyped_storage().data_ptr() == b.data_ptr()


@alternative("the first element's address minus the offset (in bytes) is where the storage starts")
def shares_storage(a, b):
    def start(t):
        return t.data_ptr() - t.storage_offset() * t.element_size()

    return a.device == b.device and start(a) == start(b)


@alternative("the storage objects themselves: PyTorch keeps one Python object per storage")
def shares_storage(a, b):
    return a.untyped_storage() is b.untyped_storage()


@alternative("storage addresses only: addresses on two devices never coincide in practice")
def shares_storage(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


@alternative("the storages' C++ objects compared by their address")
def shares_storage(a, b):
    return a.untyped_storage()._cdata == b.untyped_storage()._cdata


@alternative("the device test last, and bool() around the comparison")
def shares_storage(a, b):
    same = a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    return bool(same and a.device == b.device)


# ---------------------------------------------------------------- tile_rows


@decoy(
    "expand: every row is row's memory (stride 0)",
    cite="https://docs.pytorch.org/docs/main/generated/torch.Tensor.expand.html",
)
def tile_rows(row, n):
    return row.expand(n, -1)


@decoy("broadcast_to is expand by another name: stride 0 again")
def tile_rows(row, n):
    return torch.broadcast_to(row, (n, row.shape[0]))


@decoy("expand, then contiguous(): for n = 1 the expanded tensor already is contiguous, so it is row's memory")
def tile_rows(row, n):
    return row.unsqueeze(0).expand(n, -1).contiguous()


@decoy("repeat(n): repeats along the one dimension, giving shape (n*M,)")
def tile_rows(row, n):
    return row.repeat(n)


@decoy("torch.cat of n rows: joins them end to end, shape (n*M,)")
def tile_rows(row, n):
    return torch.cat([row] * n)


@decoy("zeros plus row: float32 zeros promote an integer row, and they are made on the CPU")
def tile_rows(row, n):
    return torch.zeros(n, row.shape[0]) + row


@decoy("a nested Python list: int16 comes back as int64, and the tensor is made on the CPU")
def tile_rows(row, n):
    return torch.tensor([row.tolist()] * n)


@alternative("torch.stack copies each row into new memory")
def tile_rows(row, n):
    return torch.stack([row] * n)


@alternative("expand, then clone: clone of a stride-0 tensor gives every element its own memory")
def tile_rows(row, n):
    return row.expand(n, -1).clone()


@alternative("tile")
def tile_rows(row, n):
    return row.tile((n, 1))


@alternative("new memory, filled by broadcasting copy_")
def tile_rows(row, n):
    out = row.new_empty((n, row.shape[0]))
    out.copy_(row)
    return out


@alternative("a loop, one row at a time")
def tile_rows(row, n):
    out = torch.empty((n, row.shape[0]), dtype=row.dtype, device=row.device)
    for i in range(n):
        out[i] = row
    return out


@alternative("repeat along the row, then cut it into n rows")
def tile_rows(row, n):
    return row.repeat(1, n).view(n, -1)


# ---------------------------------------------------------------- clamp_negatives_copy


@decoy("clamp_ works in place: it rewrites the caller's x and returns it")
def clamp_negatives_copy(x):
    return x.clamp_(min=0)


@decoy("x[:] is a view: the masked write goes into the caller's x")
def clamp_negatives_copy(x):
    y = x[:]
    y[y < 0] = 0
    return y


@decoy("y = x is the same tensor under another name")
def clamp_negatives_copy(x):
    y = x
    y[y < 0] = 0
    return y


@decoy("relu_ works in place")
def clamp_negatives_copy(x):
    return torch.relu_(x)


@decoy("F.relu(inplace=True) writes into x")
def clamp_negatives_copy(x):
    return torch.nn.functional.relu(x, inplace=True)


@decoy("out=x writes the result into the caller's x")
def clamp_negatives_copy(x):
    return torch.clamp(x, min=0, out=x)


@decoy("returns x itself when nothing is negative: the caller's writes into the result reach x")
def clamp_negatives_copy(x):
    return x if bool((x >= 0).all()) else x.clamp(min=0)


@decoy("keeps where x > 0: nan > 0 is False, so nan becomes 0")
def clamp_negatives_copy(x):
    return torch.where(x > 0, x, 0)


@decoy("multiplies by the mask x > 0: -inf * 0 is nan, not 0")
def clamp_negatives_copy(x):
    return x * (x > 0)


@decoy("a float bound: clamp(min=0.0) turns an integer tensor into float32")
def clamp_negatives_copy(x):
    return x.clamp(min=0.0)


@decoy("(x + |x|) / 2: true division makes integers float, and -inf + inf is nan")
def clamp_negatives_copy(x):
    return (x + x.abs()) / 2


@alternative("torch.where with an int 0, which keeps the dtype")
def clamp_negatives_copy(x):
    return torch.where(x < 0, 0, x)


@alternative("F.relu, out of place")
def clamp_negatives_copy(x):
    return torch.nn.functional.relu(x)


@alternative("clone first, then write into the clone")
def clamp_negatives_copy(x):
    y = x.clone()
    y[y < 0] = 0
    return y


@alternative("maximum with zeros of x's dtype and device (nan propagates, as wanted)")
def clamp_negatives_copy(x):
    return torch.maximum(x, torch.zeros_like(x))


@alternative("masked_fill, out of place")
def clamp_negatives_copy(x):
    return x.masked_fill(x < 0, 0)


@alternative("clamp_min")
def clamp_negatives_copy(x):
    return torch.clamp_min(x, 0)
