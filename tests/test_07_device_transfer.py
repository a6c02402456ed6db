"""Tests for kata 07, moving data between devices: one class per exercise, in learning order.

Most traps of this kata only bite on a GPU, so each exercise also has a test that catches the
wrong answer on the CPU: the "meta" device (shapes and dtypes, no data) exists everywhere, a
dtype change shows on the CPU, and `monkeypatch` can pretend an accelerator, a pinned tensor or
a GPU checkpoint is there. Tests parametrized with GPU_ONLY run where CUDA is present.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import torch

from dojo.stubs import STUB_TAG
from dojo.testing import GPU_ONLY, check, check_tensor, describe, exercise, spy_on_to

META = torch.device("meta")


def _device_of(device: torch.device) -> torch.device:
    """The device a tensor created on `device` reports ("cuda" becomes "cuda:0")."""
    return torch.empty(0, device=device).device


def _skip_float64_on_mps(device: torch.device, dtype: torch.dtype) -> None:
    if device.type == "mps" and dtype == torch.float64:
        pytest.skip("MPS has no float64")


def _history(w) -> str:
    """is_leaf and grad_fn of a tensor, for a message: 'is_leaf=False, grad_fn=MulBackward0'."""
    if not isinstance(w, torch.Tensor):
        return "no autograd history (not a tensor)"
    return f"is_leaf={w.is_leaf}, grad_fn={type(w.grad_fn).__name__ if w.grad_fn is not None else None}"


def _call_with_meta(called: str, fn, *args):
    """fn(*args) for a test whose inputs live on 'meta': an error says what 'meta' stands for."""
    __tracebackhide__ = True
    try:
        return fn(*args)
    except Exception as err:
        if STUB_TAG in str(err):
            raise  # the unfilled stub: reported as "not done yet", not as a failure
        message = f"{called} raised {type(err).__name__}: {err}"
    pytest.fail(
        f"{message}\n('meta' is a device with shapes and dtypes but no data; here it plays the GPU. Keep the "
        "work on the device of the input: move the small tensors to it, never the input to the CPU.)",
        pytrace=False,
    )


@exercise("pick_device")
class TestPickDevice:
    @pytest.mark.parametrize(
        "cuda, mps, expected",
        [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
        ids=["cuda_and_mps", "cuda_only", "mps_only", "neither"],
    )
    def test_prefers_cuda_then_mps_then_the_cpu(self, kata, monkeypatch, cuda, mps, expected):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        if hasattr(torch, "mps") and hasattr(torch.mps, "is_available"):
            monkeypatch.setattr(torch.mps, "is_available", lambda: mps)
        got = kata.pick_device()
        check(
            isinstance(got, torch.device) and got.type == expected,
            f"pick_device() with CUDA {'available' if cuda else 'absent'} and MPS {'available' if mps else 'absent'} "
            f"returned {describe(got)}; expected torch.device('{expected}')",
        )

    def test_returns_a_torch_device_on_this_machine(self, kata):
        got = kata.pick_device()
        check(
            isinstance(got, torch.device),
            f"pick_device() returned {describe(got)}; expected a torch.device (e.g. torch.device('cpu')), not a string",
        )


@exercise("move_and_cast")
class TestMoveAndCast:
    @pytest.mark.parametrize(
        "source, target",
        [
            (torch.uint8, torch.float32),
            (torch.float32, torch.float64),
            (torch.float32, torch.float16),
            (torch.float32, torch.int64),
        ],
        ids=["uint8_to_float32", "float32_to_float64", "float32_to_float16", "float32_to_int64"],
    )
    def test_returns_the_tensor_on_the_device_with_the_dtype(self, kata, device, source, target):
        _skip_float64_on_mps(device, target)
        x = torch.tensor([[0, 1, 2], [3, 4, 255]], dtype=source)
        if source.is_floating_point:
            x = x + torch.tensor([0.25, -0.75, 0.5])  # a cast to an integer type truncates these
        expected = x.to(device, target)
        called = f"move_and_cast(x {source} on cpu, {device.type}, {target})"
        got = kata.move_and_cast(x, device, target)
        check(
            got is not x or x.dtype == target,
            f"{called} returned x itself, still {source}: the converted tensor was made and then thrown away",
        )
        check_tensor(got, expected, called)

    def test_a_transposed_view_keeps_its_values(self, kata, device):
        x = torch.arange(12, dtype=torch.int32).reshape(3, 4).t()  # (4, 3), not contiguous
        expected = x.to(device, torch.float32)
        got = kata.move_and_cast(x, device, torch.float32)
        check_tensor(got, expected, f"move_and_cast(x transposed (4, 3) int32 on cpu, {device.type}, torch.float32)")

    def test_moves_to_another_device(self, kata):
        x = torch.ones(2, 5, dtype=torch.float32)
        got = kata.move_and_cast(x, META, torch.float16)
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.dtype == torch.float16 and got.shape == (2, 5),
            f"move_and_cast(x float32 on cpu, 'meta', torch.float16) returned {describe(got)}; expected a float16 "
            "tensor of shape (2, 5) on device 'meta'"
            + (" (the tensor came back where it was: was the moved one thrown away?)" if got is x else ""),
        )

    @pytest.mark.parametrize(
        "target, dtype",
        [(torch.device("cpu"), torch.float64), (META, torch.float16)],
        ids=["cpu-float64", "meta-float16"],
    )
    def test_the_callers_tensor_is_unchanged(self, kata, target, dtype):
        x = torch.tensor([1.5, 2.5, 3.5])
        kata.move_and_cast(x, target, dtype)
        check(
            x.dtype == torch.float32 and x.device.type == "cpu" and x.tolist() == [1.5, 2.5, 3.5],
            f"after move_and_cast(x, '{target.type}', {dtype}) the caller's x is {describe(x)}; expected it as it "
            "was (float32 [1.5, 2.5, 3.5] on cpu)",
        )


@exercise("normalize_batch")
class TestNormalizeBatch:
    def test_each_channel_is_normalized_on_the_device_of_x(self, kata, device):
        x = torch.tensor([[1.0, 10.0, 100.0], [3.0, 30.0, 300.0], [2.0, 40.0, 0.0]], device=device)
        mean, std = torch.tensor([2.0, 20.0, 200.0]), torch.tensor([1.0, 10.0, 100.0])  # on the CPU
        expected = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 2.0, -2.0]], device=device)
        got = kata.normalize_batch(x, mean, std)
        check_tensor(
            got, expected, f"normalize_batch(x on {device.type}, mean on cpu, std on cpu)", rtol=1e-6, atol=1e-6
        )

    def test_a_batch_of_one(self, kata, device):
        x = torch.tensor([[4.0, -10.0]], device=device)
        mean, std = torch.tensor([2.0, 0.0]), torch.tensor([2.0, 5.0])
        got = kata.normalize_batch(x, mean, std)
        check_tensor(
            got,
            torch.tensor([[1.0, -2.0]], device=device),
            f"normalize_batch(x of shape (1, 2) on {device.type}, mean, std)",
            rtol=1e-6,
            atol=1e-6,
        )

    def test_the_callers_tensors_are_unchanged(self, kata, device):
        x = torch.tensor([[1.0, 10.0], [3.0, 30.0]], device=device)
        mean, std = torch.tensor([2.0, 20.0]), torch.tensor([1.0, 10.0])
        kata.normalize_batch(x, mean, std)
        for name, t, values in [
            ("x", x, [[1.0, 10.0], [3.0, 30.0]]),
            ("mean", mean, [2.0, 20.0]),
            ("std", std, [1.0, 10.0]),
        ]:
            check(
                t.tolist() == values,
                f"after normalize_batch(x on {device.type}, mean, std) the caller's {name} is {describe(t)}; expected "
                f"it as it was, {values}",
            )

    def test_statistics_on_the_cpu_meet_a_batch_on_another_device(self, kata):
        # On meta, mixing devices fails like on CUDA ("Tensor on device cpu is not on the expected device meta!").
        x = torch.empty(8, 3, device=META)
        mean, std = torch.zeros(3), torch.ones(3)
        got = _call_with_meta("normalize_batch(x on 'meta', mean and std on cpu)", kata.normalize_batch, x, mean, std)
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.shape == (8, 3),
            f"normalize_batch(x of shape (8, 3) on 'meta', mean and std on cpu) returned {describe(got)}; expected "
            "a (8, 3) tensor on x's device ('meta')",
        )
        check(
            mean.device.type == "cpu" and std.device.type == "cpu",
            f"after normalize_batch(x on 'meta', mean, std) the caller's mean is {describe(mean)} and std is "
            f"{describe(std)}; expected both left on the cpu",
        )


@exercise("new_weight")
class TestNewWeight:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
    def test_has_the_requested_shape_device_and_dtype(self, kata, device, dtype):
        _skip_float64_on_mps(device, dtype)
        torch.manual_seed(0)
        w = kata.new_weight((4, 5), 0.02, device, dtype)
        check(
            isinstance(w, torch.Tensor) and w.shape == (4, 5) and w.device == _device_of(device) and w.dtype == dtype,
            f"new_weight((4, 5), 0.02, {device.type}, {dtype}) returned {describe(w)}; expected a {dtype} tensor "
            f"of shape (4, 5) on {device.type}",
        )

    # float64 on the CPU catches `.to(device, dtype)` after requires_grad=True: the cast is an operation.
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
    def test_is_a_leaf_that_requires_grad(self, kata, device, dtype):
        _skip_float64_on_mps(device, dtype)
        torch.manual_seed(0)
        w = kata.new_weight((4, 5), 0.02, device, dtype)
        check(
            isinstance(w, torch.Tensor) and w.requires_grad and w.is_leaf,
            f"new_weight((4, 5), 0.02, {device.type}, {dtype}) returned {describe(w)} with "
            f"{_history(w)}; expected a leaf that requires grad "
            "(created where it lives, gradients turned on last)",
        )

    def test_is_a_leaf_when_created_on_another_device(self, kata):
        # `.to('cpu')` of a CPU tensor is a no-op, so moving after requires_grad=True hides on the CPU; not on meta.
        w = kata.new_weight((5, 2), 0.1, META, torch.float32)
        check(
            isinstance(w, torch.Tensor) and w.device == META and w.requires_grad and w.is_leaf,
            f"new_weight((5, 2), 0.1, 'meta', torch.float32) returned {describe(w)} with "
            f"{_history(w)}; expected a leaf on 'meta' that "
            "requires grad: a tensor moved by .to() after requires_grad=True is not a leaf",
        )

    def test_backward_fills_its_grad(self, kata, device):
        torch.manual_seed(0)
        w = kata.new_weight((3, 2), 0.02, device, torch.float32)
        (w * 3.0).sum().backward()
        check(
            isinstance(w.grad, torch.Tensor),
            f"after (w * 3).sum().backward() for w = new_weight((3, 2), 0.02, {device.type}, float32), w.grad is "
            f"{describe(w.grad)}; expected a tensor of 3s. Only leaves get a .grad; is w a leaf?",
        )
        check_tensor(w.grad, torch.full((3, 2), 3.0, device=device), "w.grad after (w * 3).sum().backward()")

    def test_values_come_from_the_global_random_generator(self, kata, device):
        torch.manual_seed(1)
        first = kata.new_weight((3, 4), 1.0, device, torch.float32)
        second = kata.new_weight((3, 4), 1.0, device, torch.float32)
        torch.manual_seed(1)
        again = kata.new_weight((3, 4), 1.0, device, torch.float32)
        tensors = all(isinstance(w, torch.Tensor) for w in (first, second, again))
        check(
            tensors
            and torch.equal(first.detach(), again.detach())
            and not torch.equal(first.detach(), second.detach()),
            f"new_weight((3, 4), 1.0, {device.type}, float32) twice after torch.manual_seed(1), then once more after "
            "the same seed: expected the first and third to be equal and the second different (random values from "
            "the global generator, a new draw on each call)",
        )

    def test_values_have_mean_zero_and_the_requested_std(self, kata, device):
        torch.manual_seed(0)
        std = 0.02
        w = kata.new_weight((64, 64), std, device, torch.float32)
        got = w.detach().cpu().double()
        mean, spread = got.mean().item(), got.std().item()
        # 4096 samples: the sample std is within a few percent of std, the mean within a few std/64.
        check(
            abs(mean) < 0.1 * std and 0.9 * std < spread < 1.1 * std,
            f"new_weight((64, 64), {std}, {device.type}, float32) has values of mean {mean:.5f} and std {spread:.5f}; "
            f"expected normal values with mean 0 and std {std}",
        )


class _OnCuda(torch.Tensor):
    """A CPU tensor that plays one in GPU memory for to_numpy, where there is no GPU: it reports
    device cuda:0, and NumPy refuses it with the error a real CUDA tensor gets, until a copy to
    the host (cpu(), to("cpu")...) gives back a plain tensor. Other operations (detach, clone)
    keep the pretence, as they keep a real tensor on its GPU."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        getter_of = getattr(func, "__self__", None)
        if getter_of is torch.Tensor.device:
            return torch.device("cuda", 0)
        if getter_of is torch.Tensor.is_cuda:
            return True
        forced = kwargs.get("force") or (func is torch.Tensor.numpy and len(args) > 1 and args[1])
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and not forced:
            raise TypeError(
                "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host "
                "memory first."
            )
        out = super().__torch_function__(func, types, args, kwargs)
        if func is torch.Tensor.cpu or (func is torch.Tensor.to and _targets_the_cpu(args, kwargs)):
            out = out.as_subclass(torch.Tensor)
        return out


