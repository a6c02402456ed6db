"""Tests for kata 03, NumPy bridges: one class per exercise, in learning order.

Sharing is checked by behaviour (write on one side, read on the other) and by `np.shares_memory`,
whose answer does not depend on how the learner built the result. Every input layout a docstring
allows is tried (C order, Fortran order, a strided view that starts inside a larger array), since
several wrong answers share memory for one layout and copy for another. Expected values are built
before the call, from NumPy's own copy of the input.
"""

import numpy as np
import pytest
import torch

from dojo.stubs import STUB_TAG
from dojo.testing import GPU_ONLY, check, check_tensor, describe, exercise

META = torch.device("meta")

# Non-float32 dtypes too: a float32-only answer (torch.Tensor(arr), .float()) must show.
DTYPES = [np.float64, np.float32, np.int32, np.uint8]


def sample(dtype=np.float64, shape=(2, 3)) -> np.ndarray:
    """A small C-order array of distinct values 1, 2, 3, ... (so a reversal or a mix-up shows)."""
    return (np.arange(int(np.prod(shape))) + 1).astype(dtype).reshape(shape)


# Array layouts of shape (2, 3) that a tensor can describe. The offset view starts at element
# [1, 2] of a (4, 7) array and takes every other column: its data pointer is not the buffer's start.
LAYOUTS = {
    "c_order": lambda dtype: sample(dtype),
    "fortran_order": lambda dtype: np.asfortranarray(sample(dtype)),
    "offset_strided_view": lambda dtype: sample(dtype, (4, 7))[1:3, 2::2],
}
LAYOUT_IDS = list(LAYOUTS)


def layout(name: str, dtype=np.float64) -> np.ndarray:
    return LAYOUTS[name](dtype)


def name_of(arr: np.ndarray, layout_name: str | None = None) -> str:
    """How a message names an input array: 'float64 array of shape (2, 3), Fortran order'."""
    text = f"{arr.dtype.name} array of shape {arr.shape}"
    if layout_name:
        text += ", " + layout_name.replace("_", " ").replace("fortran", "Fortran").replace("c order", "C order")
    return text


def torch_dtype(dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype)).dtype


def shares(arr: np.ndarray, t) -> bool:
    """Whether a returned CPU tensor overlaps `arr` in memory (False for anything not a tensor)."""
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
        return False
    return bool(np.shares_memory(arr, t.detach().numpy()))


