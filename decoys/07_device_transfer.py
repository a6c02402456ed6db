"""Known-wrong answers (decoys) and known-right alternatives for kata 07 (see dojo/variants.py)."""

import time

import numpy as np
import torch

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- pick_device


@decoy("returns the string 'cuda' / 'mps' / 'cpu', not a device object")
def pick_device():
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@decoy("asks MPS first: a machine reporting both gets MPS")
def pick_device():
    if torch.backends.mps.is_available():
        return torch.device("mps")
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@decoy("forgets MPS: an Apple GPU is never used")
def pick_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@decoy("asks whether MPS was built into PyTorch, not whether it is available")
def pick_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_built():
        return torch.device("mps")
    return torch.device("cpu")


@alternative("a chain of conditional expressions; an explicit index for CUDA")
def pick_device():
    return torch.device(
        "cuda:0" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    )


# ---------------------------------------------------------------- move_and_cast


@decoy("throws the moved tensor away: x.to(...) returns a new tensor, x stays where it was")
def move_and_cast(x, device, dtype):
    x.to(device=device, dtype=dtype)
    return x


@decoy("moves but never casts")
def move_and_cast(x, device, dtype):
    return x.to(device)


@decoy("casts but never moves")
def move_and_cast(x, device, dtype):
    return x.to(dtype)


@decoy("float() instead of the dtype asked for")
def move_and_cast(x, device, dtype):
    return x.float().to(device)


@decoy("swaps x.data: the caller's x is moved and cast too")
def move_and_cast(x, device, dtype):
    x.data = x.data.to(device=device, dtype=dtype)
    return x


@decoy("a new tensor of the right kind, without x's values")
def move_and_cast(x, device, dtype):
    return torch.empty_like(x, device=device, dtype=dtype)


@alternative("cast first, then move: two calls")
def move_and_cast(x, device, dtype):
    return x.to(dtype).to(device)


@alternative("positional arguments, and copy=True")
def move_and_cast(x, device, dtype):
    return x.to(device, dtype, copy=True)


# ---------------------------------------------------------------- normalize_batch


@decoy("leaves the statistics on the CPU: fails once the batch is on another device")
def normalize_batch(x, mean, std):
    return (x - mean) / std


@decoy("takes the batch to the CPU and brings the result back: the batch leaves its device")
def normalize_batch(x, mean, std):
    return ((x.cpu() - mean) / std).to(x.device)


@decoy("returns the result on the CPU")
def normalize_batch(x, mean, std):
    return (x.cpu() - mean) / std


@decoy("in place: the caller's batch is overwritten")
def normalize_batch(x, mean, std):
    return x.sub_(mean.to(x.device)).div_(std.to(x.device))


@decoy("moves the caller's statistics by swapping their .data")
def normalize_batch(x, mean, std):
    mean.data = mean.data.to(x.device)
    std.data = std.data.to(x.device)
    return (x - mean) / std


@decoy("divides by the variance, std squared")
def normalize_batch(x, mean, std):
    return (x - mean.to(x.device)) / std.to(x.device) ** 2


@alternative("one .to for both statistics, with the dtype of x; a division by multiplication")
def normalize_batch(x, mean, std):
    stats = torch.stack([mean, std]).to(device=x.device, dtype=x.dtype)
    return (x - stats[0]) * stats[1].reciprocal()


@alternative("torch.sub and torch.div, statistics reshaped to (1, C)")
def normalize_batch(x, mean, std):
    m = mean.reshape(1, -1).to(x.device)
    s = std.reshape(1, -1).to(x.device)
    return torch.div(torch.sub(x, m), s)


# ---------------------------------------------------------------- new_weight


@decoy(
    "requires_grad=True, then scaled: the result is a MulBackward0 node, not a leaf",
    cite="https://discuss.pytorch.org/t/leaf-variable-was-used-in-an-inplace-operation/308",
)
def new_weight(shape, std, device, dtype):
    return torch.randn(shape, device=device, dtype=dtype, requires_grad=True) * std


@decoy("created on the CPU with requires_grad=True, then moved and cast: ToCopyBackward0, not a leaf")
def new_weight(shape, std, device, dtype):
    return (torch.randn(shape) * std).requires_grad_().to(device, dtype)