def _targets_the_cpu(args, kwargs) -> bool:
    """Whether a Tensor.to(*args, **kwargs) call moves its tensor to the CPU."""
    for arg in (*args[1:], kwargs.get("device"), kwargs.get("other")):
        if isinstance(arg, (str, torch.device)) and torch.device(arg).type == "cpu":
            return True
        if isinstance(arg, torch.Tensor) and not isinstance(arg, _OnCuda) and arg.device.type == "cpu":
            return True
    return False


@exercise("to_numpy")
class TestToNumpy:
    @pytest.mark.parametrize(
        "dtype, np_dtype",
        [(torch.float32, np.float32), (torch.int64, np.int64), (torch.float64, np.float64), (torch.int16, np.int16)],
        ids=str,
    )
    def test_returns_an_array_with_the_values_shape_and_dtype(self, kata, device, dtype, np_dtype):
        _skip_float64_on_mps(device, dtype)
        t = torch.tensor([[1, -2, 3], [40, 50, -60]], dtype=dtype, device=device)
        got = kata.to_numpy(t)
        want = np.array([[1, -2, 3], [40, 50, -60]], dtype=np_dtype)
        check(
            isinstance(got, np.ndarray), f"to_numpy({describe(t)}) returned {describe(got)}; expected a numpy.ndarray"
        )
        check(
            got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want),
            f"to_numpy({describe(t)}) returned {describe(got)}; expected {describe(want)}",
        )

    def test_works_on_a_result_that_requires_grad(self, kata, device):
        w = torch.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
        out = w * 2  # like a model's output: part of the autograd graph
        got = kata.to_numpy(out)
        check(
            isinstance(got, np.ndarray) and got.dtype == np.float32 and np.allclose(got, [2.0, -4.0, 6.0]),
            f"to_numpy(w * 2 on {device.type}, requires_grad=True) returned {describe(got)}; expected a float32 "
            "array [2, -4, 6]",
        )

    def test_a_0d_tensor_gives_a_0d_array(self, kata, device):
        t = torch.tensor(2.5, device=device, requires_grad=True) * 2
        got = kata.to_numpy(t)
        check(
            isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float32 and float(got) == 5.0,
            f"to_numpy(a 0-d float32 tensor 5.0 on {device.type} that requires grad) returned {describe(got)}; "
            "expected a 0-d float32 numpy.ndarray holding 5.0",
        )

    def test_the_callers_tensor_is_unchanged(self, kata):
        w = torch.tensor([1.0, -2.0], requires_grad=True)  # a leaf
        out = w * 3  # part of a graph
        kata.to_numpy(w)
        kata.to_numpy(out)
        check(
            w.requires_grad and w.is_leaf,
            f"after to_numpy(w), the caller's w (a leaf that required grad) is {describe(w)} with {_history(w)}; "
            "expected it to still require grad",
        )
        check(
            out.requires_grad and out.grad_fn is not None,
            f"after to_numpy(out), the caller's out = w * 3 is {describe(out)} with {_history(out)}; expected it "
            "still part of its graph (grad_fn=MulBackward0)",
        )
        out.sum().backward()
        check_tensor(w.grad, torch.full((2,), 3.0), "w.grad after to_numpy(out) and out.sum().backward()")

    def test_a_tensor_in_gpu_memory_is_copied_to_the_host(self, kata):
        t = torch.linspace(0, 1, 5).as_subclass(_OnCuda)  # plays a CUDA tensor: see _OnCuda
        called = "to_numpy(t, a float32 tensor [0, 0.25, 0.5, 0.75, 1] in GPU memory)"
        try:
            got = kata.to_numpy(t)
        except TypeError as err:
            if "device type tensor to numpy" not in str(err):
                raise
            pytest.fail(
                f"{called} raised TypeError: {err}\n(here a CPU tensor plays the GPU one, with its real error: NumPy "
                "only reads host memory, so the values must be copied there first)",
                pytrace=False,
            )
        check(
            type(got) is np.ndarray and got.dtype == np.float32 and np.allclose(got, np.linspace(0, 1, 5)),
            f"{called} returned {describe(got)}; expected the float32 array [0, 0.25, 0.5, 0.75, 1]",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_a_cuda_tensor_comes_back_through_host_memory(self, kata, device):
        # t.numpy() and t.detach().numpy() raise here: "can't convert cuda:0 device type tensor to numpy".
        t = torch.linspace(0, 1, 5, device=device)
        got = kata.to_numpy(t)
        check(
            isinstance(got, np.ndarray) and got.dtype == np.float32 and np.allclose(got, np.linspace(0, 1, 5)),
            f"to_numpy({describe(t)}) returned {describe(got)}; expected the float32 array [0, 0.25, 0.5, 0.75, 1]",
        )


class _Meta:
    """A non-tensor object in a batch: it must come back as the very same object."""

    def __repr__(self) -> str:
        return "<meta object>"


def _batch() -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(2, 3, 4, 4, generator=g),
        "label": torch.tensor([3, 7]),
        "boxes": [torch.rand(1, 4, generator=g), torch.rand(2, 4, generator=g)],
        "extra": (torch.tensor([True, False]), "train", 5),
        "paths": ["a.png", "b.png"],
        "weight": None,
        "info": ("id-7", {"meta": _Meta(), "scale": torch.tensor(5, dtype=torch.int32)}),
        "empty": [],
    }


