"""Tests for kata 02, views, copies and shared storage: one class per exercise, in learning order.

Whether memory is shared is checked two ways: by comparing where the storages start
(`storage_ptr`), and by behaviour, writing through one tensor and looking at the other.
"""

import re

import pytest
import torch

from dojo.testing import check, check_own_memory, check_shares_memory, check_tensor, describe, exercise


def _grid(rows: int, cols: int, device, dtype=torch.float32) -> torch.Tensor:
    """[[0, 1, 2, ...], ...]: distinct values, so a wrong element order shows."""
    return torch.arange(rows * cols, dtype=dtype, device=device).reshape(rows, cols)


@exercise("reshape_shared")
class TestReshapeShared:
    @pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3), (-1,), (4, -1)], ids=str)
    def test_has_the_requested_shape_and_values(self, kata, shape):
        x = torch.arange(12.0)
        got = kata.reshape_shared(x, shape)
        check_tensor(got, x.reshape(shape).clone(), f"reshape_shared(arange(12.), {shape})")

    def test_writing_through_the_result_changes_x(self, kata, device):
        x = _grid(2, 6, device)
        got = kata.reshape_shared(x, (3, 4))
        check(isinstance(got, torch.Tensor), f"reshape_shared(x, (3, 4)) returned {describe(got)}; expected a tensor")
        got[0, 0] = -100.0
        check(
            x[0, 0].item() == -100.0,
            f"after got = reshape_shared(x, (3, 4)) and got[0, 0] = -100, x[0, 0] is {x[0, 0].item()}; expected -100: "
            "the result must be a view of x's memory, not a copy",
        )

    @pytest.mark.parametrize("dtype", [torch.float64, torch.int64], ids=str)
    def test_shares_storage_with_x_and_keeps_dtype(self, kata, dtype):
        x = torch.arange(24, dtype=dtype).reshape(4, 6)[1:]  # contiguous, but starts at an offset
        got = kata.reshape_shared(x, (2, 9))
        check_shares_memory(got, x, "reshape_shared(x, (2, 9))", "a view reuses x's storage")
        check(got.dtype == dtype, f"reshape_shared(x of {dtype}, (2, 9)) returned dtype {got.dtype}; expected {dtype}")


@exercise("independent_copy")
class TestIndependentCopy:
    @staticmethod
    def _computed(device, dtype=torch.float32) -> torch.Tensor:
        """A non-leaf that requires grad: the output of a computation on a leaf."""
        w = torch.tensor([1.0, -2.0, 3.0], dtype=dtype, device=device, requires_grad=True)
        return w * 2

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
    def test_values_dtype_and_device_match_x(self, kata, device, dtype):
        x = self._computed(device, dtype)
        got = kata.independent_copy(x)
        check_tensor(
            got, torch.tensor([2.0, -4.0, 6.0], dtype=dtype, device=device), f"independent_copy(x = w * 2, {dtype})"
        )

    def test_has_its_own_memory(self, kata, device):
        x = self._computed(device)
        got = kata.independent_copy(x)
        check_own_memory(got, x, "independent_copy(x = w * 2)", "a snapshot must not change when x does")

    def test_later_in_place_updates_of_x_do_not_reach_the_snapshot(self, kata):
        w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        got = kata.independent_copy(w)
        with torch.no_grad():
            w.add_(10.0)  # what an optimizer step does to a parameter
        check_tensor(got, torch.tensor([1.0, 2.0]), "snapshot = independent_copy(w); after w += 10, the snapshot")

    def test_is_detached_from_the_graph(self, kata, device):
        x = self._computed(device)
        got = kata.independent_copy(x)
        check(isinstance(got, torch.Tensor), f"independent_copy(x = w * 2) returned {describe(got)}; expected a tensor")
        check(
            got.grad_fn is None and not got.requires_grad,
            f"independent_copy(x = w * 2) returned a tensor with requires_grad={got.requires_grad}, "
            f"grad_fn={type(got.grad_fn).__name__ if got.grad_fn else None}; expected requires_grad=False and no "
            "grad_fn: a snapshot is out of the graph (clone() alone stays in it)",
        )

    def test_a_parameter_snapshot_is_detached_too(self, kata):
        w = torch.nn.Parameter(torch.ones(3))
        got = kata.independent_copy(w)
        check(
            isinstance(got, torch.Tensor), f"independent_copy(nn.Parameter) returned {describe(got)}; expected a tensor"
        )
        check(
            not got.requires_grad and got.grad_fn is None and not isinstance(got, torch.nn.Parameter),
            f"independent_copy(nn.Parameter of ones(3)) returned {type(got).__name__} with requires_grad={got.requires_grad}, "
            f"grad_fn={type(got.grad_fn).__name__ if got.grad_fn else None}; expected a plain tensor with "
            "requires_grad=False and no grad_fn",
        )


