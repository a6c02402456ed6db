"""Tests for kata 01, tensor operations: one class per exercise, in learning order.

Every expected value, and every description of an input used in a message, is built before the
learner's function is called: an answer that modifies its input in place must not change what a
message calls "expected".
"""

import pytest
import torch

from dojo.testing import check, check_tensor, describe, exercise, expect_raises, storage_ptr

# The "meta" device exists on every machine (tensors with a shape and dtype, but no data), so it
# catches a forgotten device without needing a GPU.
META = torch.device("meta")


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def no_graph(t: torch.Tensor) -> bool:
    return isinstance(t, torch.Tensor) and not t.requires_grad and t.grad_fn is None


def unchanged(t: torch.Tensor, saved: torch.Tensor) -> bool:
    """`t` still has the shape and the values of `saved` (a clone taken before the call)."""
    return t.shape == saved.shape and bool((t == saved).all())


def skip_float64_on_mps(device: torch.device, *dtypes: torch.dtype) -> None:
    if device.type == "mps" and torch.float64 in dtypes:
        pytest.skip("MPS has no float64")


@exercise("zeros_with_dtype")
class TestZerosWithDtype:
    @pytest.mark.parametrize("dtype", [torch.float64, torch.int64, torch.bool], ids=str)
    def test_zeros_have_the_requested_dtype_and_the_shape_of_x(self, kata, device, dtype):
        skip_float64_on_mps(device, dtype)
        x = torch.arange(6, dtype=torch.float32, device=device).reshape(2, 3) + 1
        expected = torch.zeros(2, 3, dtype=dtype, device=device)
        got = kata.zeros_with_dtype(x, dtype)
        check_tensor(got, expected, f"zeros_with_dtype(x float32 of shape (2, 3), {dtype})")

    @pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4)], ids=["0d", "1d", "3d"])
    def test_any_shape_of_x_is_kept(self, kata, shape):
        x = torch.ones(shape, dtype=torch.float64)
        expected = torch.zeros(shape, dtype=torch.int32)
        got = kata.zeros_with_dtype(x, torch.int32)
        check_tensor(got, expected, f"zeros_with_dtype(x float64 of shape {shape}, torch.int32)")

    def test_zeros_stay_on_the_device_of_x(self, kata):
        x = torch.empty(4, 5, device=META)
        got = kata.zeros_with_dtype(x, torch.float16)
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.dtype == torch.float16 and got.shape == (4, 5),
            f"zeros_with_dtype(x of shape (4, 5) on device 'meta', torch.float16) returned {describe(got)}; "
            "expected a float16 tensor of shape (4, 5) on x's device ('meta')",
        )

    def test_inf_and_nan_in_x_still_give_zeros(self, kata):
        x = torch.tensor([1.0, float("inf"), float("-inf"), float("nan")])
        expected = torch.zeros(4, dtype=torch.float64)
        got = kata.zeros_with_dtype(x, torch.float64)
        check_tensor(got, expected, "zeros_with_dtype(x = [1, inf, -inf, nan], torch.float64)")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["same_dtype", "other_dtype"])
    def test_x_is_left_unchanged_and_shares_no_memory_with_the_result(self, kata, dtype):
        x = torch.tensor([[1.0, -2.0], [3.0, 4.5]])
        saved = x.clone()
        got = kata.zeros_with_dtype(x, dtype)
        check(unchanged(x, saved), f"zeros_with_dtype(x = {saved.tolist()}, {dtype}) changed x to {x.tolist()}")
        check(
            isinstance(got, torch.Tensor) and storage_ptr(got) != storage_ptr(x),
            f"zeros_with_dtype(x, {dtype}) returned {describe(got)} in x's own memory; expected a fresh tensor",
        )

    def test_the_result_carries_no_graph_when_x_requires_grad(self, kata):
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        got = kata.zeros_with_dtype(x, torch.float64)
        check(
            no_graph(got),
            f"zeros_with_dtype(x that requires grad, torch.float64) returned {describe(got)}"
            f"{' with grad_fn ' + type(got.grad_fn).__name__ if getattr(got, 'grad_fn', None) else ''}; "
            "expected a fresh tensor that does not require grad and has no grad_fn",
        )