def _tensors(obj, path: str = "batch"):
    """(path, tensor) for every tensor in a nested batch, e.g. ("batch['boxes'][1]", tensor)."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f"{path}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{path}[{i}]")


def _check_non_blocking(calls: dict[int, list[bool]], sources: list, pinned: set[str]) -> None:
    """Each (path, tensor) of `sources` (listed before the call) was moved with the right flag."""
    __tracebackhide__ = True
    for path, source in sources:
        flags = calls.get(id(source))
        check(flags, f"batch_to_device did not call Tensor.to on {path}; expected each tensor moved with Tensor.to")
        want = path in pinned
        state = "pinned" if want else "not pinned"
        check(
            all(flag == want for flag in flags),
            f"batch_to_device moved {path} ({state}) with non_blocking={flags[-1]}; expected non_blocking={want}: "
            "asynchronous copies need pinned memory (tensor.is_pinned())",
        )


@exercise("batch_to_device")
class TestBatchToDevice:
    def test_every_tensor_is_moved_even_nested_ones(self, kata):
        got = kata.batch_to_device(_batch(), META)
        moved = dict(_tensors(got))
        for path, _ in _tensors(_batch()):
            check(path in moved, f"batch_to_device(batch, 'meta') lost {path}; got {describe(got)}")
            check(
                moved[path].device == META,
                f"batch_to_device(batch, 'meta'): {path} is {describe(moved[path])}; expected it on 'meta'",
            )

    def test_values_and_dtypes_are_unchanged(self, kata, device):
        batch = _batch()
        got = kata.batch_to_device(batch, device)
        moved = dict(_tensors(got))
        for path, source in _tensors(batch):
            check(path in moved, f"batch_to_device(batch, {device.type}) lost {path}; got {describe(got)}")
            check_tensor(moved[path], source.to(device), f"batch_to_device(batch, {device.type}): {path}")

    def test_containers_keep_their_types_and_keys(self, kata):
        got = kata.batch_to_device(_batch(), META)
        check(
            type(got) is dict and list(got) == list(_batch()),
            f"batch_to_device(dict batch, 'meta') returned {describe(got)}; expected a dict with the keys "
            f"{list(_batch())} in that order",
        )
        for key, kind in [("boxes", list), ("extra", tuple), ("paths", list)]:
            check(
                type(got[key]) is kind and len(got[key]) == len(_batch()[key]),
                f"batch_to_device(batch, 'meta')[{key!r}] is {describe(got[key])}; expected a {kind.__name__} of "
                f"{len(_batch()[key])} items, like the input",
            )

    def test_non_tensors_are_passed_through(self, kata):
        got = kata.batch_to_device(_batch(), META)
        extra = got["extra"]
        check(
            extra[1] == "train" and type(extra[1]) is str and extra[2] == 5 and type(extra[2]) is int,
            f"batch_to_device(batch, 'meta')['extra'] is {describe(extra)}; expected (tensor, 'train', 5): "
            "a string and an int are returned as they are",
        )
        check(
            got["paths"] == ["a.png", "b.png"] and got["weight"] is None,
            f"batch_to_device(batch, 'meta') gave paths={describe(got['paths'])}, weight={describe(got['weight'])}; "
            "expected ['a.png', 'b.png'] and None unchanged",
        )

    def test_non_tensors_are_the_same_objects(self, kata):
        batch = _batch()
        got = kata.batch_to_device(batch, META)
        info = got.get("info") if isinstance(got, dict) else None
        inner = info[1] if isinstance(info, tuple) and len(info) == 2 and isinstance(info[1], dict) else {}
        check(
            isinstance(info, tuple) and info[0] == "id-7" and inner.get("meta") is batch["info"][1]["meta"],
            f"batch_to_device(batch, 'meta')['info'] is {describe(info)}; expected ('id-7', {{'meta': the very same "
            "object as in the input, 'scale': the tensor moved}})",
        )
        check(
            got["empty"] == [] and type(got["empty"]) is list,
            f"batch_to_device(batch, 'meta')['empty'] is {describe(got['empty'])}; expected an empty list",
        )

    def test_the_callers_batch_is_unchanged(self, kata):
        batch = _batch()
        before = list(_tensors(batch))
        kata.batch_to_device(batch, META)
        after = list(_tensors(batch))
        check(
            [p for p, _ in after] == [p for p, _ in before] and all(a is b for (_, a), (_, b) in zip(after, before)),
            "after batch_to_device(batch, 'meta') the caller's batch holds other objects than before; expected its "
            "containers untouched (build new containers instead of assigning into the old ones)",
        )
        for path, t in _tensors(batch):
            check(
                t.device.type == "cpu",
                f"after batch_to_device(batch, 'meta') the caller's {path} is {describe(t)}; expected the caller's "
                "batch untouched (build new containers instead of assigning into the old ones)",
            )

    def test_ordinary_memory_is_moved_without_non_blocking(self, kata, monkeypatch):
        batch = _batch()
        sources = list(_tensors(batch))
        calls = spy_on_to(monkeypatch)
        kata.batch_to_device(batch, META)
        _check_non_blocking(calls, sources, pinned=set())

    def test_pinned_memory_is_moved_with_non_blocking(self, kata, monkeypatch):
        # Pinned memory needs CUDA; here is_pinned() pretends two tensors are pinned (see the cuda test below).
        batch = _batch()
        pinned = {"batch['image']", "batch['boxes'][1]"}
        pinned_ids = {id(t) for path, t in _tensors(batch) if path in pinned}
        original = torch.Tensor.is_pinned
        monkeypatch.setattr(
            torch.Tensor, "is_pinned", lambda self, *a, **k: id(self) in pinned_ids or original(self, *a, **k)
        )
        sources = list(_tensors(batch))
        calls = spy_on_to(monkeypatch)
        kata.batch_to_device(batch, META)
        _check_non_blocking(calls, sources, pinned)

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_really_pinned_memory_is_copied_asynchronously_and_arrives(self, kata, monkeypatch, device):
        batch = _batch()
        batch["image"] = batch["image"].pin_memory()
        batch["boxes"][1] = batch["boxes"][1].pin_memory()
        sources = list(_tensors(batch))
        calls = spy_on_to(monkeypatch)
        got = kata.batch_to_device(batch, device)
        torch.cuda.synchronize()  # asynchronous copies must be finished before the values are read
        _check_non_blocking(calls, sources, pinned={"batch['image']", "batch['boxes'][1]"})
        moved = dict(_tensors(got))
        for path, source in sources:
            check_tensor(
                moved.get(path), source.to(device), f"batch_to_device(batch with pinned tensors, cuda): {path}"
            )


def _save_as_if_from_cuda(obj, path, monkeypatch) -> None:
    """torch.save `obj` with every storage tagged "cuda:0", as a GPU machine writes it.

    A checkpoint stores each storage's bytes plus a location tag; the bytes are the same wherever
    they came from, so tagging CPU storages "cuda:0" gives the file a GPU machine would write.
    """
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(obj, path)


_RAN_CODE: list[str] = []


def _code_in_the_checkpoint() -> str:
    _RAN_CODE.append("ran")
    return "this ran while unpickling"


class _RunsCodeWhenUnpickled:
    """Pickles as "call _code_in_the_checkpoint()": what a malicious checkpoint does with os.system."""

    def __reduce__(self):
        return (_code_in_the_checkpoint, ())


@exercise("load_to_cpu")
class TestLoadToCpu:
    def test_a_checkpoint_saved_on_a_gpu_loads_onto_the_cpu(self, kata, monkeypatch, tmp_path):
        state = {"weight": torch.arange(6.0).reshape(2, 3), "bias": torch.tensor([0.5, -0.5])}
        path = tmp_path / "from_gpu.pt"
        _save_as_if_from_cuda(state, path, monkeypatch)
        got = kata.load_to_cpu(str(path))
        check(
            isinstance(got, dict) and set(got) == {"weight", "bias"},
            f"load_to_cpu(checkpoint of {{'weight', 'bias'}} saved from cuda:0) returned {describe(got)}",
        )
        for key, want in state.items():
            check_tensor(got[key], want, f"load_to_cpu(checkpoint saved from cuda:0)[{key!r}]")

    def test_a_training_checkpoint_round_trips(self, kata, tmp_path):
        g = torch.Generator().manual_seed(0)
        state = {
            "model": {"fc.weight": torch.randn(3, 2, generator=g), "fc.bias": torch.zeros(3)},
            "optimizer": {"lr": 0.1, "step": torch.tensor(3)},
            "epoch": 7,
            "name": "run-1",
        }
        path = tmp_path / "checkpoint.pt"
        torch.save(state, path)
        got = kata.load_to_cpu(str(path))
        check(
            isinstance(got, dict)
            and got.get("epoch") == 7
            and got.get("name") == "run-1"
            and got["optimizer"]["lr"] == 0.1,
            f"load_to_cpu(training checkpoint) returned {describe(got)}; expected the saved dict back",
        )
        check_tensor(got["model"]["fc.weight"], state["model"]["fc.weight"], "load_to_cpu(...)['model']['fc.weight']")
        check_tensor(got["optimizer"]["step"], torch.tensor(3), "load_to_cpu(...)['optimizer']['step']")

    def test_a_checkpoint_that_runs_code_is_refused(self, kata, tmp_path):
        path = tmp_path / "untrusted.pt"
        torch.save({"weight": torch.ones(2), "config": _RunsCodeWhenUnpickled()}, path)
        _RAN_CODE.clear()
        with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
            got = kata.load_to_cpu(str(path))
            ran = " and ran the code hidden in it" if _RAN_CODE else ""
            check(
                False,
                f"load_to_cpu(checkpoint holding a pickled function call) returned {describe(got)}{ran}; expected "
                "pickle.UnpicklingError ('Weights only load failed')",
            )
        check(
            not _RAN_CODE,
            "load_to_cpu(checkpoint holding a pickled function call) ran the code hidden in it before raising; "
            "expected it refused before any of its code runs",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_tensors_saved_from_the_gpu_come_back_on_the_cpu(self, kata, device, tmp_path):
        state = {"weight": torch.arange(6.0, device=device).reshape(2, 3), "step": 4}
        path = tmp_path / "cuda.pt"
        torch.save(state, path)
        got = kata.load_to_cpu(str(path))
        check(
            isinstance(got, dict) and got.get("step") == 4,
            f"load_to_cpu(checkpoint saved on cuda) returned {describe(got)}",
        )
        check_tensor(got["weight"], torch.arange(6.0).reshape(2, 3), "load_to_cpu(checkpoint saved on cuda)['weight']")


class _FakeCuda:
    """A CPU stand-in for one CUDA stream, to test the timing logic where there is no GPU.

    Like real kernels, queued work returns at once and the "GPU" works through its queue in the
    background: `busy_until` is when it will be done. `torch.cuda.synchronize()` waits for that;
    an event records the moment the queue reaches it, as a real CUDA event does.
    """

    def __init__(self) -> None:
        self.busy_until = time.perf_counter()

    def queue(self, seconds: float) -> None:
        self.busy_until = max(time.perf_counter(), self.busy_until) + seconds

    def synchronize(self, *args, **kwargs) -> None:
        _sleep_until(self.busy_until)

    def install(self, monkeypatch) -> None:
        gpu = self

        class FakeEvent:
            def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False) -> None:
                self.at = None

            def record(self, stream=None) -> None:
                self.at = max(time.perf_counter(), gpu.busy_until)

            def query(self) -> bool:
                return self.at is not None and time.perf_counter() >= self.at

            def synchronize(self) -> None:
                _sleep_until(self.at)

            def elapsed_time(self, end: FakeEvent) -> float:
                if not (self.query() and end.query()):
                    raise RuntimeError("Both events must be completed before calculating elapsed time.")
                return (end.at - self.at) * 1000.0  # milliseconds, like torch.cuda.Event

        class FakeStream:
            def synchronize(self) -> None:
                gpu.synchronize()

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "synchronize", gpu.synchronize)
        monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: FakeStream())
        monkeypatch.setattr(torch.cuda, "default_stream", lambda device=None: FakeStream())
        if hasattr(torch, "accelerator") and hasattr(torch.accelerator, "synchronize"):
            monkeypatch.setattr(torch.accelerator, "synchronize", gpu.synchronize)


def _sleep_until(moment: float | None) -> None:
    if moment is not None:
        time.sleep(max(0.0, moment - time.perf_counter()))


class _CudaCalled(RuntimeError):
    """Raised by a CUDA call in a test that plays a machine without CUDA."""


def _no_cuda(monkeypatch) -> None:
    """A machine without CUDA (whatever this one has): every CUDA call raises, as it does there."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("synchronize", "Event", "current_stream", "default_stream", "Stream"):

        def refuse(*args, name=name, **kwargs):
            raise _CudaCalled(f"torch.cuda.{name}")

        monkeypatch.setattr(torch.cuda, name, refuse)


