"""Tests for kata 02, views, copies and shared storage: one class per exercise, in learning order.

Whether memory is shared is checked two ways: by comparing where the storages start
(`storage_ptr`), and by behaviour, writing through one tensor and looking at the other.
Every expected value is written down before the learner's function is called, so an answer that
modifies its input cannot change what a message calls "expected".
"""

import pytest
import torch

from dojo.testing import (
    GPU_ONLY,
    check,
    check_own_memory,
    check_shares_memory,
    check_tensor,
    describe,
    exercise,
)


def _grid(rows: int, cols: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """[[0, 1, 2, ...], ...]: distinct values, so a wrong element order shows. (A view of an arange.)"""
    return torch.arange(rows * cols, dtype=dtype, device=device).reshape(rows, cols)


def _offset_rows(device="cpu", dtype=torch.float32) -> torch.Tensor:
    """Rows 1..3 of arange(24).reshape(4, 6): contiguous, but starting 6 elements into its storage."""
    return _grid(4, 6, device, dtype)[1:]


def _outcome(fn):
    """(what fn() did, in words, for a message; the exception it raised or None; what it returned)."""
    try:
        got = fn()
    except NotImplementedError:
        raise  # an unfilled stub: the plugin reports the test as TODO
    except Exception as err:  # noqa: BLE001 - any exception is reported to the learner
        first = str(err).splitlines()[0] if str(err) else ""
        return f"raised {type(err).__name__}({first!r})", err, None
    return f"returned {describe(got)}", None, got


def _is_tensor(got, called: str) -> None:
    __tracebackhide__ = True
    check(isinstance(got, torch.Tensor), f"{called} returned {describe(got)}; expected a tensor")


@exercise("reshape_shared")
class TestReshapeShared:
    @pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3), (-1,), (4, -1)], ids=str)
    def test_has_the_requested_shape_and_values(self, kata, device, shape):
        x = torch.arange(12.0, device=device)
        expected = torch.arange(12.0, device=device).reshape(shape)
        check_tensor(kata.reshape_shared(x, shape), expected, f"reshape_shared(arange(12.), {shape})")

    def test_x_itself_keeps_its_shape_and_values(self, kata):
        x = _grid(3, 4)
        kata.reshape_shared(x, (2, 6))
        check_tensor(x, _grid(3, 4), "after reshape_shared(x of shape (3, 4), (2, 6)), the caller's x")

    def test_a_slice_that_starts_partway_into_its_storage_gives_its_own_elements(self, kata):
        x = _offset_rows(dtype=torch.int64)  # values 6 .. 23
        expected = torch.arange(6, 24).reshape(2, 9)
        check_tensor(
            kata.reshape_shared(x, (2, 9)),
            expected,
            "reshape_shared(x = arange(24).reshape(4, 6)[1:], (2, 9)) (x starts 6 elements into its storage)",
        )

    def test_writing_through_the_result_changes_x(self, kata, device):
        x = _offset_rows(device)
        got = kata.reshape_shared(x, (2, 9))
        _is_tensor(got, "reshape_shared(x, (2, 9))")
        got[0, 0] = -100.0
        got[1, 8] = -200.0
        seen = (x[0, 0].item(), x[-1, -1].item())
        check(
            seen == (-100.0, -200.0),
            f"after got = reshape_shared(x, (2, 9)) with x = arange(24.).reshape(4, 6)[1:], got[0, 0] = -100 and "
            f"got[1, 8] = -200, x's first and last elements are {seen}; expected (-100.0, -200.0): the result must "
            "read and write x's own elements, not a copy of them",
        )

    def test_gradients_flow_back_to_x(self, kata):
        x = torch.arange(6.0, requires_grad=True)
        weights = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        got = kata.reshape_shared(x, (2, 3))
        _is_tensor(got, "reshape_shared(x that requires grad, (2, 3))")
        check(
            got.requires_grad,
            f"reshape_shared(x that requires grad, (2, 3)) returned {describe(got)} with requires_grad=False; "
            "expected it to stay in x's graph, so that a loss computed from it gives x a gradient",
        )
        (got * weights).sum().backward()
        check_tensor(
            x.grad,
            torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            "x.grad after (reshape_shared(x, (2, 3)) * [[1, 2, 3], [4, 5, 6]]).sum().backward()",
        )

    @pytest.mark.parametrize("dtype", [torch.float64, torch.int64], ids=str)
    def test_shares_storage_with_x_and_keeps_dtype(self, kata, dtype):
        x = _offset_rows(dtype=dtype)
        got = kata.reshape_shared(x, (2, 9))
        check_shares_memory(got, x, f"reshape_shared(x of {dtype}, (2, 9))", "a view reuses x's storage")
        check(got.dtype == dtype, f"reshape_shared(x of {dtype}, (2, 9)) returned dtype {got.dtype}; expected {dtype}")