@exercise("ones_like_template")
class TestOnesLikeTemplate:
    @pytest.mark.parametrize("dtype", [torch.int64, torch.float16], ids=str)
    def test_ones_take_the_template_dtype_and_the_given_shape(self, kata, device, dtype):
        template = torch.zeros(2, 2, dtype=dtype, device=device)
        expected = torch.ones(3, 4, 5, dtype=dtype, device=device)
        got = kata.ones_like_template(template, (3, 4, 5))
        check_tensor(got, expected, f"ones_like_template(template {dtype} of shape (2, 2), (3, 4, 5))")

    @pytest.mark.parametrize("shape", [(), (7,), (1, 6)], ids=["0d", "1d", "one_row"])
    def test_the_result_has_exactly_the_given_shape(self, kata, shape):
        template = torch.zeros(2, 3, dtype=torch.float64)
        expected = torch.ones(shape, dtype=torch.float64)
        got = kata.ones_like_template(template, shape)
        check_tensor(got, expected, f"ones_like_template(template float64 of shape (2, 3), {shape})")

    def test_ones_stay_on_the_template_device(self, kata):
        template = torch.empty(2, dtype=torch.float64, device=META)
        got = kata.ones_like_template(template, (7,))
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.shape == (7,) and got.dtype == torch.float64,
            f"ones_like_template(template float64 on 'meta', (7,)) returned {describe(got)}; "
            "expected a float64 tensor of shape (7,) on the template's device ('meta')",
        )

    def test_the_template_is_left_unchanged_and_shares_no_memory_with_the_result(self, kata):
        template = torch.arange(4.0).reshape(2, 2)
        saved = template.clone()
        got = kata.ones_like_template(template, (3, 4))
        check(
            unchanged(template, saved),
            f"ones_like_template(template = {saved.tolist()}, (3, 4)) changed the template to {describe(template)}",
        )
        check(
            isinstance(got, torch.Tensor) and storage_ptr(got) != storage_ptr(template),
            f"ones_like_template(template, (3, 4)) returned {describe(got)} in the template's memory; "
            "expected a fresh tensor",
        )

    def test_the_result_carries_no_graph_when_the_template_requires_grad(self, kata):
        template = torch.zeros(3, requires_grad=True)
        got = kata.ones_like_template(template, (2, 2))
        check(
            no_graph(got),
            f"ones_like_template(template that requires grad, (2, 2)) returned {describe(got)}; "
            "expected a fresh tensor that does not require grad and has no grad_fn",
        )


@exercise("add_into")
class TestAddInto:
    def test_the_callers_out_holds_the_sum_not_the_sum_plus_its_old_values(self, kata, device):
        x = torch.tensor([1.0, 2.0, 3.0], device=device)
        y = torch.tensor([10.0, 20.0, 30.0], device=device)
        out = torch.full((3,), 100.0, device=device)  # not zeros: summing into out must show
        expected = torch.tensor([11.0, 22.0, 33.0], device=device)
        kata.add_into(x, y, out)
        check_tensor(
            out, expected, "after add_into(x=[1, 2, 3], y=[10, 20, 30], out=[100, 100, 100]), the caller's out"
        )

    def test_returns_out_itself(self, kata, device):
        x, y = torch.ones(2, 3, device=device), torch.full((2, 3), 2.0, device=device)
        out = torch.zeros(2, 3, device=device)
        got = kata.add_into(x, y, out)
        check(got is out, f"add_into(x, y, out) returned {describe(got)}; expected the `out` object itself")

    def test_out_keeps_its_memory(self, kata):
        x, y = torch.ones(2, 3), torch.full((2, 3), 2.0)
        out = torch.zeros(2, 3)
        before = storage_ptr(out)
        kata.add_into(x, y, out)
        check(
            storage_ptr(out) == before,
            "after add_into(x, y, out), out points at new memory; expected the sum written into the memory out "
            "already had (the caller may hold other views of it)",
        )

    def test_a_view_into_a_larger_buffer_is_filled_in_place(self, kata, device):
        buffer = torch.full((3, 4), -1.0, device=device)
        out = buffer[:, 1:3]  # two columns of a matrix: not contiguous
        x = torch.arange(6.0, device=device).reshape(3, 2)
        y = torch.full((3, 2), 10.0, device=device)
        expected = torch.tensor(
            [[-1.0, 10.0, 11.0, -1.0], [-1.0, 12.0, 13.0, -1.0], [-1.0, 14.0, 15.0, -1.0]], device=device
        )
        kata.add_into(x, y, out)
        check_tensor(
            buffer,
            expected,
            "add_into(x, y, out=buffer[:, 1:3]) with buffer = full((3, 4), -1): afterwards, the buffer",
        )

    def test_the_inputs_are_left_unchanged(self, kata):
        x, y, out = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]), torch.full((2,), 7.0)
        kata.add_into(x, y, out)
        check(
            x.tolist() == [1.0, 2.0] and y.tolist() == [3.0, 4.0],
            f"add_into(x=[1, 2], y=[3, 4], out) changed its inputs to x={x.tolist()}, y={y.tolist()}; "
            "expected them left as they were",
        )


