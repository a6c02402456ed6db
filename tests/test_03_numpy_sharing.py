"""Tests for kata 03, NumPy bridges: one class per exercise, in learning order.

Sharing is checked by behaviour (write on one side, read on the other) and by `np.shares_memory`,
whose answer does not depend on how the learner built the result.
"""

import numpy as np
import pytest
import torch

from dojo.testing import GPU_ONLY, check, check_tensor, describe, exercise

# Non-float dtypes too: a learner's float32-only answer (torch.Tensor(arr), .float()) must show.
DTYPES = [np.float64, np.int32, np.float32]


def sample(dtype=np.float64, shape=(2, 3)) -> np.ndarray:
    """A small array of distinct values: 1, 2, 3, ... (distinct, so a reversal or a mix-up shows)."""
    return (np.arange(int(np.prod(shape))) + 1).astype(dtype).reshape(shape)


def shares(arr: np.ndarray, t) -> bool:
    """Whether a returned CPU tensor overlaps `arr` in memory (False for anything not a tensor)."""
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
        return False
    return bool(np.shares_memory(arr, t.detach().numpy()))


@exercise("shared_tensor")
class TestSharedTensor:
    @pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
    def test_keeps_the_values_and_the_dtype_of_the_array(self, kata, dtype):
        arr = sample(dtype)
        expected = torch.from_numpy(arr.copy())
        check_tensor(kata.shared_tensor(arr), expected, f"shared_tensor(array of dtype {np.dtype(dtype).name})")

    def test_a_later_write_into_the_array_shows_in_the_tensor(self, kata):
        arr = sample()
        got = kata.shared_tensor(arr)
        arr[0, 0] = -7.0
        check(
            isinstance(got, torch.Tensor) and got.shape == (2, 3) and got[0, 0].item() == -7.0,
            f"shared_tensor(arr), then arr[0, 0] = -7: the tensor is {describe(got)}; expected its [0, 0] to "
            "be -7 too (the tensor was a copy; torch.tensor and torch.Tensor copy)",
        )

    def test_a_write_into_the_tensor_shows_in_the_array(self, kata):
        arr = sample()
        got = kata.shared_tensor(arr)
        check(isinstance(got, torch.Tensor), f"shared_tensor(arr) returned {describe(got)}; expected a tensor")
        got[1, 2] = 100
        check(
            arr[1, 2] == 100.0,
            f"shared_tensor(arr) returned t; after t[1, 2] = 100 the array is {arr.tolist()}; expected arr[1, 2] "
            "to be 100 (the tensor has its own memory)",
        )

    def test_the_tensor_and_the_array_share_memory(self, kata):
        arr = sample(np.float64)
        got = kata.shared_tensor(arr)
        check(
            shares(arr, got),
            f"shared_tensor(float64 array) returned {describe(got)}, which np.shares_memory says does not "
            "overlap the array; expected the array's own memory (a dtype change such as .float() copies)",
        )