@exercise("independent_copy")
class TestIndependentCopy:
    @staticmethod
    def _computed(device="cpu", dtype=torch.float32) -> torch.Tensor:
        """A non-leaf that requires grad: the output of a computation on a leaf, w * 2."""
        w = torch.tensor([1.0, -2.0, 3.0], dtype=dtype, device=device, requires_grad=True)
        return w * 2

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
    def test_values_dtype_and_device_match_x(self, kata, device, dtype):
        x = self._computed(device, dtype)
        expected = torch.tensor([2.0, -4.0, 6.0], dtype=dtype, device=device)
        check_tensor(kata.independent_copy(x), expected, f"independent_copy(x = w * 2, {dtype})")

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

    def test_writes_into_the_snapshot_do_not_reach_x(self, kata):
        x = self._computed()
        got = kata.independent_copy(x)
        _is_tensor(got, "independent_copy(x = w * 2)")
        with torch.no_grad():
            got.fill_(-1.0)
        check_tensor(
            x.detach(),
            torch.tensor([2.0, -4.0, 6.0]),
            "after snapshot = independent_copy(x) and snapshot.fill_(-1), the caller's x",
        )

    def test_is_detached_from_the_graph(self, kata, device):
        x = self._computed(device)
        got = kata.independent_copy(x)
        _is_tensor(got, "independent_copy(x = w * 2)")
        check(
            got.grad_fn is None and not got.requires_grad,
            f"independent_copy(x = w * 2) returned a tensor with requires_grad={got.requires_grad}, "
            f"grad_fn={type(got.grad_fn).__name__ if got.grad_fn else None}; expected requires_grad=False and no "
            "grad_fn: a snapshot is out of the graph, so nothing computed from it reaches w",
        )

    def test_a_parameter_snapshot_is_detached_too(self, kata):
        w = torch.nn.Parameter(torch.ones(3))
        got = kata.independent_copy(w)
        _is_tensor(got, "independent_copy(nn.Parameter of ones(3))")
        check(
            not got.requires_grad and got.grad_fn is None,
            f"independent_copy(nn.Parameter of ones(3)) returned {type(got).__name__} with "
            f"requires_grad={got.requires_grad}, grad_fn={type(got.grad_fn).__name__ if got.grad_fn else None}; "
            "expected requires_grad=False and no grad_fn",
        )

    def test_a_parameter_still_requires_grad_afterwards(self, kata):
        w = torch.nn.Parameter(torch.ones(3))
        kata.independent_copy(w)
        check(
            w.requires_grad and w.is_leaf,
            f"after independent_copy(w) with w an nn.Parameter, w has requires_grad={w.requires_grad}, "
            f"is_leaf={w.is_leaf}; expected the caller's parameter untouched (requires_grad=True, a leaf): "
            "the snapshot leaves the graph, x does not",
        )

    def test_a_computed_x_is_still_in_its_graph_afterwards(self, kata):
        w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
        x = w * 2
        kata.independent_copy(x)
        check(
            x.requires_grad and x.grad_fn is not None,
            f"after independent_copy(x) with x = w * 2, x has requires_grad={x.requires_grad}, "
            f"grad_fn={type(x.grad_fn).__name__ if x.grad_fn else None}; expected x still in its graph "
            "(requires_grad=True, grad_fn MulBackward0): the snapshot leaves the graph, x does not",
        )
        x.sum().backward()
        check_tensor(
            w.grad, torch.tensor([2.0, 2.0, 2.0]), "w.grad after independent_copy(x = w * 2), x.sum().backward()"
        )

    def test_a_transposed_x_keeps_its_shape_and_values(self, kata):
        w = torch.arange(6.0).reshape(2, 3).requires_grad_()
        x = (w * 2).t()
        expected = torch.tensor([[0.0, 6.0], [2.0, 8.0], [4.0, 10.0]])
        check_tensor(kata.independent_copy(x), expected, "independent_copy(x = (w * 2).t() of shape (3, 2))")

    def test_a_plain_tensor_is_copied_too(self, kata):
        x = torch.tensor([5, -6, 7])
        got = kata.independent_copy(x)
        check_tensor(got, torch.tensor([5, -6, 7]), "independent_copy(int64 [5, -6, 7])")
        check_own_memory(got, x, "independent_copy(int64 [5, -6, 7])", "a snapshot must not change when x does")