@exercise("add_in_place")
class TestAddInPlace:
    def test_the_callers_tensor_holds_the_sum(self, kata, device):
        x = torch.tensor([1.0, 2.0, 3.0], device=device)
        y = torch.tensor([0.5, 0.5, 0.5], device=device)
        expected = torch.tensor([1.5, 2.5, 3.5], device=device)
        kata.add_in_place(x, y)
        check_tensor(x, expected, "after add_in_place(x=[1, 2, 3], y=[0.5, 0.5, 0.5]), the caller's x")

    def test_returns_x_itself(self, kata):
        x = torch.zeros(4)
        got = kata.add_in_place(x, torch.ones(4))
        check(got is x, f"add_in_place(x, y) returned {describe(got)}; expected the object x itself")

    def test_x_keeps_its_memory(self, kata):
        x = torch.zeros(4)
        before = storage_ptr(x)
        kata.add_in_place(x, torch.ones(4))
        check(
            storage_ptr(x) == before,
            "after add_in_place(x, y), x points at new memory; expected the sum written into the memory x "
            "already had (other views of it must see the change)",
        )

    def test_a_0d_running_total_accumulates(self, kata):
        total = torch.tensor(0.0)
        for loss in (1.5, 2.0, 0.25):
            kata.add_in_place(total, torch.tensor(loss))
        check_tensor(
            total,
            torch.tensor(3.75),
            "total = tensor(0.0); add_in_place(total, tensor(l)) for l in (1.5, 2.0, 0.25); then total",
        )

    @pytest.mark.parametrize("part", ["row", "column"])
    def test_a_row_or_column_of_a_matrix_is_updated_in_the_matrix(self, kata, part):
        matrix = torch.zeros(3, 4)
        if part == "row":
            x, y, where = matrix[1], torch.tensor([1.0, 2.0, 3.0, 4.0]), "matrix[1]"
            expected = torch.tensor([[0.0] * 4, [1.0, 2.0, 3.0, 4.0], [0.0] * 4])
        else:
            x, y, where = matrix[:, 2], torch.tensor([1.0, 2.0, 3.0]), "matrix[:, 2]"
            expected = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
        kata.add_in_place(x, y)
        check_tensor(matrix, expected, f"matrix = zeros(3, 4); add_in_place({where}, {y.tolist()}); then the matrix")

    def test_y_broadcasts_over_the_rows_of_x_and_is_left_unchanged(self, kata):
        x = torch.zeros(2, 3)
        y = torch.tensor([1.0, 2.0, 3.0])
        expected = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        kata.add_in_place(x, y)
        check_tensor(x, expected, "after add_in_place(x=zeros(2, 3), y=[1, 2, 3]), x")
        check(y.tolist() == [1.0, 2.0, 3.0], f"add_in_place(x, y=[1, 2, 3]) changed y to {describe(y)}")


@exercise("column")
class TestColumn:
    @pytest.mark.parametrize("j", [0, 2, -1], ids=lambda j: f"j={j}")
    def test_returns_column_j_as_1d(self, kata, device, j):
        x = torch.arange(12.0, device=device).reshape(3, 4)  # not square: a row and a column differ in length
        expected = torch.tensor({0: [0.0, 4.0, 8.0], 2: [2.0, 6.0, 10.0], -1: [3.0, 7.0, 11.0]}[j], device=device)
        got = kata.column(x, j)
        check_tensor(got, expected, f"column(x = arange(12.).reshape(3, 4), {j})")

    def test_a_square_x_gives_a_column_not_a_row(self, kata):
        x = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        got = kata.column(x, 0)
        check_tensor(got, torch.tensor([1, 4, 7]), "column(x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], 0)")

    def test_one_row_gives_shape_1(self, kata):
        x = torch.tensor([[5, 6, 7, 8]])
        got = kata.column(x, 2)
        check_tensor(got, torch.tensor([7]), "column(x = [[5, 6, 7, 8]] of shape (1, 4), 2)")

    def test_a_transposed_x_works_and_is_left_unchanged(self, kata):
        x = torch.arange(12.0).reshape(4, 3).t()  # shape (3, 4), not contiguous
        saved = x.clone()
        expected = torch.tensor([3.0, 4.0, 5.0])
        got = kata.column(x, 1)
        check_tensor(got, expected, "column(x = arange(12.).reshape(4, 3).t(), a transposed (3, 4) tensor, 1)")
        check(unchanged(x, saved), f"column(x, 1) changed x to {describe(x)}")