@decoy("never asks for gradients")
def new_weight(shape, std, device, dtype):
    return torch.randn(shape, device=device, dtype=dtype) * std


@decoy("forgets std: unit variance")
def new_weight(shape, std, device, dtype):
    return torch.randn(shape, device=device, dtype=dtype).requires_grad_()


@decoy("multiplies by the variance, std squared")
def new_weight(shape, std, device, dtype):
    return (torch.randn(shape, device=device, dtype=dtype) * std**2).requires_grad_()


@decoy("uniform values in [0, std), not normal ones of mean 0")
def new_weight(shape, std, device, dtype):
    return (torch.rand(shape, device=device, dtype=dtype) * std).requires_grad_()


@decoy("ignores dtype: always float32")
def new_weight(shape, std, device, dtype):
    return (torch.randn(shape, device=device) * std).requires_grad_()


@decoy("seeds its own generator: the same values on every call")
def new_weight(shape, std, device, dtype):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(shape, generator=g, dtype=dtype) * std).to(device).requires_grad_()


@alternative("nn.Parameter around the finished values, drawn on the CPU and moved")
def new_weight(shape, std, device, dtype):
    return torch.nn.Parameter((torch.randn(shape, dtype=dtype) * std).to(device))


@alternative("an empty tensor filled in place by normal_, under no_grad, gradients on by attribute")
def new_weight(shape, std, device, dtype):
    w = torch.empty(shape, device=device, dtype=dtype)
    with torch.no_grad():
        w.normal_(0.0, std)
    w.requires_grad = True
    return w


# ---------------------------------------------------------------- to_numpy


@decoy("plain .numpy(): refuses a tensor that requires grad")
def to_numpy(t):
    return t.numpy()


@decoy("cpu() without detach(): refuses a tensor that requires grad")
def to_numpy(t):
    return t.cpu().numpy()


@decoy(
    "detach() without cpu(): refuses a GPU tensor",
    cite="https://discuss.pytorch.org/t/convert-to-numpy-cuda-variable/499",
)
def to_numpy(t):
    return t.detach().numpy()


@decoy("switches gradients off on the caller's tensor itself")
def to_numpy(t):
    if t.is_leaf:
        t.requires_grad_(False)
        return t.cpu().numpy()
    return t.detach().cpu().numpy()


@decoy("goes through a Python list: float32 comes back as float64")
def to_numpy(t):
    return np.array(t.detach().cpu().tolist())


@decoy("item(): a Python number for a 0-d tensor, an error for any other")
def to_numpy(t):
    return np.float32(t.item()) if t.dim() == 0 else t.detach().cpu().numpy().squeeze()


@decoy("np.asarray of the detached tensor: NumPy still cannot read GPU memory")
def to_numpy(t):
    return np.asarray(t.detach())


@alternative("detach, then a copy to the host only where the tensor is not there yet")
def to_numpy(t):
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.numpy()


@alternative("numpy(force=True) does the detach and the copy to the host")
def to_numpy(t):
    return t.numpy(force=True)


@alternative("to('cpu') first, then detach; np.asarray")
def to_numpy(t):
    return np.asarray(t.to("cpu").detach())


# ---------------------------------------------------------------- batch_to_device


@decoy("non_blocking=True for every tensor: ordinary memory gets a copy that only looks asynchronous")
def batch_to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: batch_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_device(v, device) for v in batch)
    return batch


@decoy("never non_blocking: pinned memory is copied synchronously")
def batch_to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: batch_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_device(v, device) for v in batch)
    return batch


@decoy("turns every tuple into a list")
def batch_to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned())
    if isinstance(batch, dict):
        return {k: batch_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [batch_to_device(v, device) for v in batch]
    return batch


@decoy("moves only the tensors at the top level of the dict")
def batch_to_device(batch, device):
    return {k: v.to(device, non_blocking=v.is_pinned()) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@decoy("assigns into the caller's dict and lists: their batch is moved too")
def batch_to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned())
    if isinstance(batch, dict):
        for k, v in batch.items():
            batch[k] = batch_to_device(v, device)
        return batch
    if isinstance(batch, list):
        for i, v in enumerate(batch):
            batch[i] = batch_to_device(v, device)
        return batch
    if isinstance(batch, tuple):
        return tuple(batch_to_device(v, device) for v in batch)
    return batch


@decoy("copies non-tensors (copy.deepcopy): not the same objects")
def batch_to_device(batch, device):
    import copy

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned())
    if isinstance(batch, dict):
        return {k: batch_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_device(v, device) for v in batch)
    return copy.deepcopy(batch)