@exercise("independent_tensor")
class TestIndependentTensor:
    @pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
    def test_keeps_the_values_and_the_dtype_of_the_array(self, kata, dtype):
        arr = sample(dtype)
        expected = torch.from_numpy(arr.copy())
        check_tensor(
            kata.independent_tensor(arr), expected, f"independent_tensor(array of dtype {np.dtype(dtype).name})"
        )

    def test_a_later_write_into_the_array_leaves_the_tensor_alone(self, kata):
        arr = sample()
        got = kata.independent_tensor(arr)
        arr[:] = 0.0  # the owner reuses its buffer, as a data loader does for the next batch
        check(
            isinstance(got, torch.Tensor) and got.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
            f"independent_tensor(arr), then arr[:] = 0: the tensor is {describe(got)}; expected it to keep "
            "[[1, 2, 3], [4, 5, 6]] (it shares the array's memory; torch.from_numpy and torch.as_tensor do not copy)",
        )

    def test_a_write_into_the_tensor_leaves_the_array_alone(self, kata):
        arr = sample(np.int32)
        got = kata.independent_tensor(arr)
        check(isinstance(got, torch.Tensor), f"independent_tensor(arr) returned {describe(got)}; expected a tensor")
        got.zero_()
        check(
            arr.tolist() == [[1, 2, 3], [4, 5, 6]],
            f"independent_tensor(arr) returned t; after t.zero_() the array is {arr.tolist()}; expected it "
            "unchanged, [[1, 2, 3], [4, 5, 6]] (the tensor shares the array's memory)",
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
        t, flag = got
        check(
            isinstance(flag, (bool, np.bool_)),
            f"{what} returned shares={describe(flag)}; expected a bool (True or False)",
        )
        return t, bool(flag)

    @pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64], ids=lambda d: np.dtype(d).name)
    def test_returns_the_values_as_float32(self, kata, dtype):
        arr = sample(dtype) / 4 if dtype != np.int64 else sample(dtype)  # quarters are exact in float32
        what = f"float32_tensor(array of dtype {np.dtype(dtype).name})"
        t, _ = self.call(kata, arr, what)
        check_tensor(t, torch.from_numpy(arr.astype(np.float32)), what)

    def test_a_float64_array_is_converted_so_shares_is_false(self, kata):
        arr = sample(np.float64)
        t, flag = self.call(kata, arr, "float32_tensor(float64 array)")
        check(
            flag is False,
            f"float32_tensor(float64 array) returned shares={flag}; expected False: changing the dtype "
            "writes new memory (np.shares_memory(arr, t.numpy()) says so)",
        )

    def test_a_float64_array_changed_later_leaves_the_tensor_alone(self, kata):
        arr = sample(np.float64)
        t, _ = self.call(kata, arr, "float32_tensor(float64 array)")
        arr[:] = 0.0
        check_tensor(
            t,
            torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
            "float32_tensor(float64 arr), then arr[:] = 0: the tensor",
        )

    def test_a_float32_array_is_not_copied_so_shares_is_true(self, kata):
        arr = sample(np.float32)
        t, flag = self.call(kata, arr, "float32_tensor(float32 array)")
        check(
            shares(arr, t),
            f"float32_tensor(float32 array) returned {describe(t)} with its own memory; expected it to wrap "
            "the array without a copy (torch.tensor(arr, dtype=...) always copies; torch.as_tensor does not)",
        )
        check(flag is True, f"float32_tensor(float32 array) shares memory but returned shares={flag}; expected True")

    def test_a_float32_array_changed_later_shows_in_the_tensor(self, kata):
        arr = sample(np.float32)
        t, _ = self.call(kata, arr, "float32_tensor(float32 array)")
        arr[1, 1] = -1.5
        check(
            t.shape == (2, 3) and t[1, 1].item() == -1.5,
            f"float32_tensor(float32 arr), then arr[1, 1] = -1.5: the tensor is {describe(t)}; expected its "
            "[1, 1] to be -1.5 (the float32 array was copied when no copy was needed)",
        )

    @pytest.mark.parametrize(
        "make",
        [
            lambda: sample(np.float64),
            lambda: sample(np.float32),
            lambda: sample(np.int64),
            lambda: sample(np.int32),
            lambda: sample(np.float32, (4, 6))[::2, 1::2],  # a strided float32 view: still no copy
        ],
        ids=["float64", "float32", "int64", "int32", "strided_float32"],
    )
    def test_shares_tells_the_truth(self, kata, make):
        arr = make()
        what = f"float32_tensor(array of dtype {arr.dtype.name}, strides {arr.strides})"
        t, flag = self.call(kata, arr, what)
        truth = shares(arr, t)
        check(
            flag == truth,
            f"{what} returned shares={flag}, but np.shares_memory(arr, t.numpy()) is {truth}; measure the "
            "result rather than guess it",
        )