@exercise("flatten_rows")
class TestFlattenRows:
    @pytest.mark.parametrize(
        "shape",
        [(4, 3, 2, 2), (1, 3, 5), (5, 7), (2, 1, 1), (2, 3, 1, 2, 2)],
        ids=["batch4_images", "batch_of_one", "already_2d", "trailing_ones", "5d"],
    )
    def test_keeps_the_batch_dimension_and_flattens_the_rest(self, kata, device, shape):
        x = torch.randn(shape, generator=seeded(0)).to(device)
        expected = torch.from_numpy(x.cpu().numpy().reshape(shape[0], -1).copy()).to(device)  # NumPy: row-major
        check_tensor(kata.flatten_rows(x), expected, f"flatten_rows(x of shape {shape})")

    def test_a_permuted_x_works_and_is_left_unchanged(self, kata):
        x = torch.arange(24.0).reshape(2, 4, 3).permute(0, 2, 1)  # shape (2, 3, 4), not contiguous
        saved = x.clone()
        expected = torch.stack([saved[0].flatten(), saved[1].flatten()])
        got = kata.flatten_rows(x)
        check_tensor(got, expected, "flatten_rows(x = arange(24.).reshape(2, 4, 3).permute(0, 2, 1), shape (2, 3, 4))")
        check(unchanged(x, saved), f"flatten_rows(x) changed x to {describe(x)}")


@exercise("add_batch_dim")
class TestAddBatchDim:
    def test_adds_a_leading_dimension_of_size_one(self, kata, device):
        image = torch.rand(3, 8, 6, generator=seeded(1)).to(device)
        expected = image.clone().reshape(1, 3, 8, 6)
        check_tensor(kata.add_batch_dim(image), expected, "add_batch_dim(image of shape (3, 8, 6))")

    def test_the_callers_image_keeps_its_shape_and_values(self, kata):
        image = torch.rand(3, 4, 5, generator=seeded(2))
        saved = image.clone()
        kata.add_batch_dim(image)
        check(
            unchanged(image, saved),
            f"after add_batch_dim(image of shape (3, 4, 5)), the caller's image has shape {tuple(image.shape)}; "
            "expected it left as it was, shape (3, 4, 5)",
        )


@exercise("to_python_number")
class TestToPythonNumber:
    @pytest.mark.parametrize(
        "value, shape, dtype, kind",
        [
            (2.5, (), torch.float32, float),
            (7, (1, 1), torch.int64, int),
            (-3.25, (1,), torch.float64, float),
            (0.5, (1, 1, 1), torch.float16, float),
            (200, (1,), torch.uint8, int),
            (-4, (), torch.int32, int),
            (True, (1,), torch.bool, bool),
        ],
        ids=["float32_0d", "int64_1x1", "float64_1", "float16_1x1x1", "uint8_1", "int32_0d", "bool_1"],
    )
    def test_returns_a_plain_python_number_of_the_right_kind(self, kata, value, shape, dtype, kind):
        t = torch.tensor(value, dtype=dtype).reshape(shape)
        called = f"to_python_number({describe(t)})"
        got = kata.to_python_number(t)
        check(
            type(got) is kind and got == value,
            f"{called} returned {describe(got)}; expected the built-in {kind.__name__} {value!r}",
        )

    def test_works_on_any_device(self, kata, device):
        t = torch.tensor([3.5], device=device)
        got = kata.to_python_number(t)
        check(
            type(got) is float and got == 3.5,
            f"to_python_number(tensor([3.5]) on {device}) returned {describe(got)}; expected the float 3.5",
        )

    def test_works_on_a_loss_that_requires_grad(self, kata):
        w = torch.tensor([1.0, 2.0], requires_grad=True)
        loss = (w * w).sum()
        got = kata.to_python_number(loss)
        check(
            type(got) is float and abs(got - 5.0) < 1e-6,
            f"to_python_number(loss = 5.0 with a grad_fn) returned {describe(got)}; expected the float 5.0",
        )

    @pytest.mark.parametrize(
        "t", [torch.ones(2, 2), torch.tensor([0.5, 0.25]), torch.ones(0)], ids=["4_elements", "2_elements", "empty"]
    )
    def test_anything_but_one_element_raises_runtime_error(self, kata, t):
        called = f"to_python_number({describe(t)})"
        with expect_raises(RuntimeError, None, called) as info:
            kata.to_python_number(t)
        check(
            not isinstance(info.value, NotImplementedError),
            f"{called} raised NotImplementedError: the exercise is not done yet",
        )