@decoy("sorts the dict's keys")
def batch_to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned())
    if isinstance(batch, dict):
        return {k: batch_to_device(batch[k], device) for k in sorted(batch)}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_device(v, device) for v in batch)
    return batch


@decoy("drops the None items of a dict")
def batch_to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned())
    if isinstance(batch, dict):
        return {k: batch_to_device(v, device) for k, v in batch.items() if v is not None}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_device(v, device) for v in batch)
    return batch


@alternative("torch.utils._pytree.tree_map over the tensors")
def batch_to_device(batch, device):
    from torch.utils._pytree import tree_map

    return tree_map(lambda v: v.to(device, non_blocking=v.is_pinned()) if isinstance(v, torch.Tensor) else v, batch)


@alternative("collections.abc checks and explicit loops")
def batch_to_device(batch, device):
    from collections.abc import Mapping

    if isinstance(batch, torch.Tensor):
        pinned = batch.is_pinned()
        return batch.to(device=device, non_blocking=pinned)
    if isinstance(batch, Mapping):
        moved = {}
        for key in batch:
            moved[key] = batch_to_device(batch[key], device)
        return moved
    if isinstance(batch, list):
        out = []
        for item in batch:
            out.append(batch_to_device(item, device))
        return out
    if isinstance(batch, tuple):
        return tuple([batch_to_device(item, device) for item in batch])
    return batch


# ---------------------------------------------------------------- load_to_cpu


@decoy("no map_location: a checkpoint saved on a GPU needs a GPU to open")
def load_to_cpu(path):
    return torch.load(path, weights_only=True)


@decoy(
    "weights_only=False: unpickling runs whatever code the file holds",
    cite="https://github.com/pytorch/pytorch/issues/52181",
)
def load_to_cpu(path):
    return torch.load(path, map_location="cpu", weights_only=False)


@decoy("catches the refusal and returns None")
def load_to_cpu(path):
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return None


@decoy("loads as it was saved, then moves the tensors: fails before the move where there is no GPU")
def load_to_cpu(path):
    state = torch.load(path, weights_only=True)
    return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


@alternative("map_location as a function that keeps each storage where it is read (the CPU)")
def load_to_cpu(path):
    return torch.load(path, map_location=lambda storage, location: storage, weights_only=True)


@alternative("an open file and a torch.device; weights_only is the default since torch 2.6")
def load_to_cpu(path):
    with open(path, "rb") as f:
        return torch.load(f, map_location=torch.device("cpu"))


# ---------------------------------------------------------------- time_on_device


@decoy("never waits for the GPU: times the kernel launches")
def time_on_device(fn, device):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@decoy("waits only after fn: work queued earlier is counted too")
def time_on_device(fn, device):
    start = time.perf_counter()
    fn()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@decoy("waits only before fn: the clock stops while fn's work is still queued")
def time_on_device(fn, device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@decoy("synchronizes on every device: raises on a machine without CUDA")
def time_on_device(fn, device):
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


@decoy("synchronizes whenever the machine has CUDA, whatever the device timed")
def time_on_device(fn, device):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


@decoy("CUDA events, but returns elapsed_time as it comes: milliseconds")
def time_on_device(fn, device):
    if torch.device(device).type != "cuda":
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end)


@decoy("process_time: the CPU time of this process, not the time that passed")
def time_on_device(fn, device):
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.process_time()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.process_time() - start


@decoy("a warm-up call first: fn runs twice")
def time_on_device(fn, device):
    cuda = torch.device(device).type == "cuda"
    fn()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


@alternative("CUDA events, waited for and converted to seconds; perf_counter elsewhere")
def time_on_device(fn, device):
    if torch.device(device).type != "cuda":
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    torch.cuda.synchronize()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1000.0


@alternative("the current stream's synchronize, and time.monotonic")
def time_on_device(fn, device):
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.current_stream().synchronize()
    start = time.monotonic()
    fn()
    if cuda:
        torch.cuda.current_stream().synchronize()
    return float(time.monotonic() - start)
