"""Known-wrong answers (decoys) and known-right alternatives for kata 03 (see dojo/variants.py)."""

import numpy as np
import torch

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- shared_tensor


@decoy(
    "torch.tensor copies: the right values, but a later write into the array never reaches the tensor",
    cite="https://github.com/d2l-ai/d2l-zh/pull/1342",
)
def shared_tensor(arr):
    return torch.tensor(arr)


@decoy("the torch.Tensor constructor: float64, int32 and uint8 arrays come back as float32 copies")
def shared_tensor(arr):
    return torch.Tensor(arr)


@decoy("shares, then .float(): a float64 array is converted into new float32 memory")
def shared_tensor(arr):
    return torch.from_numpy(arr).float()


@decoy("makes the array contiguous 'to be safe': a Fortran-order or strided view is copied")
def shared_tensor(arr):
    return torch.from_numpy(np.ascontiguousarray(arr))


@decoy(".contiguous() on the tensor: shares a C-order array, copies a Fortran-order one")
def shared_tensor(arr):
    return torch.from_numpy(arr).contiguous()


@decoy("astype to 'keep' the dtype: astype copies unless told copy=False")
def shared_tensor(arr):
    return torch.from_numpy(arr.astype(arr.dtype))


@alternative("torch.as_tensor with no dtype or device asked for wraps the array as it is")
def shared_tensor(arr):
    return torch.as_tensor(arr)


@alternative("torch.asarray shares by default (copy=None) for arrays of one or more dimensions")
def shared_tensor(arr):
    return torch.asarray(arr)


@alternative("DLPack: NumPy arrays export their buffer, strides included")
def shared_tensor(arr):
    return torch.from_dlpack(arr)


# ---------------------------------------------------------------- independent_tensor


@decoy(
    "from_numpy wraps the buffer: a data loader that reuses the array rewrites the tensor",
    cite="https://github.com/mrdbourke/pytorch-deep-learning/issues/1279",
)
def independent_tensor(arr):
    return torch.from_numpy(arr)


@decoy("torch.as_tensor without a dtype change shares too")
def independent_tensor(arr):
    return torch.as_tensor(arr)


@decoy("detach() is taken for a copy: it leaves the graph, not the memory")
def independent_tensor(arr):
    return torch.from_numpy(arr).detach()


@decoy("torch.Tensor(arr): float64 becomes float32 (and a float32 array is shared, not copied)")
def independent_tensor(arr):
    return torch.Tensor(arr)


@decoy("through Python lists: float64 survives, int32 and uint8 come back int64")
def independent_tensor(arr):
    return torch.tensor(arr.tolist())


@decoy(".contiguous() as the copy: a C-order array is already contiguous, so it is shared")
def independent_tensor(arr):
    return torch.from_numpy(arr).contiguous()


@decoy("a float32 copy: the copy is there, the dtype is not")
def independent_tensor(arr):
    return torch.tensor(arr, dtype=torch.float32)


@alternative("wrap, then clone: the clone owns its memory (and keeps a Fortran layout)")
def independent_tensor(arr):
    return torch.from_numpy(arr).clone()


@alternative("a NumPy copy, then wrapped: the tensor lies on the copy, which nobody else holds")
def independent_tensor(arr):
    return torch.from_numpy(arr.copy())


@alternative("torch.asarray with copy=True")
def independent_tensor(arr):
    return torch.asarray(arr, copy=True)


@alternative("an empty tensor of the right dtype, filled by copy_")
def independent_tensor(arr):
    source = torch.from_numpy(arr)
    out = torch.empty(source.shape, dtype=source.dtype)
    return out.copy_(source)


# ---------------------------------------------------------------- float32_tensor


@decoy("torch.tensor(arr, dtype=...) copies even a float32 array that needed no conversion")
def float32_tensor(arr):
    t = torch.tensor(arr, dtype=torch.float32)
    return t, np.shares_memory(arr, t.numpy())


@decoy("astype(np.float32) copies by default, also when the array is float32 already")
def float32_tensor(arr):
    t = torch.from_numpy(arr.astype(np.float32))
    return t, np.shares_memory(arr, t.numpy())


@decoy("compares a NumPy dtype with a torch dtype: never equal, so shares is always False")
def float32_tensor(arr):
    t = torch.as_tensor(arr, dtype=torch.float32)
    return t, arr.dtype == torch.float32


@decoy("contiguous() 'for speed': a strided or Fortran-order float32 view is copied")
def float32_tensor(arr):
    t = torch.as_tensor(arr, dtype=torch.float32).contiguous()
    return t, np.shares_memory(arr, t.numpy())


@decoy("guesses shares from the dtype, while the call copies every array")
def float32_tensor(arr):
    t = torch.tensor(arr, dtype=torch.float32)
    return t, arr.dtype == np.float32


@decoy("identity is not overlap: t.numpy() is a new array object even when it lies on arr's memory")
def float32_tensor(arr):
    t = torch.as_tensor(arr, dtype=torch.float32)
    return t, t.numpy() is arr


@alternative("wrap, then .float(): a no-op on float32, a conversion (new memory) for anything else")
def float32_tensor(arr):
    t = torch.from_numpy(arr).float()
    return t, bool(np.shares_memory(arr, t.numpy()))


@alternative("astype with copy=False in NumPy; sharing measured by data pointers")
def float32_tensor(arr):
    t = torch.from_numpy(arr.astype(np.float32, copy=False))
    return t, t.data_ptr() == arr.__array_interface__["data"][0]