@exercise("predicted_classes")
class TestPredictedClasses:
    def test_one_class_per_row(self, kata, device):
        scores = torch.tensor([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]], device=device)
        expected = torch.tensor([1, 0, 2, 2], device=device)
        check_tensor(kata.predicted_classes(scores), expected, "predicted_classes(scores of shape (4, 3))")

    def test_square_scores_are_read_along_rows(self, kata):
        # With N == C a reduction over the wrong dimension has the right shape but wrong values.
        scores = torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        check_tensor(
            kata.predicted_classes(scores),
            torch.tensor([1, 0, 1]),
            "predicted_classes(scores = [[0, 5, 1], [9, 0, 0], [0, 1, 0]])",
        )

    def test_a_batch_of_one_gives_shape_1(self, kata):
        scores = torch.tensor([[0.2, -1.0, 3.0, 0.5]])
        check_tensor(
            kata.predicted_classes(scores), torch.tensor([2]), "predicted_classes(scores = [[0.2, -1, 3, 0.5]])"
        )

    def test_ties_go_to_the_smallest_index(self, kata):
        scores = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [5.0, 5.0, 5.0], [0.0, 4.0, 4.0]])
        check_tensor(
            kata.predicted_classes(scores),
            torch.tensor([1, 0, 0, 1]),
            "predicted_classes(scores = [[1, 3, 3], [2, 2, 0], [5, 5, 5], [0, 4, 4]]), rows with tied maxima",
        )


@exercise("pairwise_sums")
class TestPairwiseSums:
    def test_rows_follow_a_and_columns_follow_b(self, kata, device):
        a, b = torch.tensor([0.0, 10.0], device=device), torch.tensor([1.0, 2.0, 3.0], device=device)
        expected = torch.tensor([[1.0, 2.0, 3.0], [11.0, 12.0, 13.0]], device=device)
        check_tensor(kata.pairwise_sums(a, b), expected, "pairwise_sums(a=[0, 10], b=[1, 2, 3])")

    def test_equal_lengths_give_the_full_table_not_transposed(self, kata):
        a, b = torch.tensor([100.0, 200.0]), torch.tensor([1.0, 2.0])
        expected = torch.tensor([[101.0, 102.0], [201.0, 202.0]])
        check_tensor(kata.pairwise_sums(a, b), expected, "pairwise_sums(a=[100, 200], b=[1, 2])")

    def test_an_a_of_one_element_gives_one_row(self, kata):
        a, b = torch.tensor([5.0]), torch.tensor([1.0, 2.0, 3.0])
        expected = torch.tensor([[6.0, 7.0, 8.0]])
        check_tensor(kata.pairwise_sums(a, b), expected, "pairwise_sums(a=[5], b=[1, 2, 3])")

    @pytest.mark.parametrize("dtype", [torch.int64, torch.float64], ids=str)
    def test_the_table_keeps_the_dtype_of_a_and_b(self, kata, dtype):
        a, b = torch.tensor([1, 2, 3], dtype=dtype), torch.tensor([10, 20], dtype=dtype)
        expected = torch.tensor([[11, 21], [12, 22], [13, 23]], dtype=dtype)
        check_tensor(kata.pairwise_sums(a, b), expected, f"pairwise_sums(a=[1, 2, 3], b=[10, 20], both {dtype})")

    def test_a_and_b_are_left_unchanged(self, kata):
        a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0, 5.0])
        saved_a, saved_b = a.clone(), b.clone()
        kata.pairwise_sums(a, b)
        check(
            unchanged(a, saved_a) and unchanged(b, saved_b),
            f"pairwise_sums(a=[1, 2], b=[3, 4, 5]) changed its inputs to a: {describe(a)}, b: {describe(b)}; "
            "expected them left as they were, shapes included",
        )