@exercise("flatten_any")
class TestFlattenAny:
    def test_contiguous_input_flattens_in_row_order(self, kata):
        x = _grid(3, 4, "cpu")
        check_tensor(kata.flatten_any(x), torch.arange(12.0), "flatten_any(arange(12.).reshape(3, 4))")

    def test_transposed_input_flattens_in_index_order(self, kata, device):
        x = _grid(2, 3, device).t()  # [[0, 3], [1, 4], [2, 5]]; memory still holds 0, 1, 2, 3, 4, 5
        expected = torch.tensor([0.0, 3.0, 1.0, 4.0, 2.0, 5.0], device=device)
        check_tensor(kata.flatten_any(x), expected, "flatten_any(x.t() with x = arange(6.).reshape(2, 3))")

    def test_strided_slice_flattens_only_its_own_elements(self, kata):
        x = _grid(3, 4, "cpu")[:, ::2]  # [[0, 2], [4, 6], [8, 10]]
        expected = torch.tensor([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
        check_tensor(kata.flatten_any(x), expected, "flatten_any(x[:, ::2] with x = arange(12.).reshape(3, 4))")

    def test_permuted_3d_input_flattens_in_index_order(self, kata):
        x = torch.arange(24, dtype=torch.int64).reshape(2, 3, 4).permute(2, 0, 1)
        expected = torch.tensor([x[i, j, k].item() for i in range(4) for j in range(2) for k in range(3)])
        check_tensor(kata.flatten_any(x), expected, "flatten_any(arange(24).reshape(2, 3, 4).permute(2, 0, 1))")

    def test_contiguous_input_is_not_copied(self, kata):
        x = _grid(3, 4, "cpu")
        got = kata.flatten_any(x)
        check_shares_memory(got, x, "flatten_any(contiguous x)", "when a view is possible, no copy is needed")


@exercise("checked_view")
class TestCheckedView:
    def test_a_possible_view_is_returned_and_shares_memory(self, kata, device):
        x = _grid(3, 4, device)
        got = kata.checked_view(x, (2, 6))
        check_tensor(got, _grid(2, 6, device), "checked_view(arange(12.).reshape(3, 4), (2, 6))")
        check_shares_memory(got, x, "checked_view(x, (2, 6))", "a view never copies")

    def test_a_non_contiguous_input_that_can_be_viewed_is_viewed(self, kata):
        x = _grid(3, 4, "cpu")[:, :2]  # not contiguous, yet (3, 1, 2) only splits the last dimension
        got = kata.checked_view(x, (3, 1, 2))
        check_tensor(got, x.reshape(3, 1, 2).clone(), "checked_view(x[:, :2] of shape (3, 2), (3, 1, 2))")
        check_shares_memory(got, x, "checked_view(x[:, :2], (3, 1, 2))", "x.view(3, 1, 2) works here")

    def test_an_impossible_view_raises_value_error_saying_cannot_view(self, kata):
        x = _grid(2, 3, "cpu").t()
        with pytest.raises(ValueError, match="cannot view"):
            got = kata.checked_view(x, (-1,))
            # Reached only when nothing was raised (pytest.fail is not a ValueError, so it escapes).
            check(
                False,
                f"checked_view(x.t(), (-1,)) returned {describe(got)}; expected ValueError: x.t() cannot be "
                "viewed as (-1,) (reshape would copy silently, which is what checked_view exists to refuse)",
            )

    def test_the_value_error_chains_pytorchs_runtime_error(self, kata):
        x = _grid(2, 3, "cpu").t()
        with pytest.raises(ValueError, match="cannot view") as excinfo:
            got = kata.checked_view(x, (6,))
            check(False, f"checked_view(x.t(), (6,)) returned {describe(got)}; expected ValueError")
        cause = excinfo.value.__cause__
        check(
            isinstance(cause, RuntimeError),
            f"checked_view(x.t(), (6,)) raised ValueError({str(excinfo.value)!r}) with __cause__ = {cause!r}; "
            "expected PyTorch's RuntimeError as its cause: `raise ValueError(...) from err` inside the except block",
        )
        check(
            re.search("view size is not compatible with input tensor's size and stride", str(cause)),
            f"checked_view(x.t(), (6,)): the ValueError's __cause__ says {str(cause)!r}; expected the RuntimeError "
            'that x.view(6) raises ("view size is not compatible with input tensor\'s size and stride ...")',
        )


@exercise("shares_storage")
class TestSharesStorage:
    VIEWS = {
        "x[1:]": lambda x: x[1:],
        "x[::2]": lambda x: x[::2],
        "x.t()": lambda x: x.t(),
        "x.view(-1)": lambda x: x.view(-1),
        "x[2, 1:]": lambda x: x[2, 1:],
        "x.detach()": lambda x: x.detach(),
    }
    COPIES = {
        "x.clone()": lambda x: x.clone(),
        "torch.zeros_like(x) + x": lambda x: torch.zeros_like(x) + x,
        "x.t().contiguous()": lambda x: x.t().contiguous(),
        "x.t().reshape(-1)": lambda x: x.t().reshape(-1),
    }

    @pytest.mark.parametrize("name", list(VIEWS))
    def test_true_for_a_view(self, kata, device, name):
        x = _grid(4, 3, device)
        got = kata.shares_storage(x, self.VIEWS[name](x))
        check(got is True, f"shares_storage(x, {name}) returned {describe(got)}; expected True: {name} is a view of x")

    @pytest.mark.parametrize("name", list(COPIES))
    def test_false_for_a_copy_even_with_equal_values(self, kata, device, name):
        x = _grid(4, 3, device)
        got = kata.shares_storage(x, self.COPIES[name](x))
        check(got is False, f"shares_storage(x, {name}) returned {describe(got)}; expected False: {name} is new memory")

    def test_true_for_two_slices_that_do_not_overlap(self, kata):
        # Same storage, disjoint elements: the question is about the storage, not about overlap.
        x = torch.arange(10.0)
        got = kata.shares_storage(x[:5], x[5:])
        check(got is True, f"shares_storage(x[:5], x[5:]) returned {describe(got)}; expected True: both are views of x")


@exercise("tile_rows")
class TestTileRows:
    @pytest.mark.parametrize("n", [1, 4], ids=lambda n: f"n={n}")
    def test_every_row_equals_row(self, kata, device, n):
        row = torch.tensor([1.0, -2.0, 3.0], device=device)
        expected = torch.tensor([[1.0, -2.0, 3.0]] * n, device=device)
        check_tensor(kata.tile_rows(row, n), expected, f"tile_rows([1., -2., 3.], {n})")

    def test_keeps_the_dtype_of_row(self, kata):
        row = torch.tensor([7, 8], dtype=torch.int16)
        check_tensor(
            kata.tile_rows(row, 3), torch.tensor([[7, 8]] * 3, dtype=torch.int16), "tile_rows(int16 [7, 8], 3)"
        )

    def test_the_result_does_not_share_memory_with_row(self, kata, device):
        row = torch.arange(3.0, device=device)
        got = kata.tile_rows(row, 3)
        check_own_memory(got, row, "tile_rows(row, 3)", "expand makes rows that are row's memory, with stride 0")

    @pytest.mark.parametrize("n", [1, 3], ids=lambda n: f"n={n}")
    def test_writing_into_one_row_changes_nothing_else(self, kata, device, n):
        row = torch.arange(3.0, device=device)
        got = kata.tile_rows(row, n)
        check(
            isinstance(got, torch.Tensor) and got.shape == (n, 3),
            f"tile_rows(row of shape (3,), {n}) returned {describe(got)}; expected shape ({n}, 3)",
        )
        got[0] += 100.0  # on an expand()ed result this silently writes into `row` and every row
        check_tensor(
            row,
            torch.arange(3.0, device=device),
            f"after writing into row 0 of tile_rows(row, {n}), the caller's row (the result must have its own memory)",
        )
        if n > 1:
            check_tensor(
                got[1:],
                torch.arange(3.0, device=device).repeat(n - 1, 1),
                f"after writing into row 0, rows 1.. of tile_rows(row, {n}) (each row needs its own memory)",
            )


@exercise("clamp_negatives_copy")
class TestClampNegativesCopy:
    def test_negatives_become_zero(self, kata, device):
        x = torch.tensor([[-1.5, 0.0, 2.0], [3.0, -0.25, -7.0]], device=device)
        expected = torch.tensor([[0.0, 0.0, 2.0], [3.0, 0.0, 0.0]], device=device)
        check_tensor(kata.clamp_negatives_copy(x), expected, "clamp_negatives_copy(x of shape (2, 3))")

    def test_integer_tensors_keep_their_dtype(self, kata):
        x = torch.tensor([-3, 4, -1, 0], dtype=torch.int64)
        check_tensor(
            kata.clamp_negatives_copy(x), torch.tensor([0, 4, 0, 0]), "clamp_negatives_copy(int64 [-3, 4, -1, 0])"
        )

    def test_the_callers_x_is_left_unchanged(self, kata, device):
        x = torch.tensor([-1.0, 2.0, -3.0, 4.0], device=device)
        version = x._version
        kata.clamp_negatives_copy(x)
        check_tensor(
            x, torch.tensor([-1.0, 2.0, -3.0, 4.0], device=device), "after clamp_negatives_copy(x), the caller's x"
        )
        # Every in-place write bumps the version counter, even one that happens to change no value.
        check(x._version == version, "clamp_negatives_copy(x) wrote into x in place; expected it to leave x alone")

    def test_the_result_is_new_memory_even_when_nothing_is_negative(self, kata):
        x = torch.tensor([0.0, 1.0, 2.0])
        got = kata.clamp_negatives_copy(x)
        check_own_memory(got, x, "clamp_negatives_copy(x with no negatives)", "the caller may write into the result")