@exercise("flatten_any")
class TestFlattenAny:
    def test_contiguous_input_flattens_in_row_order(self, kata, device):
        x = _grid(3, 4, device)
        check_tensor(kata.flatten_any(x), torch.arange(12.0, device=device), "flatten_any(arange(12.).reshape(3, 4))")

    def test_transposed_input_flattens_in_index_order(self, kata, device):
        x = _grid(2, 3, device).t()  # [[0, 3], [1, 4], [2, 5]]; memory still holds 0, 1, 2, 3, 4, 5
        expected = torch.tensor([0.0, 3.0, 1.0, 4.0, 2.0, 5.0], device=device)
        check_tensor(kata.flatten_any(x), expected, "flatten_any(x.t() with x = arange(6.).reshape(2, 3))")

    def test_strided_slice_flattens_only_its_own_elements(self, kata):
        x = _grid(3, 4)[:, ::2]  # [[0, 2], [4, 6], [8, 10]]
        expected = torch.tensor([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
        check_tensor(kata.flatten_any(x), expected, "flatten_any(x[:, ::2] with x = arange(12.).reshape(3, 4))")

    def test_permuted_3d_input_flattens_in_index_order(self, kata):
        x = torch.arange(24, dtype=torch.int64).reshape(2, 3, 4).permute(2, 0, 1)
        expected = torch.tensor([x[i, j, k].item() for i in range(4) for j in range(2) for k in range(3)])
        check_tensor(kata.flatten_any(x), expected, "flatten_any(arange(24).reshape(2, 3, 4).permute(2, 0, 1))")

    def test_a_strided_1d_slice_keeps_its_elements(self, kata):
        x = torch.arange(10.0)[::3]
        check_tensor(kata.flatten_any(x), torch.tensor([0.0, 3.0, 6.0, 9.0]), "flatten_any(arange(10.)[::3])")

    def test_a_0d_tensor_gives_one_element(self, kata):
        check_tensor(kata.flatten_any(torch.tensor(7.0)), torch.tensor([7.0]), "flatten_any(tensor(7.))")

    def test_contiguous_input_is_not_copied(self, kata):
        x = _offset_rows()  # contiguous, starting partway into its storage
        got = kata.flatten_any(x)
        check_shares_memory(got, x, "flatten_any(contiguous x)", "when x is contiguous, no copy is needed")
        check(
            got.shape == (18,),
            f"flatten_any(x of shape (3, 6)) returned {describe(got)}; expected shape (18,)",
        )
        got[0] = -1.0
        got[17] = -2.0
        seen = (x[0, 0].item(), x[2, 5].item())
        check(
            seen == (-1.0, -2.0),
            f"after got = flatten_any(x) with x = arange(24.).reshape(4, 6)[1:], got[0] = -1 and got[17] = -2, x's "
            f"first and last elements are {seen}; expected (-1.0, -2.0): for a contiguous x the result is a view "
            "of x's own elements",
        )


@exercise("checked_view")
class TestCheckedView:
    @pytest.mark.parametrize("shape", [(2, 6), (-1, 3)], ids=str)
    def test_a_possible_view_is_returned_and_shares_memory(self, kata, device, shape):
        x = _grid(3, 4, device)
        expected = torch.arange(12.0, device=device).reshape(shape)
        got = kata.checked_view(x, shape)
        check_tensor(got, expected, f"checked_view(arange(12.).reshape(3, 4), {shape})")
        check_shares_memory(got, x, f"checked_view(x, {shape})", "a view never copies")

    def test_writes_into_the_view_reach_x(self, kata):
        x = _offset_rows()
        got = kata.checked_view(x, (9, 2))
        _is_tensor(got, "checked_view(x, (9, 2))")
        got[8, 1] = -5.0
        check(
            x[2, 5].item() == -5.0,
            f"after got = checked_view(x, (9, 2)) with x = arange(24.).reshape(4, 6)[1:] and got[8, 1] = -5, "
            f"x[2, 5] is {x[2, 5].item()}; expected -5.0: the result is a view of x's own elements",
        )

    def test_a_non_contiguous_input_that_can_be_viewed_is_viewed(self, kata):
        x = _grid(3, 4)[:, :2]  # not contiguous, yet (3, 1, 2) only splits the last dimension
        expected = torch.tensor([[[0.0, 1.0]], [[4.0, 5.0]], [[8.0, 9.0]]])
        what, err, got = _outcome(lambda: kata.checked_view(x, (3, 1, 2)))
        check(
            err is None,
            f"checked_view(x[:, :2] of shape (3, 2), (3, 1, 2)) {what}; expected the view: x is not contiguous, "
            "yet x.view(3, 1, 2) works, so checked_view must return it",
        )
        check_tensor(got, expected, "checked_view(x[:, :2] of shape (3, 2), (3, 1, 2))")
        check_shares_memory(got, x, "checked_view(x[:, :2], (3, 1, 2))", "x.view(3, 1, 2) works here")

    @staticmethod
    def _value_error(kata, x, shape, called, why):
        """The ValueError that checked_view(x, shape) must raise, with a message saying what happened instead."""
        __tracebackhide__ = True
        what, err, _ = _outcome(lambda: kata.checked_view(x, shape))
        check(isinstance(err, ValueError), f"{called} {what}; expected ValueError: {why}")
        check(
            "cannot view" in str(err).lower(),
            f"{called} raised ValueError({str(err)!r}); expected its message to contain 'cannot view' (any letter case)",
        )
        return err

    def test_an_impossible_layout_raises_value_error_saying_cannot_view(self, kata):
        self._value_error(
            kata,
            _grid(2, 3).t(),
            (6,),
            "checked_view(x.t() of shape (3, 2), (6,))",
            "x.t() cannot be viewed as (6,) (reshape would copy silently, which is what checked_view exists to refuse)",
        )

    def test_a_shape_with_the_wrong_number_of_elements_raises_value_error(self, kata):
        self._value_error(
            kata, _grid(3, 4), (5, 2), "checked_view(x of shape (3, 4), (5, 2))", "12 elements cannot be viewed as 10"
        )

    @pytest.mark.parametrize(
        "case",
        [
            pytest.param(
                ((2, 3), True, (6,), "view size is not compatible with input tensor's size and stride"), id="layout"
            ),
            pytest.param(((3, 4), False, (5, 2), "is invalid for input of size 12"), id="wrong-size"),
        ],
    )
    def test_the_value_error_chains_pytorchs_runtime_error(self, kata, case):
        (rows, cols), transpose, shape, pytorch_says = case
        x = _grid(rows, cols).t() if transpose else _grid(rows, cols)
        called = f"checked_view(x{'.t()' if transpose else ''} of shape {tuple(x.shape)}, {shape})"
        err = self._value_error(kata, x, shape, called, "x.view cannot make that view")
        cause = err.__cause__
        check(
            isinstance(cause, RuntimeError),
            f"{called} raised ValueError({str(err)!r}) with __cause__ = {cause!r}; expected PyTorch's RuntimeError as "
            "its cause, so that the traceback keeps PyTorch's explanation",
        )
        check(
            pytorch_says in str(cause),
            f"{called}: the ValueError's __cause__ says {str(cause)!r}; expected the RuntimeError that "
            f"x.view{shape} raises (...{pytorch_says}...)",
        )


@exercise("shares_storage")
class TestSharesStorage:
    VIEWS = {
        "x[1:]": lambda x: x[1:],
        "x[::2]": lambda x: x[::2],
        "x[:, 1]": lambda x: x[:, 1],
        "x[2, 1:]": lambda x: x[2, 1:],
        "x.t()": lambda x: x.t(),
        "x.view(-1)": lambda x: x.view(-1),
        "x[0].expand(4, 3)": lambda x: x[0].expand(4, 3),
        "x.view(torch.int32)": lambda x: x.view(torch.int32),
        "x.detach()": lambda x: x.detach(),
    }
    COPIES = {
        "x.clone()": lambda x: x.clone(),
        "torch.zeros_like(x) + x": lambda x: torch.zeros_like(x) + x,
        "x.t().contiguous()": lambda x: x.t().contiguous(),
        "x.t().reshape(-1)": lambda x: x.t().reshape(-1),
    }
    ORDERS = [pytest.param(False, id="x-first"), pytest.param(True, id="x-second")]

    @staticmethod
    def _x(device="cpu") -> torch.Tensor:
        """A (4, 3) tensor that owns its storage (not itself a view of something else)."""
        return torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [9.0, 10.0, 11.0]], device=device)

    def _call(self, kata, a, b, a_name, b_name, swap):
        if swap:
            a, b, a_name, b_name = b, a, b_name, a_name
        return kata.shares_storage(a, b), f"shares_storage({a_name}, {b_name})"

    @pytest.mark.parametrize("swap", ORDERS)
    @pytest.mark.parametrize("name", list(VIEWS))
    def test_true_for_a_view(self, kata, name, swap):
        x = self._x()
        got, called = self._call(kata, x, self.VIEWS[name](x), "x", name, swap)
        check(got is True, f"{called} returned {describe(got)}; expected True: {name} is a view of x")

    @pytest.mark.parametrize("name", ["x[1:]", "x.t()"])
    def test_true_for_a_view_on_every_device(self, kata, device, name):
        x = self._x(device)
        got = kata.shares_storage(x, self.VIEWS[name](x))
        check(got is True, f"shares_storage(x, {name}) on {device} returned {describe(got)}; expected True")

    @pytest.mark.parametrize("swap", ORDERS)
    @pytest.mark.parametrize("name", list(COPIES))
    def test_false_for_a_copy_even_with_equal_values(self, kata, name, swap):
        x = self._x()
        got, called = self._call(kata, x, self.COPIES[name](x), "x", name, swap)
        check(got is False, f"{called} returned {describe(got)}; expected False: {name} is new memory")

    def test_false_for_a_copy_on_every_device(self, kata, device):
        x = self._x(device)
        got = kata.shares_storage(x, x.clone())
        check(got is False, f"shares_storage(x, x.clone()) on {device} returned {describe(got)}; expected False")

    def test_false_for_two_separately_made_tensors(self, kata):
        a, b = torch.arange(10.0), torch.arange(10.0)
        got = kata.shares_storage(a, b)
        check(
            got is False,
            f"shares_storage(torch.arange(10.), torch.arange(10.)) returned {describe(got)}; expected False: "
            "two tensors made separately have separate storages, whatever their values",
        )

    @pytest.mark.parametrize("swap", ORDERS)
    @pytest.mark.parametrize("pair", ["x[:5]-and-x[5:]", "x[1:]-and-x[2:]"])
    def test_true_for_two_views_of_one_tensor(self, kata, pair, swap):
        # Same storage, disjoint or overlapping elements: the question is about the storage, not about overlap.
        x = torch.arange(10.0)
        first, second = (x[:5], x[5:]) if pair == "x[:5]-and-x[5:]" else (x[1:], x[2:])
        names = pair.split("-and-")
        got, called = self._call(kata, first, second, names[0], names[1], swap)
        check(got is True, f"{called} returned {describe(got)}; expected True: both are views of x")

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_false_for_tensors_on_different_devices(self, kata, device):
        x = self._x()
        got = kata.shares_storage(x, x.to(device))
        check(got is False, f"shares_storage(x on cpu, x.to({device!r})) returned {describe(got)}; expected False")


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

    def test_a_non_contiguous_row_is_tiled_too(self, kata):
        row = _grid(3, 4)[:, 1]  # a column: [1., 5., 9.] with stride 4
        expected = torch.tensor([[1.0, 5.0, 9.0], [1.0, 5.0, 9.0]])
        check_tensor(kata.tile_rows(row, 2), expected, "tile_rows(column 1 of arange(12.).reshape(3, 4), 2)")

    @pytest.mark.parametrize("n", [1, 3], ids=lambda n: f"n={n}")
    def test_the_result_does_not_share_memory_with_row(self, kata, device, n):
        row = torch.arange(3.0, device=device)
        got = kata.tile_rows(row, n)
        check_own_memory(got, row, f"tile_rows(row, {n})", "every row needs its own memory, not row's")

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

    def test_an_in_place_operation_on_the_whole_result_works(self, kata):
        row = torch.tensor([1.0, 2.0])
        expected = torch.tensor([[11.0, 12.0], [11.0, 12.0], [11.0, 12.0]])
        got = kata.tile_rows(row, 3)
        _is_tensor(got, "tile_rows([1., 2.], 3)")
        what, err, _ = _outcome(lambda: got.add_(10.0))
        check(
            err is None,
            f"result.add_(10) on result = tile_rows([1., 2.], 3) {what}; expected it to work: every element of the "
            "result needs its own memory",
        )
        check_tensor(got, expected, "tile_rows([1., 2.], 3) after add_(10)")
        check_tensor(row, torch.tensor([1.0, 2.0]), "the caller's row after tile_rows(row, 3).add_(10)")


@exercise("clamp_negatives_copy")
class TestClampNegativesCopy:
    def test_negatives_become_zero(self, kata, device):
        x = torch.tensor([[-1.5, 0.0, 2.0], [3.0, -0.25, -7.0]], device=device)
        expected = torch.tensor([[0.0, 0.0, 2.0], [3.0, 0.0, 0.0]], device=device)
        check_tensor(kata.clamp_negatives_copy(x), expected, "clamp_negatives_copy(x of shape (2, 3))")

    def test_minus_infinity_becomes_zero_and_infinity_stays(self, kata):
        inf = float("inf")
        x = torch.tensor([-inf, inf, -2.0, 3.0])
        check_tensor(
            kata.clamp_negatives_copy(x), torch.tensor([0.0, inf, 0.0, 3.0]), "clamp_negatives_copy([-inf, inf, -2, 3])"
        )

    def test_nan_is_kept(self, kata):
        nan = float("nan")
        x = torch.tensor([nan, -1.0, 1.0])
        check_tensor(
            kata.clamp_negatives_copy(x),
            torch.tensor([nan, 0.0, 1.0]),
            "clamp_negatives_copy([nan, -1, 1]) (nan is not negative, so it stays nan)",
        )

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