def _timing_symptom(got, seconds: float, queued: bool = True) -> str:
    """What is wrong with a timing `got` of work that takes `seconds`, where the test can tell."""
    if not isinstance(got, float):
        return "expected a float, in seconds"
    if 500 * seconds <= got <= 5000 * seconds:
        return "that is about 1000 times too large: milliseconds? The result is in seconds"
    if got < 0.5 * seconds and not queued:
        return "less than fn spent sleeping: the clock must count the time that passes, not the CPU's work"
    if got < 0.5 * seconds:
        return (
            "far less than the work takes: the clock stopped while the work was still queued (fn() returns as "
            "soon as its work is queued)"
        )
    return ""


def _fake_cuda(monkeypatch) -> _FakeCuda:
    gpu = _FakeCuda()
    gpu.install(monkeypatch)
    return gpu


def _event_seconds(fn) -> float:
    """Trusted GPU time of fn(), by CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0


def _matmul_work(device):
    """Eight 4096x4096 matmuls (tens of milliseconds on an H100), warmed up."""
    torch.manual_seed(0)
    a, b = torch.randn(4096, 4096, device=device), torch.randn(4096, 4096, device=device)
    c = torch.empty_like(a)

    def work() -> None:
        for _ in range(8):
            torch.matmul(a, b, out=c)

    work()
    torch.cuda.synchronize()  # warm-up: cuBLAS setup and kernel selection stay out of the timings
    return work


@exercise("time_on_device")
class TestTimeOnDevice:
    def test_times_one_call_on_the_cpu_in_seconds(self, kata, monkeypatch):
        _no_cuda(monkeypatch)
        calls = []
        got = cuda_call = None
        try:
            got = kata.time_on_device(lambda: (calls.append(1), time.sleep(0.05)), torch.device("cpu"))
        except _CudaCalled as err:
            cuda_call = str(err)
        check(
            cuda_call is None,
            f"time_on_device(fn, cpu) on a machine without CUDA called {cuda_call}, which raises there; expected no "
            "CUDA call at all for a CPU device",
        )
        check(
            len(calls) == 1,
            f"time_on_device(fn, cpu) called fn {len(calls)} times; expected exactly once",
        )
        check(
            isinstance(got, float) and 0.04 <= got < 0.5,
            f"time_on_device(fn sleeping 0.05 s, cpu) returned {describe(got)}; expected about 0.05 (seconds, a float)"
            + (f": {_timing_symptom(got, 0.05, queued=False)}" if _timing_symptom(got, 0.05, queued=False) else ""),
        )

    def test_a_cpu_timing_leaves_cuda_alone_where_cuda_is_present(self, kata, monkeypatch):
        _no_cuda(monkeypatch)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, busy with other work
        got = cuda_call = None
        try:
            got = kata.time_on_device(lambda: time.sleep(0.02), torch.device("cpu"))
        except _CudaCalled as err:
            cuda_call = str(err)
        check(
            cuda_call is None,
            f"time_on_device(fn, cpu) on a machine with CUDA called {cuda_call}; expected no CUDA call at all for a "
            "CPU device: the CPU's work is done when fn() returns, and waiting for the GPU would count its "
            "unrelated work (decide by the device asked for, not by what the machine has)",
        )
        check(
            isinstance(got, float) and 0.015 <= got < 0.5,
            f"time_on_device(fn sleeping 0.02 s, cpu) returned {describe(got)}; expected about 0.02 (seconds, a float)",
        )

    def test_waits_for_the_queued_work_before_stopping_the_clock(self, kata, monkeypatch):
        # A fake CUDA (see _FakeCuda): fn() only queues 0.1 s of work, as a real kernel launch does.
        gpu = _fake_cuda(monkeypatch)
        calls = []
        got = kata.time_on_device(lambda: (calls.append(1), gpu.queue(0.1)), torch.device("cuda"))
        check(len(calls) == 1, f"time_on_device(fn, cuda) called fn {len(calls)} times; expected exactly once")
        check(
            isinstance(got, float) and 0.08 <= got < 0.5,
            f"time_on_device(fn queueing 0.1 s of GPU work, cuda) returned {describe(got)}; expected about 0.1"
            + (f": {_timing_symptom(got, 0.1)}" if _timing_symptom(got, 0.1) else ""),
        )

    def test_work_queued_before_the_call_is_not_counted(self, kata, monkeypatch):
        gpu = _fake_cuda(monkeypatch)
        gpu.queue(0.3)  # someone else's work, still running when time_on_device starts
        got = kata.time_on_device(lambda: gpu.queue(0.05), torch.device("cuda"))
        why = _timing_symptom(got, 0.05) or (
            "it counted the earlier work too (the clock started while the GPU was still busy with it)"
            if got >= 0.2
            else "measured from the end of the earlier work to the end of fn's work"
        )
        check(
            isinstance(got, float) and 0.04 <= got < 0.2,
            f"time_on_device(fn queueing 0.05 s, cuda) with 0.3 s of earlier work still queued returned {describe(got)}; "
            f"expected about 0.05: {why}",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_a_large_matmul_takes_as_long_as_cuda_events_say(self, kata, device):
        work = _matmul_work(device)
        reference = sorted(_event_seconds(work) for _ in range(3))[1]
        got = kata.time_on_device(work, device)
        check(
            isinstance(got, float) and 0.5 * reference <= got <= 5 * reference + 0.05,
            f"time_on_device(eight 4096x4096 matmuls, cuda) returned {describe(got)}; CUDA events measured "
            f"{reference:.4f} s. A much smaller time measured only the kernel launches: synchronize before reading the clock",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_earlier_gpu_work_is_not_counted(self, kata, device):
        work = _matmul_work(device)
        reference = _event_seconds(work)
        small = torch.zeros(16, device=device)
        work()  # queued, not waited for: still running when time_on_device starts
        work()
        got = kata.time_on_device(lambda: small.add_(1), device)
        check(
            isinstance(got, float) and got < 0.5 * reference,
            f"time_on_device(one tiny add, cuda) with {2 * reference:.4f} s of matmuls still queued returned "
            f"{describe(got)}; expected far less than {reference:.4f}: synchronize before starting the clock",
        )
