"""Tests for kata 01, tensor operations: one class per exercise, in learning order."""

import pytest
import torch

from dojo.testing import check, check_tensor, describe, exercise, expect_raises, storage_ptr

# The "meta" device exists on every machine (tensors with a shape and dtype, but no data), so it
# catches a forgotten device without needing a GPU.
META = torch.device("meta")


@exercise("zeros_with_dtype")
class TestZerosWithDtype:
    @pytest.mark.parametrize("dtype", [torch.float64, torch.int64, torch.bool], ids=str)
    def test_zeros_have_the_requested_dtype_and_the_shape_of_x(self, kata, device, dtype):
        if device.type == "mps" and dtype == torch.float64:
            pytest.skip("MPS has no float64")
        x = torch.arange(6, dtype=torch.float32, device=device).reshape(2, 3) + 1
        got = kata.zeros_with_dtype(x, dtype)
        check_tensor(
            got, torch.zeros(2, 3, dtype=dtype, device=device), f"zeros_with_dtype(x of shape (2, 3), {dtype})"
        )

    def test_zeros_stay_on_the_device_of_x(self, kata):
        x = torch.empty(4, 5, device=META)
        got = kata.zeros_with_dtype(x, torch.float16)
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.dtype == torch.float16,
            f"zeros_with_dtype(x on device 'meta', torch.float16) returned {describe(got)}; expected a float16 "
            "tensor on x's device ('meta'). torch.zeros(shape) always creates on the default device.",
        )


@exercise("ones_like_template")
class TestOnesLikeTemplate:
    @pytest.mark.parametrize("dtype", [torch.int64, torch.float16], ids=str)
    def test_ones_take_the_template_dtype_and_the_given_shape(self, kata, device, dtype):
        template = torch.zeros(2, 2, dtype=dtype, device=device)
        got = kata.ones_like_template(template, (3, 4, 5))
        check_tensor(
            got, torch.ones(3, 4, 5, dtype=dtype, device=device), f"ones_like_template(template {dtype}, (3, 4, 5))"
        )

    def test_ones_stay_on_the_template_device(self, kata):
        template = torch.empty(2, dtype=torch.float64, device=META)
        got = kata.ones_like_template(template, (7,))
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.shape == (7,) and got.dtype == torch.float64,
            f"ones_like_template(template float64 on 'meta', (7,)) returned {describe(got)}; "
            "expected a float64 tensor of shape (7,) on the template's device ('meta')",
        )


@exercise("add_into")
class TestAddInto:
    def test_the_callers_out_tensor_holds_the_sum(self, kata, device):
        x = torch.tensor([1.0, 2.0, 3.0], device=device)
        y = torch.tensor([10.0, 20.0, 30.0], device=device)
        out = torch.zeros(3, device=device)
        kata.add_into(x, y, out)
        check_tensor(
            out, torch.tensor([11.0, 22.0, 33.0], device=device), "after add_into(x, y, out), the caller's out"
        )

    def test_returns_out_itself_with_its_memory_unchanged(self, kata, device):
        x, y = torch.ones(2, 3, device=device), torch.full((2, 3), 2.0, device=device)
        out = torch.empty(2, 3, device=device)
        before = storage_ptr(out)
        got = kata.add_into(x, y, out)
        check(
            got is out, f"add_into(x, y, out) returned {describe(got)}, a new tensor; expected the `out` object itself"
        )
        check(
            storage_ptr(out) == before,
            "add_into(x, y, out) gave `out` new memory; expected it to write into out's memory",
        )

    def test_the_inputs_are_left_unchanged(self, kata):
        x, y, out = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]), torch.zeros(2)
        kata.add_into(x, y, out)
        check(
            x.tolist() == [1.0, 2.0] and y.tolist() == [3.0, 4.0],
            f"add_into changed its inputs: x={x.tolist()}, y={y.tolist()}",
        )


@exercise("add_in_place")
class TestAddInPlace:
    def test_the_callers_tensor_is_updated(self, kata, device):
        x = torch.tensor([1.0, 2.0, 3.0], device=device)
        kata.add_in_place(x, torch.tensor([0.5, 0.5, 0.5], device=device))
        check_tensor(x, torch.tensor([1.5, 2.5, 3.5], device=device), "after add_in_place(x, y), the caller's x")

    def test_returns_the_same_object_and_memory(self, kata):
        x = torch.zeros(4)
        before, version = storage_ptr(x), x._version
        got = kata.add_in_place(x, torch.ones(4))
        check(got is x, f"add_in_place(x, y) returned {describe(got)}, a new tensor; expected x itself")
        check(storage_ptr(x) == before, "add_in_place(x, y) moved x to new memory; expected it updated in place")
        # Every in-place op bumps the tensor's version counter; autograd uses it to spot stale saved values.
        check(x._version > version, "x's version counter did not move: x was not modified in place")

    def test_broadcasts_y_over_the_rows_of_x(self, kata):
        x = torch.zeros(2, 3)
        kata.add_in_place(x, torch.tensor([1.0, 2.0, 3.0]))
        check_tensor(
            x, torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), "after add_in_place(zeros(2, 3), [1, 2, 3]), x"
        )