@alternative("np.may_share_memory: the bounds check is exact enough for a copy versus a wrap")
def float32_tensor(arr):
    t = torch.as_tensor(arr, dtype=torch.float32)
    return t, np.may_share_memory(arr, t.numpy())


# ---------------------------------------------------------------- numpy_view


@decoy("np.array(t) copies the values into a new array")
def numpy_view(t):
    return np.array(t)


@decoy("clone() first: an array on the clone's memory, not on t's")
def numpy_view(t):
    return t.clone().numpy()


@decoy("contiguous() first: a transposed or strided tensor is copied")
def numpy_view(t):
    return t.contiguous().numpy()


@decoy("a list is not an array, and it is a copy")
def numpy_view(t):
    return t.tolist()


@decoy("cpu() first: a meta or GPU tensor is copied (or fails) instead of raising TypeError")
def numpy_view(t):
    return t.cpu().numpy()


@decoy("numpy(force=True) copies whatever it must, so a tensor outside CPU memory comes back as a copy")
def numpy_view(t):
    return t.numpy(force=True)


@decoy("np.ascontiguousarray afterwards: a non-contiguous view becomes a copy")
def numpy_view(t):
    return np.ascontiguousarray(t.numpy())


@decoy(
    "copies only a GPU tensor: no sharing is possible there, and a copy hides it",
    cite="https://github.com/pytorch/tutorials/pull/485",
    needs="cuda",
)
def numpy_view(t):
    return t.cpu().numpy() if t.is_cuda else t.numpy()


@alternative("np.asarray goes through the tensor's own conversion: shared, and TypeError off the CPU")
def numpy_view(t):
    return np.asarray(t)


@alternative("detach() first: a view on the same memory, harmless for a tensor without grad")
def numpy_view(t):
    return t.detach().numpy()


# ---------------------------------------------------------------- to_numpy_safe


@decoy("plain .numpy(): RuntimeError for a tensor that requires grad")
def to_numpy_safe(t):
    return t.numpy()


@decoy("cpu() alone: the graph is still there, so numpy() refuses")
def to_numpy_safe(t):
    return t.cpu().numpy()


@decoy("detach_() detaches the caller's tensor in place: the weight stops requiring grad, the loss loses its graph")
def to_numpy_safe(t):
    return t.detach_().cpu().numpy()


@decoy("through Python lists: float32 comes back float64")
def to_numpy_safe(t):
    return np.array(t.detach().cpu().tolist())


@decoy("item() gives a Python number for a loss, not an array (and fails for more than one element)")
def to_numpy_safe(t):
    return t.detach().cpu().item() if t.numel() == 1 else t.detach().cpu().numpy()


@decoy("detach() without cpu(): TypeError for a GPU tensor", needs="cuda")
def to_numpy_safe(t):
    return t.detach().numpy()


@decoy("t.data without cpu(): TypeError for a GPU tensor", needs="cuda")
def to_numpy_safe(t):
    return t.data.numpy()


@alternative("numpy(force=True) detaches and moves to the CPU in one call")
def to_numpy_safe(t):
    return t.numpy(force=True)


@alternative("cpu() before detach(): the order makes no difference to the result")
def to_numpy_safe(t):
    return t.cpu().detach().numpy()


@alternative("under torch.no_grad() numpy() accepts a tensor that requires grad, and cpu() records nothing")
def to_numpy_safe(t):
    with torch.no_grad():
        return t.cpu().numpy()


@alternative("to('cpu') and np.asarray")
def to_numpy_safe(t):
    return np.asarray(t.detach().to("cpu"))


# ---------------------------------------------------------------- flip_to_tensor


@decoy(
    "from_numpy on the reversed view: ValueError, negative strides",
    cite="https://github.com/1adrianb/face-alignment/issues/259",
)
def flip_to_tensor(arr):
    return torch.from_numpy(arr)


@decoy("torch.tensor copies anyway, yet it refuses negative strides too")
def flip_to_tensor(arr):
    return torch.tensor(arr)


@decoy(
    "np.ascontiguousarray returns the array itself when only a length-one axis is reversed",
    cite="https://github.com/numpy/numpy/issues/23349",
)
def flip_to_tensor(arr):
    return torch.from_numpy(np.ascontiguousarray(arr))


@decoy("flips again to 'fix' the strides: positive strides, but the values are back in their old order")
def flip_to_tensor(arr):
    return torch.from_numpy(np.flip(arr).copy())


@decoy("through Python lists: float64 becomes float32, int32 and uint8 become int64")
def flip_to_tensor(arr):
    return torch.tensor(arr.tolist())


@decoy("astype(np.float32) copies into forward order, and changes the dtype")
def flip_to_tensor(arr):
    return torch.from_numpy(arr.astype(np.float32))


@decoy("undoes a reversal of axis 0 with a NumPy view and redoes it in torch: other reversed axes still refused")
def flip_to_tensor(arr):
    return torch.from_numpy(arr[::-1]).flip(0)


@alternative("np.array copies (order 'K') into fresh memory with positive strides")
def flip_to_tensor(arr):
    return torch.from_numpy(np.array(arr))


@alternative("torch.tensor of a NumPy copy")
def flip_to_tensor(arr):
    return torch.tensor(arr.copy())


@alternative("a Fortran-order copy: positive strides too")
def flip_to_tensor(arr):
    return torch.as_tensor(arr.copy(order="F"))


@alternative("no NumPy copy: un-reverse the negative axes with a view, wrap it, and let torch.flip copy them back")
def flip_to_tensor(arr):
    axes = tuple(i for i, stride in enumerate(arr.strides) if stride < 0)
    return torch.from_numpy(np.flip(arr, axes)).flip(axes)