def corners(shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The first and the last index of an array of `shape`."""
    return tuple(0 for _ in shape), tuple(s - 1 for s in shape)


def error_from(fn):
    """fn()'s exception, or None if it returned; an unfilled stub's NotImplementedError stays what it is."""
    try:
        fn()
    except Exception as err:
        if STUB_TAG in str(err):
            raise
        return err
    return None


@exercise("shared_tensor")
class TestSharedTensor:
    @pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
    def test_keeps_the_shape_dtype_and_values_of_the_array(self, kata, dtype):
        arr = sample(dtype)
        expected = torch.from_numpy(arr.copy())
        check_tensor(kata.shared_tensor(arr), expected, f"shared_tensor({name_of(arr)})")

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_keeps_the_values_of_any_layout(self, kata, name):
        arr = layout(name)
        expected = torch.from_numpy(arr.copy())
        check_tensor(kata.shared_tensor(arr), expected, f"shared_tensor({name_of(arr, name)})")

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_the_tensor_lies_on_the_arrays_memory(self, kata, name):
        arr = layout(name)
        got = kata.shared_tensor(arr)
        check(
            shares(arr, got),
            f"shared_tensor({name_of(arr, name)}) returned {describe(got)}, which does not overlap the array "
            "in memory (np.shares_memory is False); expected a tensor on the array's own memory, not a copy",
        )

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_a_later_write_into_the_array_shows_in_the_tensor(self, kata, name):
        arr = layout(name)
        got = kata.shared_tensor(arr)
        first, last = corners(arr.shape)
        arr[first], arr[last] = -7, -8
        check(
            isinstance(got, torch.Tensor)
            and got.shape == arr.shape
            and got[first].item() == -7
            and got[last].item() == -8,
            f"t = shared_tensor({name_of(arr, name)}); then arr{list(first)} = -7 and arr{list(last)} = -8: t is "
            f"{describe(got)}; expected those two elements to be -7 and -8 too (t does not follow the array)",
        )

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_a_write_into_the_tensor_shows_in_the_array(self, kata, name):
        arr = layout(name)
        got = kata.shared_tensor(arr)
        check(isinstance(got, torch.Tensor), f"shared_tensor(arr) returned {describe(got)}; expected a tensor")
        first, last = corners(arr.shape)
        got[first], got[last] = 100, 200
        check(
            arr[first] == 100 and arr[last] == 200,
            f"t = shared_tensor({name_of(arr, name)}); then t{list(first)} = 100 and t{list(last)} = 200: the "
            f"array is {arr.tolist()}; expected those two elements to be 100 and 200 (the tensor has memory "
            "of its own)",
        )


@exercise("independent_tensor")
class TestIndependentTensor:
    @pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
    def test_keeps_the_shape_dtype_and_values_of_the_array(self, kata, dtype):
        arr = sample(dtype)
        expected = torch.from_numpy(arr.copy())
        check_tensor(kata.independent_tensor(arr), expected, f"independent_tensor({name_of(arr)})")

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_keeps_the_values_of_any_layout(self, kata, name):
        arr = layout(name)
        expected = torch.from_numpy(arr.copy())
        check_tensor(kata.independent_tensor(arr), expected, f"independent_tensor({name_of(arr, name)})")

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_the_tensor_does_not_overlap_the_array(self, kata, name):
        arr = layout(name)
        got = kata.independent_tensor(arr)
        check(
            isinstance(got, torch.Tensor) and not shares(arr, got),
            f"independent_tensor({name_of(arr, name)}) returned {describe(got)}, which np.shares_memory says "
            "overlaps the array; expected a tensor with memory of its own",
        )

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_a_later_write_into_the_array_leaves_the_tensor_alone(self, kata, name):
        arr = layout(name)
        before = arr.tolist()
        got = kata.independent_tensor(arr)
        arr[...] = 0  # the owner reuses its buffer, as a data loader does for the next batch
        check(
            isinstance(got, torch.Tensor) and got.tolist() == before,
            f"t = independent_tensor({name_of(arr, name)}), then arr[...] = 0: t is {describe(got)}; expected "
            f"it to keep {before} (t follows the array's memory)",
        )

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_a_write_into_the_tensor_leaves_the_array_alone(self, kata, name):
        arr = layout(name, np.int32)
        before = arr.tolist()
        got = kata.independent_tensor(arr)
        check(isinstance(got, torch.Tensor), f"independent_tensor(arr) returned {describe(got)}; expected a tensor")
        got.zero_()
        check(
            arr.tolist() == before,
            f"t = independent_tensor({name_of(arr, name)}), then t.zero_(): the array is {arr.tolist()}; expected "
            f"it unchanged, {before} (the tensor lies on the array's memory)",
        )


@exercise("float32_tensor")
class TestFloat32Tensor:
    @staticmethod
    def call(kata, arr, what):
        got = kata.float32_tensor(arr)
        check(
            isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], torch.Tensor),
            f"{what} returned {describe(got)}; expected a pair (tensor, shares)",
        )
        return got

    CONVERTED = [np.float64, np.float16, np.int64, np.int32, np.uint8]

    @pytest.mark.parametrize("dtype", [np.float32, *CONVERTED], ids=lambda d: np.dtype(d).name)
    def test_returns_the_values_as_float32(self, kata, dtype):
        arr = sample(dtype)
        if np.dtype(dtype).kind == "f":
            arr /= 4  # quarters are exact in every float dtype here
        expected = torch.from_numpy(arr.astype(np.float32))
        what = f"float32_tensor({name_of(arr)})"
        t, _ = self.call(kata, arr, what)
        check_tensor(t, expected, f"{what}[0]")

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_a_float32_array_of_any_layout_is_used_without_a_copy(self, kata, name):
        arr = layout(name, np.float32)
        what = f"float32_tensor({name_of(arr, name)})"
        expected = torch.from_numpy(arr.copy())
        t, _ = self.call(kata, arr, what)
        check_tensor(t, expected, f"{what}[0]")
        check(
            shares(arr, t),
            f"{what} returned t = {describe(t)} with memory of its own; expected t on the array's memory: a float32 "
            "array needs no conversion, so no copy",
        )

    @pytest.mark.parametrize("name", LAYOUT_IDS)
    def test_a_later_change_of_a_float32_array_shows_in_the_tensor(self, kata, name):
        arr = layout(name, np.float32)
        what = f"float32_tensor({name_of(arr, name)})"
        t, _ = self.call(kata, arr, what)
        first, last = corners(arr.shape)
        arr[first], arr[last] = -1.5, -2.5
        check(
            t.shape == arr.shape and t[first].item() == -1.5 and t[last].item() == -2.5,
            f"t, _ = {what}; then arr{list(first)} = -1.5 and arr{list(last)} = -2.5: t is {describe(t)}; "
            "expected those two elements to be -1.5 and -2.5 too (t does not follow the array)",
        )

    @pytest.mark.parametrize("dtype", CONVERTED, ids=lambda d: np.dtype(d).name)
    def test_a_later_change_of_another_dtype_leaves_the_tensor_alone(self, kata, dtype):
        arr = layout("c_order", dtype)
        expected = torch.from_numpy(arr.astype(np.float32))
        what = f"float32_tensor({name_of(arr)})"
        t, _ = self.call(kata, arr, what)
        arr[...] = 0
        check_tensor(t, expected, f"t, _ = {what}, then arr[...] = 0: t")

    CASES = {
        **{f"float32_{name}": (name, np.float32) for name in LAYOUT_IDS},
        **{np.dtype(d).name: ("c_order", d) for d in CONVERTED},
        "float64_fortran_order": ("fortran_order", np.float64),
    }

    @pytest.mark.parametrize("case", list(CASES))
    def test_shares_is_a_bool_that_tells_the_truth(self, kata, case):
        name, dtype = self.CASES[case]
        arr = layout(name, dtype)
        what = f"float32_tensor({name_of(arr, name)})"
        t, flag = self.call(kata, arr, what)
        check(
            isinstance(flag, (bool, np.bool_)),
            f"{what} returned shares={describe(flag)}; expected a bool (True or False)",
        )
        truth = shares(arr, t)
        check(
            bool(flag) == truth,
            f"{what} returned shares={flag}, but the tensor it returned {'does' if truth else 'does not'} overlap "
            f"the array in memory (np.shares_memory(arr, t.numpy()) is {truth}); expected shares={truth}",
        )


# Tensor layouts that .numpy() can wrap: (2, 3) contiguous, its transpose, a slice that starts
# inside a larger tensor and skips columns, a 1-element 1-d tensor and a 0-d one.
TENSOR_LAYOUTS = {
    "contiguous": lambda: torch.arange(1.0, 7.0).reshape(2, 3),
    "transposed": lambda: torch.arange(1.0, 7.0).reshape(2, 3).T,
    "offset_strided_slice": lambda: torch.arange(1.0, 29.0).reshape(4, 7)[1:3, 2::2],
    "one_element": lambda: torch.tensor([4.5]),
    "zero_dim": lambda: torch.tensor(4.5),
}


@exercise("numpy_view")
class TestNumpyView:
    @staticmethod
    def check_array(got, expected: np.ndarray, what: str) -> None:
        __tracebackhide__ = True
        check(
            isinstance(got, np.ndarray)
            and got.dtype == expected.dtype
            and got.shape == expected.shape
            and np.array_equal(got, expected),
            f"{what} returned {describe(got)}; expected {describe(expected)}",
        )

    @pytest.mark.parametrize(
        "dtype", [torch.float32, torch.int64, torch.float64, torch.uint8], ids=lambda d: str(d).split(".")[1]
    )
    def test_keeps_the_shape_dtype_and_values_of_the_tensor(self, kata, dtype):
        t = torch.arange(1, 7, dtype=dtype).reshape(2, 3)
        expected = t.clone().numpy()
        self.check_array(kata.numpy_view(t), expected, f"numpy_view({describe(t)})")

    @pytest.mark.parametrize("name", list(TENSOR_LAYOUTS))
    def test_keeps_the_values_of_any_layout(self, kata, name):
        t = TENSOR_LAYOUTS[name]()
        expected = np.array(t.tolist(), dtype=np.float32)
        self.check_array(kata.numpy_view(t), expected, f"numpy_view({describe(t)}, {name.replace('_', ' ')})")

    @pytest.mark.parametrize("name", list(TENSOR_LAYOUTS))
    def test_the_array_lies_on_the_tensors_memory(self, kata, name):
        t = TENSOR_LAYOUTS[name]()
        got = kata.numpy_view(t)
        check(
            isinstance(got, np.ndarray) and np.shares_memory(got, t.numpy()),
            f"numpy_view({describe(t)}, {name.replace('_', ' ')}) returned {describe(got)}, which does not "
            "overlap the tensor in memory (np.shares_memory is False); expected an array on the tensor's own "
            "memory, not a copy",
        )

    @pytest.mark.parametrize("name", list(TENSOR_LAYOUTS))
    def test_a_write_into_the_array_changes_the_tensor(self, kata, name):
        t = TENSOR_LAYOUTS[name]()
        got = kata.numpy_view(t)
        check(isinstance(got, np.ndarray), f"numpy_view(t) returned {describe(got)}; expected an ndarray")
        writes = dict(zip(dict.fromkeys(corners(t.shape)), (-1.0, -2.0)))  # one write for a 1-element t
        for index, value in writes.items():
            got[index] = value
        said = " and ".join(f"a[{', '.join(map(str, i)) or '()'}] = {v:g}" for i, v in writes.items())
        check(
            all(t[index].item() == value for index, value in writes.items()),
            f"a = numpy_view(t) for a {name.replace('_', ' ')} t; then {said}: t is {describe(t)}; expected the "
            "same elements of t to change (the array has memory of its own)",
        )

    @pytest.mark.parametrize("name", list(TENSOR_LAYOUTS))
    def test_a_write_into_the_tensor_shows_in_the_array(self, kata, name):
        t = TENSOR_LAYOUTS[name]()
        got = kata.numpy_view(t)
        t.add_(5)
        expected = np.array(t.tolist(), dtype=np.float32)
        check(
            isinstance(got, np.ndarray) and got.shape == expected.shape and np.array_equal(got, expected),
            f"a = numpy_view(t) for a {name.replace('_', ' ')} t; then t.add_(5): a is {describe(got)}; expected "
            f"{expected.tolist()} (the array does not follow the tensor)",
        )

    def check_raises_type_error(self, kata, t, where):
        __tracebackhide__ = True
        got = None

        def call():
            nonlocal got
            got = kata.numpy_view(t)

        err = error_from(call)
        check(
            err is not None,
            f"numpy_view(tensor on {where}) returned {describe(got)}; expected TypeError: a tensor outside CPU "
            "memory cannot share memory with an array, and a copy is not what numpy_view promises",
        )
        first = str(err).splitlines()[0][:200] if str(err) else ""
        check(
            isinstance(err, TypeError),
            f"numpy_view(tensor on {where}) raised {type(err).__name__}: {first}; expected TypeError, the error "
            "PyTorch itself raises when asked for an array on the memory of a tensor outside CPU memory",
        )

    def test_a_meta_tensor_raises_type_error(self, kata):
        # The meta device has no memory at all: it stands in for a GPU on a machine without one.
        self.check_raises_type_error(kata, torch.ones(3, device=META), "meta")

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_a_gpu_tensor_raises_type_error_instead_of_copying(self, kata, device):
        self.check_raises_type_error(kata, torch.ones(3, device=device), device)


@exercise("to_numpy_safe")
class TestToNumpySafe:
    @staticmethod
    def check_array(got, expected: np.ndarray, what: str) -> None:
        __tracebackhide__ = True
        check(
            isinstance(got, np.ndarray)
            and got.dtype == expected.dtype
            and got.shape == expected.shape
            and np.array_equal(got, expected),
            f"{what} returned {describe(got)}; expected {describe(expected)}",
        )

    def test_a_weight_that_requires_grad(self, kata):
        w = torch.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
        expected = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
        self.check_array(kata.to_numpy_safe(w), expected, "to_numpy_safe(leaf tensor with requires_grad=True)")

    def test_a_result_with_a_grad_fn(self, kata):
        w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
        y = w * 2  # not a leaf: it has a grad_fn
        expected = np.array([2.0, 4.0, 6.0])
        self.check_array(kata.to_numpy_safe(y), expected, "to_numpy_safe(w * 2, a float64 tensor with a grad_fn)")

    @pytest.mark.parametrize(
        "t",
        [torch.tensor([3, 1, 2]), torch.tensor([0.5, -2.0], dtype=torch.float16), torch.tensor([True, False])],
        ids=["int64", "float16", "bool"],
    )
    def test_a_tensor_without_grad_keeps_its_dtype(self, kata, t):
        expected = np.array(t.tolist(), dtype=t.clone().numpy().dtype)
        self.check_array(kata.to_numpy_safe(t), expected, f"to_numpy_safe({describe(t)})")

    def test_a_tensor_on_any_device(self, kata, device):
        t = torch.tensor([[0.0, 1.0], [2.0, 3.0]], device=device)
        self.check_array(
            kata.to_numpy_safe(t),
            np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32),
            f"to_numpy_safe(tensor on {device})",
        )

    def test_a_0d_loss_that_requires_grad_on_any_device(self, kata, device):
        w = torch.tensor([1.5, -2.0], device=device, requires_grad=True)
        loss = (w * w).sum()
        self.check_array(
            kata.to_numpy_safe(loss),
            np.array(6.25, dtype=np.float32),
            f"to_numpy_safe(0-d loss with a grad_fn on {device})",
        )

    def test_the_weight_still_requires_grad_afterwards(self, kata):
        w = torch.tensor([0.5, -1.0], requires_grad=True)
        kata.to_numpy_safe(w)
        check(
            w.requires_grad and w.is_leaf,
            f"after to_numpy_safe(w) for a weight w that requires grad, w is {describe(w)} (requires_grad="
            f"{w.requires_grad}); expected it to still require grad: the caller's tensor must be left as it was",
        )

    def test_the_loss_can_still_be_backpropagated_afterwards(self, kata, device):
        w = torch.tensor([1.5, -2.0], device=device, requires_grad=True)
        loss = (w * w).sum()
        node, where = loss.grad_fn, loss.device
        kata.to_numpy_safe(loss)  # logging the loss, as a training loop does before backward
        now = type(loss.grad_fn).__name__ if loss.grad_fn is not None else None
        check(
            loss.requires_grad and loss.grad_fn is node and loss.device == where,
            f"after to_numpy_safe(loss), loss has requires_grad={loss.requires_grad}, grad_fn={now}, device="
            f"{loss.device}; expected the loss unchanged: requires_grad=True, its {type(node).__name__}, on {where}",
        )
        loss.backward()
        check(
            w.grad is not None and w.grad.tolist() == [3.0, -4.0],
            f"to_numpy_safe(loss), then loss.backward(): w.grad is {describe(w.grad)}; expected [3.0, -4.0]",
        )


# Reversed arrays, each reversed along at least one axis; the later ones are the edges (a step of
# -2, a reversal mixed with a positive step, Fortran order, a reversed axis of length one).
FLIPPED = {
    "float64_1d": lambda: np.flip(sample(np.float64, (5,))),
    "int32_axis_1": lambda: np.flip(sample(np.int32, (2, 3)), 1),
    "float32_axis_0": lambda: np.flip(sample(np.float32, (3, 2)), 0),
    "int64_every_axis": lambda: np.flip(sample(np.int64, (2, 2, 2))),
    "float64_step_minus_2": lambda: sample(np.float64, (6,))[::-2],
    "reversed_rows_every_other_column": lambda: sample(np.float64, (4, 6))[::-1, ::2],
    "fortran_order_axis_1": lambda: np.flip(np.asfortranarray(sample(np.float32, (2, 3))), 1),
    "batch_of_one_reversed": lambda: sample(np.float32, (1, 2, 3))[::-1],
    "uint8_channels_reversed": lambda: sample(np.uint8, (2, 2, 3))[..., ::-1],  # BGR -> RGB
}


@exercise("flip_to_tensor")
class TestFlipToTensor:
    @staticmethod
    def call(kata, arr, what):
        __tracebackhide__ = True
        try:
            return kata.flip_to_tensor(arr)
        except ValueError as err:
            if "negative" not in str(err):
                raise
            message = str(err).splitlines()[0][:160]
        pytest.fail(
            f"{what} raised ValueError: {message}...; expected a tensor (what reached torch still had a negative "
            "stride: the values were not laid out again in forward order)",
            pytrace=False,
        )

    @pytest.mark.parametrize("case", list(FLIPPED))
    def test_same_shape_dtype_and_values_as_the_reversed_array(self, kata, case):
        arr = FLIPPED[case]()
        expected = torch.tensor(arr.tolist(), dtype=torch_dtype(arr.dtype))
        what = f"flip_to_tensor({name_of(arr)}, strides {arr.strides} bytes)"
        check_tensor(self.call(kata, arr, what), expected, what)

    @pytest.mark.parametrize("case", ["float64_1d", "reversed_rows_every_other_column", "batch_of_one_reversed"])
    def test_the_tensor_owns_its_memory(self, kata, case):
        arr = FLIPPED[case]()
        base = arr.base if arr.base is not None else arr
        expected = torch.tensor(arr.tolist(), dtype=torch_dtype(arr.dtype))
        got = self.call(kata, arr, f"flip_to_tensor({name_of(arr)})")
        base[...] = 0
        check_tensor(got, expected, f"t = flip_to_tensor({name_of(arr)}), then the array it views set to 0: t")