@exercise("numpy_view")
class TestNumpyView:
    @pytest.mark.parametrize(
        "dtype, np_dtype",
        [(torch.float32, np.float32), (torch.int64, np.int64), (torch.float64, np.float64)],
        ids=["float32", "int64", "float64"],
    )
    def test_returns_an_array_with_the_values_and_dtype_of_the_tensor(self, kata, dtype, np_dtype):
        t = torch.arange(6, dtype=dtype).reshape(2, 3)
        got = kata.numpy_view(t)
        expected = np.arange(6, dtype=np_dtype).reshape(2, 3)
        check(
            isinstance(got, np.ndarray)
            and got.dtype == expected.dtype
            and got.shape == (2, 3)
            and np.array_equal(got, expected),
            f"numpy_view({describe(t)}) returned {describe(got)}; expected {describe(expected)}",
        )

    def test_a_write_into_the_array_changes_the_tensor(self, kata):
        t = torch.zeros(2, 3)
        got = kata.numpy_view(t)
        check(isinstance(got, np.ndarray), f"numpy_view(t) returned {describe(got)}; expected an ndarray")
        got[0, 1] = 9.0
        check(
            t[0, 1].item() == 9.0,
            f"a = numpy_view(t); a[0, 1] = 9: t is now {t.tolist()}; expected t[0, 1] to be 9 "
            "(the array is a copy; np.array(t) and t.clone() copy)",
        )

    def test_a_write_into_the_tensor_shows_in_the_array(self, kata):
        t = torch.zeros(4, dtype=torch.int64)
        got = kata.numpy_view(t)
        t.add_(5)
        check(
            isinstance(got, np.ndarray) and got.tolist() == [5, 5, 5, 5],
            f"a = numpy_view(t); t.add_(5): a is now {describe(got)}; expected [5, 5, 5, 5] "
            "(the array has its own memory)",
        )

    def test_a_transposed_tensor_is_shared_not_made_contiguous(self, kata):
        t = torch.arange(6.0).reshape(2, 3).T  # shape (3, 2), not contiguous
        got = kata.numpy_view(t)
        check(
            isinstance(got, np.ndarray) and got.shape == (3, 2) and got.tolist() == t.tolist(),
            f"numpy_view(t.T of shape (3, 2)) returned {describe(got)}; expected the values {t.tolist()}",
        )
        got[2, 0] = -1.0
        check(
            t[2, 0].item() == -1.0,
            f"a = numpy_view(t) for a transposed t; a[2, 0] = -1: t[2, 0] is {t[2, 0].item()}; expected -1 "
            "(.contiguous() copies a non-contiguous tensor; .numpy() handles any strides)",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_a_gpu_tensor_raises_pytorchs_error_instead_of_copying(self, kata, device):
        t = torch.ones(3, device=device)
        # PyTorch's message reads "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() ...".
        with pytest.raises(TypeError, match="can't convert cuda"):
            kata.numpy_view(t)


@exercise("to_numpy_safe")
class TestToNumpySafe:
    @staticmethod
    def check_array(got, expected: np.ndarray, what: str) -> None:
        __tracebackhide__ = True
        check(
            isinstance(got, np.ndarray)
            and got.dtype == expected.dtype
            and got.shape == expected.shape
            and np.allclose(got, expected),
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

    def test_a_tensor_without_grad_keeps_its_dtype(self, kata):
        t = torch.tensor([3, 1, 2], dtype=torch.int64)
        self.check_array(kata.to_numpy_safe(t), np.array([3, 1, 2], dtype=np.int64), "to_numpy_safe(int64 tensor)")

    def test_a_tensor_on_any_device(self, kata, device):
        t = torch.arange(4.0, device=device).reshape(2, 2)
        self.check_array(
            kata.to_numpy_safe(t),
            np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32),
            f"to_numpy_safe(tensor on {device})",
        )

    def test_a_tensor_that_requires_grad_on_any_device(self, kata, device):
        w = torch.tensor([1.5, -2.0], device=device, requires_grad=True)
        loss = (w * w).sum()
        self.check_array(
            kata.to_numpy_safe(loss), np.array(6.25, dtype=np.float32), f"to_numpy_safe(loss with grad_fn on {device})"
        )


@exercise("flip_to_tensor")
class TestFlipToTensor:
    @pytest.mark.parametrize(
        "dtype, shape, axis",
        [(np.float64, (5,), 0), (np.int32, (2, 3), 1), (np.float32, (3, 2), 0), (np.int64, (2, 2, 2), None)],
        ids=["float64_1d", "int32_axis1", "float32_axis0", "int64_all_axes"],
    )
    def test_same_values_and_dtype_as_the_flipped_array(self, kata, dtype, shape, axis):
        flipped = np.flip(sample(dtype, shape), axis)
        expected = torch.from_numpy(np.array(flipped))  # np.array copies into forward order
        check_tensor(
            kata.flip_to_tensor(flipped),
            expected,
            f"flip_to_tensor(np.flip(array of dtype {np.dtype(dtype).name}, shape {shape}), axis={axis}))",
        )

    def test_a_reversing_slice_works_too(self, kata):
        arr = sample(np.float64, (6,))[::-2]  # [6, 4, 2], stride -16 bytes
        check_tensor(
            kata.flip_to_tensor(arr), torch.tensor([6.0, 4.0, 2.0], dtype=torch.float64), "flip_to_tensor(arr[::-2])"
        )

    def test_the_tensor_does_not_follow_the_array(self, kata):
        base = sample(np.float32, (4,))
        flipped = np.flip(base)
        got = kata.flip_to_tensor(flipped)
        base[:] = 0.0
        check_tensor(
            got, torch.tensor([4.0, 3.0, 2.0, 1.0]), "flip_to_tensor(np.flip(base)), then base[:] = 0: the tensor"
        )