@exercise("column")
class TestColumn:
    @pytest.mark.parametrize("j", [0, 2, -1], ids=lambda j: f"j={j}")
    def test_returns_column_j_as_1d(self, kata, j):
        x = torch.arange(12.0).reshape(3, 4)  # not square, so a row and a column differ in length
        check_tensor(kata.column(x, j), x[:, j].clone(), f"column(x of shape (3, 4), {j})")


@exercise("flatten_rows")
class TestFlattenRows:
    @pytest.mark.parametrize(
        "shape",
        [(4, 3, 2, 2), (1, 3, 5), (5, 7), (2, 1, 1)],
        ids=["batch4_images", "batch_of_one", "already_2d", "trailing_ones"],
    )
    def test_keeps_the_batch_dimension_and_flattens_the_rest(self, kata, shape):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        expected = x.reshape(shape[0], -1).clone()
        check_tensor(kata.flatten_rows(x), expected, f"flatten_rows(x of shape {shape})")


@exercise("add_batch_dim")
class TestAddBatchDim:
    def test_adds_a_leading_dimension_of_size_one(self, kata, device):
        image = torch.rand(3, 8, 6, generator=torch.Generator().manual_seed(1)).to(device)
        check_tensor(kata.add_batch_dim(image), image[None].clone(), "add_batch_dim(image of shape (3, 8, 6))")


@exercise("to_python_number")
class TestToPythonNumber:
    @pytest.mark.parametrize(
        "value, shape, dtype, kind",
        [(2.5, (), torch.float32, float), (7, (1, 1), torch.int64, int), (-3.25, (1,), torch.float64, float)],
        ids=["float_scalar", "int_1x1", "float64_1elem"],
    )
    def test_returns_a_plain_python_number_of_the_right_kind(self, kata, value, shape, dtype, kind):
        t = torch.tensor(value, dtype=dtype).reshape(shape)
        got = kata.to_python_number(t)
        check(
            type(got) is kind and got == value,
            f"to_python_number({describe(t)}) returned {describe(got)}; expected the {kind.__name__} {value!r}",
        )

    def test_works_on_a_loss_that_requires_grad(self, kata):
        w = torch.tensor([1.0, 2.0], requires_grad=True)
        loss = (w * w).sum()
        got = kata.to_python_number(loss)
        check(
            type(got) is float and abs(got - 5.0) < 1e-6,
            f"to_python_number(loss=5.0 with grad_fn) returned {describe(got)}; expected 5.0",
        )

    def test_more_than_one_element_raises_pytorchs_error(self, kata):
        with expect_raises(
            RuntimeError, "a Tensor with 4 elements cannot be converted to Scalar", "to_python_number(ones(2, 2))"
        ):
            kata.to_python_number(torch.ones(2, 2))


@exercise("predicted_classes")
class TestPredictedClasses:
    def test_one_class_per_row(self, kata, device):
        scores = torch.tensor([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]], device=device)
        check_tensor(
            kata.predicted_classes(scores),
            torch.tensor([1, 0, 2, 2], device=device),
            "predicted_classes(scores of shape (4, 3))",
        )

    def test_square_scores_are_read_along_rows(self, kata):
        # With N == C a reduction over the wrong dimension has the right shape but wrong values.
        scores = torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        check_tensor(
            kata.predicted_classes(scores), torch.tensor([1, 0, 1]), "predicted_classes(scores of shape (3, 3))"
        )


@exercise("pairwise_sums")
class TestPairwiseSums:
    def test_rows_follow_a_and_columns_follow_b(self, kata):
        a, b = torch.tensor([0.0, 10.0]), torch.tensor([1.0, 2.0, 3.0])
        check_tensor(
            kata.pairwise_sums(a, b),
            torch.tensor([[1.0, 2.0, 3.0], [11.0, 12.0, 13.0]]),
            "pairwise_sums(a of 2, b of 3)",
        )

    def test_equal_lengths_are_not_transposed(self, kata):
        a, b = torch.tensor([100.0, 200.0]), torch.tensor([1.0, 2.0])
        check_tensor(
            kata.pairwise_sums(a, b),
            torch.tensor([[101.0, 102.0], [201.0, 202.0]]),
            "pairwise_sums([100, 200], [1, 2])",
        )
