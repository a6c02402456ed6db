"""Tests for kata 14, shapes, dtypes and devices: one class per exercise, in learning order.

Every expected value is built here, before the call, from a reference independent of the code
under test (a loop, NumPy, float64, PyTorch's own verdict on a shape pair). The "meta" device
(shapes and dtypes, no data) exists on every machine: inputs on "meta" show a result created on
the CPU by mistake even where there is no GPU; the `device` fixture repeats the main tests on
CUDA or MPS where one is present.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from dojo.stubs import STUB_TAG
from dojo.testing import check, check_tensor, describe, exercise, expect_raises, storage_ptr

META = torch.device("meta")

# PyTorch's warning for a loss whose input and target shapes differ (confirmed on torch 2.11-2.14:
# "Using a target size (torch.Size([4])) that is different to the input size (torch.Size([4, 1]))").
SIZE_WARNING = "different to the input size"


def _on(device: torch.device) -> torch.device:
    """The device a tensor created on `device` reports ("cuda" becomes "cuda:0")."""
    return torch.empty(0, device=device).device


def _call_with_meta(called: str, fn, *args):
    """fn(*args) for a test whose inputs live on 'meta': an error says what 'meta' stands for."""
    __tracebackhide__ = True
    try:
        return fn(*args)
    except Exception as err:
        if STUB_TAG in str(err):
            raise  # the unfilled stub: reported as "not done yet", not as a failure
        message = f"{called} raised {type(err).__name__}: {str(err).splitlines()[0][:300]}"
    pytest.fail(
        f"{message}\n('meta' is a device with shapes and dtypes but no data; here it plays the GPU. A tensor made "
        "without device=... lands on the CPU: create new tensors on the device of the input.)",
        pytrace=False,
    )


def _check_meta_result(got, shape: tuple[int, ...], dtype: torch.dtype, called: str) -> None:
    __tracebackhide__ = True
    check(isinstance(got, torch.Tensor), f"{called} returned {describe(got)}; expected a tensor")
    check(got.device == META, f"{called} returned a tensor on {got.device}; expected it on meta, the input's device")
    check(tuple(got.shape) == shape, f"{called} returned shape {tuple(got.shape)}; expected {shape}")
    check(got.dtype == dtype, f"{called} returned dtype {got.dtype}; expected {dtype}")


# ---------------------------------------------------------------- make_batch


@exercise("make_batch")
class TestMakeBatch:
    def test_images_become_an_n_c_h_w_batch_in_order(self, kata, device):
        g = torch.Generator().manual_seed(0)
        samples = [torch.randn(3, 2, 4, generator=g).to(device) for _ in range(4)]
        expected = torch.empty(4, 3, 2, 4, device=device)
        for i, s in enumerate(samples):
            expected[i] = s
        got = kata.make_batch(samples)
        check_tensor(got, expected, "make_batch([4 images of shape (3, 2, 4)])")

    def test_a_batch_of_one_keeps_its_batch_dimension(self, kata):
        image = torch.arange(24.0).reshape(3, 2, 4)
        expected = image.clone().unsqueeze(0)
        got = kata.make_batch([image])
        check_tensor(got, expected, "make_batch([one image of shape (3, 2, 4)]) (a batch of one is (1, 3, 2, 4))")

    def test_zero_dim_labels_become_a_vector_of_their_dtype(self, kata):
        labels = [torch.tensor(3), torch.tensor(0), torch.tensor(7)]
        got = kata.make_batch(labels)
        check_tensor(got, torch.tensor([3, 0, 7]), "make_batch([tensor(3), tensor(0), tensor(7)])")

    def test_a_tuple_of_feature_vectors_becomes_rows(self, kata):
        rows = tuple(torch.linspace(i, i + 1, 5, dtype=torch.float64) for i in range(3))
        expected = torch.tensor([r.tolist() for r in rows], dtype=torch.float64)
        got = kata.make_batch(rows)
        check_tensor(got, expected, "make_batch((3 float64 vectors of shape (5,)))")

    def test_the_batch_is_made_on_the_samples_device(self, kata):
        samples = [torch.empty(3, 2, 4, device=META) for _ in range(2)]
        got = _call_with_meta("make_batch([2 images of shape (3, 2, 4) on meta])", kata.make_batch, samples)
        _check_meta_result(got, (2, 3, 2, 4), torch.float32, "make_batch([2 images (3, 2, 4) on meta])")


# ---------------------------------------------------------------- drop_channel_dim


@exercise("drop_channel_dim")
class TestDropChannelDim:
    @pytest.mark.parametrize(
        "shape",
        [(3, 1, 4, 5), (1, 1, 4, 5), (2, 1, 1, 5), (2, 1, 4, 1), (1, 1, 1, 1)],
        ids=["batch_of_3", "batch_of_one", "one_pixel_tall", "one_pixel_wide", "one_single_pixel"],
    )
    def test_only_the_channel_dimension_goes(self, kata, device, shape):
        masks = torch.arange(float(np.prod(shape))).reshape(shape).to(device)
        expected = masks[:, 0].clone()
        got = kata.drop_channel_dim(masks)
        check_tensor(got, expected, f"drop_channel_dim(masks of shape {shape})")

    def test_shares_the_masks_memory(self, kata):
        masks = torch.rand(2, 1, 3, 4, generator=torch.Generator().manual_seed(1))
        got = kata.drop_channel_dim(masks)
        check(
            isinstance(got, torch.Tensor) and storage_ptr(got) == storage_ptr(masks),
            f"drop_channel_dim(masks of shape (2, 1, 3, 4)) returned {describe(got)} with its own memory; expected "
            "a view of masks (nothing copied)",
        )

    @pytest.mark.parametrize(
        "shape",
        [(2, 3, 4, 5), (1, 3, 4, 5), (2, 4, 5), (4, 1, 5), (2, 1, 3, 4, 5)],
        ids=["three_channels", "three_channels_batch_of_one", "already_3d", "3d_with_a_size_1_dim", "5d"],
    )
    def test_other_shapes_raise_value_error(self, kata, shape):
        masks = torch.zeros(shape)
        with expect_raises(ValueError, None, f"drop_channel_dim(a tensor of shape {shape})"):
            kata.drop_channel_dim(masks)


# ---------------------------------------------------------------- image_to_tensor


def _uint8_images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _chw_reference(images: np.ndarray) -> torch.Tensor:
    """NumPy's answer: the channel axis moved in front of H and W, values / 255, as float32."""
    return torch.from_numpy((np.moveaxis(images, -1, -3).astype(np.float64) / 255).astype(np.float32))


@exercise("image_to_tensor")
class TestImageToTensor:
    @pytest.mark.parametrize(
        "shape",
        [(2, 5, 3), (3, 3, 3), (4, 6, 1), (2, 4, 5, 3), (1, 2, 3, 3)],
        ids=["one_2x5_rgb_image", "one_square_image", "one_grayscale_image", "a_batch_of_2", "a_batch_of_one"],
    )
    def test_values_move_to_channels_first(self, kata, shape):
        images = _uint8_images(shape)
        expected = _chw_reference(images)
        got = kata.image_to_tensor(images)
        layout = "(N, H, W, C)" if len(shape) == 4 else "(H, W, C)"
        check_tensor(got, expected, f"image_to_tensor(uint8 array of shape {shape} = {layout})")

    def test_255_becomes_exactly_one_and_0_becomes_zero(self, kata):
        images = np.array([[[0, 255, 51]], [[255, 0, 128]]], dtype=np.uint8)  # (H=2, W=1, C=3)
        got = kata.image_to_tensor(images)
        check(
            isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == (3, 2, 1),
            f"image_to_tensor(uint8 array (2, 1, 3)) returned {describe(got)}; expected float32 of shape (3, 2, 1)",
        )
        ones, zeros = got[1, 0, 0].item(), got[0, 0, 0].item()
        check(
            ones == 1.0 and zeros == 0.0,
            f"image_to_tensor mapped 255 to {ones!r} and 0 to {zeros!r}; expected exactly 1.0 and 0.0 (divide by 255)",
        )

    def test_a_bgr_view_with_reversed_channels_is_accepted(self, kata):
        bgr = _uint8_images((2, 4, 3), seed=3)
        rgb = bgr[..., ::-1]  # OpenCV's BGR to RGB: a view with a negative stride
        expected = _chw_reference(rgb)
        got = kata.image_to_tensor(rgb)
        check_tensor(got, expected, "image_to_tensor(bgr[..., ::-1], a (2, 4, 3) view with reversed channels)")

    def test_a_cropped_view_with_a_step_is_accepted(self, kata):
        full = _uint8_images((6, 8, 3), seed=6)
        crop = full[1:5, ::3]  # rows 1-4, every third column: a non-contiguous (4, 3, 3) view
        expected = _chw_reference(crop)
        got = kata.image_to_tensor(crop)
        check_tensor(got, expected, "image_to_tensor(full[1:5, ::3], a non-contiguous (4, 3, 3) view)")

    def test_the_callers_array_is_left_unchanged(self, kata):
        images = _uint8_images((2, 3, 2, 3), seed=4)
        before = images.copy()
        kata.image_to_tensor(images)
        check(
            images.dtype == np.uint8 and images.shape == before.shape and np.array_equal(images, before),
            f"after image_to_tensor(images), the caller's array is ndarray(shape={images.shape}, dtype={images.dtype}) "
            "with changed values; expected it unchanged: uint8, (2, 3, 2, 3), the same pixels",
        )

    def test_a_tensor_stays_on_its_device(self, kata, device):
        array = _uint8_images((3, 2, 3), seed=5)
        expected = _chw_reference(array).to(device)
        images = torch.from_numpy(array).to(device)
        got = kata.image_to_tensor(images)
        check_tensor(got, expected, f"image_to_tensor(uint8 tensor (3, 2, 3) on {device.type})")

    def test_a_tensor_on_meta_stays_on_meta(self, kata):
        images = torch.empty(2, 3, 5, 3, dtype=torch.uint8, device=META)
        got = _call_with_meta("image_to_tensor(uint8 tensor (2, 3, 5, 3) on meta)", kata.image_to_tensor, images)
        _check_meta_result(got, (2, 3, 3, 5), torch.float32, "image_to_tensor(uint8 tensor (2, 3, 5, 3) on meta)")


# ---------------------------------------------------------------- normalize_rows


def _rows_reference(x: torch.Tensor) -> torch.Tensor:
    """A loop in float64: every row along the last dimension divided by its own total."""
    flat = x.detach().cpu().double().reshape(-1, x.shape[-1])
    out = torch.empty_like(flat)
    for r in range(flat.shape[0]):
        total = sum(float(v) for v in flat[r])
        out[r] = flat[r] / total
    return out.reshape(x.shape).to(dtype=x.dtype, device=x.device)


def _positive(shape: tuple[int, ...], seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) + 0.1


@exercise("normalize_rows")
class TestNormalizeRows:
    @pytest.mark.parametrize(
        "shape",
        [(4, 4), (3, 5), (1, 6), (6,), (2, 3, 4), (2, 3, 3)],
        ids=["square_4x4", "rectangular_3x5", "one_row_1x6", "a_single_row_6", "stack_2x3x4", "stack_of_squares"],
    )
    def test_each_row_is_divided_by_its_own_total(self, kata, device, shape):
        x = _positive(shape).to(device)
        expected = _rows_reference(x)
        got = kata.normalize_rows(x)
        called = f"normalize_rows(x of shape {shape})"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.device.type != "meta":
            totals = got.detach().cpu().double().sum(dim=-1).flatten()
            check(
                bool(((totals - 1).abs() <= 1e-5).all()),
                f"{called}: the rows of the result add up to {[round(t, 4) for t in totals.tolist()]}; expected every "
                "row (along the last dimension) to add up to 1, each entry divided by the total of its own row",
            )
        check_tensor(got, expected, called)

    def test_float64_stays_float64(self, kata):
        x = _positive((3, 3), seed=1, dtype=torch.float64)
        expected = _rows_reference(x)
        got = kata.normalize_rows(x)
        check_tensor(got, expected, "normalize_rows(float64 x of shape (3, 3))")

    def test_the_callers_tensor_is_left_unchanged(self, kata):
        x = _positive((3, 3), seed=2)
        before = x.clone()
        kata.normalize_rows(x)
        check_tensor(x, before, "the caller's x after normalize_rows(x) (expected unchanged: no in-place division)")

    def test_the_result_stays_on_the_inputs_device(self, kata):
        x = torch.empty(2, 3, 4, device=META)
        got = _call_with_meta("normalize_rows(x (2, 3, 4) on meta)", kata.normalize_rows, x)
        _check_meta_result(got, (2, 3, 4), torch.float32, "normalize_rows(x (2, 3, 4) on meta)")


# ---------------------------------------------------------------- regression_loss


def _regression_case(n: int, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, 1, generator=g, dtype=dtype)
    target = torch.randn(n, generator=g, dtype=dtype)
    return pred, target


def _per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    p, t = pred.detach().cpu().double()[:, 0].tolist(), target.detach().cpu().double().tolist()
    return sum((a - b) ** 2 for a, b in zip(p, t)) / len(t)


def _quietly(fn, *args):
    """fn(*args) with warnings silenced: the tests of values check values, one test checks the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


@exercise("regression_loss")
class TestRegressionLoss:
    @pytest.mark.parametrize("n", [5, 1], ids=["batch_of_5", "batch_of_one"])
    def test_value_is_the_mean_over_samples(self, kata, device, n):
        pred, target = (t.to(device) for t in _regression_case(n))
        expected = _per_sample_mse(pred, target)
        broadcast = float(((pred.detach().cpu().double() - target.cpu().double()) ** 2).mean())
        got = _quietly(kata.regression_loss, pred, target)
        check(
            isinstance(got, torch.Tensor),
            f"regression_loss(pred ({n}, 1), target ({n},)) returned {describe(got)}; expected a 0-d tensor",
        )
        value = float(got.detach().cpu()) if got.numel() == 1 else float("nan")
        why = (
            f" That is the mean over all {n} x {n} pairs: (N, 1) against (N,) broadcast to (N, N)."
            if n > 1 and abs(value - broadcast) <= 1e-5 * max(1.0, abs(broadcast))
            else ""
        )
        check(
            abs(value - expected) <= 1e-5 * max(1.0, abs(expected)),
            f"regression_loss(pred ({n}, 1), target ({n},)) returned {describe(got)}; expected {expected:.6g}, the mean "
            f"of (pred[i, 0] - target[i]) ** 2 over the {n} samples.{why}",
        )

    def test_is_a_0d_tensor_of_the_inputs_dtype(self, kata):
        pred, target = _regression_case(4, dtype=torch.float64, seed=1)
        expected = torch.tensor(_per_sample_mse(pred, target), dtype=torch.float64)
        got = _quietly(kata.regression_loss, pred, target)
        check_tensor(got, expected, "regression_loss(float64 pred (4, 1), float64 target (4,))")

    def test_backward_gives_the_per_sample_gradient(self, kata):
        pred, target = _regression_case(4, seed=2)
        pred.requires_grad_()
        expected = 2 * (pred.detach() - target.unsqueeze(1)) / 4  # d/dpred of the mean of 4 squared errors
        loss = _quietly(kata.regression_loss, pred, target)
        check(
            isinstance(loss, torch.Tensor) and loss.grad_fn is not None,
            f"regression_loss(pred (4, 1) requiring grad, target (4,)) returned {describe(loss)} without a graph; "
            "expected a tensor that backward() can go through to pred",
        )
        loss.backward()
        check_tensor(pred.grad, expected, "pred.grad after regression_loss(pred (4, 1), target (4,)).backward()")

    @pytest.mark.parametrize("n", [6, 1], ids=["batch_of_6", "batch_of_one"])
    def test_computing_the_loss_does_not_warn_about_sizes(self, kata, n):
        pred, target = _regression_case(n, seed=3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kata.regression_loss(pred, target)
        sizes = [str(w.message) for w in caught if SIZE_WARNING in str(w.message)]
        check(
            not sizes,
            f"regression_loss(pred ({n}, 1), target ({n},)) warned: {sizes[0] if sizes else ''}\nexpected no warning: "
            "the loss must compare tensors of one shape",
        )

    def test_the_loss_stays_on_the_inputs_device(self, kata):
        pred, target = torch.empty(4, 1, device=META), torch.empty(4, device=META)
        got = _call_with_meta(
            "regression_loss(pred (4, 1), target (4,) on meta)", _quietly, kata.regression_loss, pred, target
        )
        _check_meta_result(got, (), torch.float32, "regression_loss(pred (4, 1), target (4,) on meta)")


# ---------------------------------------------------------------- cross_entropy_target

CLASSES = [2, 0, 1, 2]  # the classes of the 4 samples of most cases below (C = 3)


def _one_hot(classes: list[int], c: int, dtype: torch.dtype) -> torch.Tensor:
    rows = torch.zeros(len(classes), c, dtype=dtype)
    for i, k in enumerate(classes):
        rows[i, k] = 1
    return rows


def _index_cases():
    """(id, labels, number of classes, expected classes) for the forms that become class indices."""
    col = torch.tensor(CLASSES).unsqueeze(1)
    return [
        ("int64_vector", torch.tensor(CLASSES), 3, CLASSES),
        ("int32_vector", torch.tensor(CLASSES, dtype=torch.int32), 3, CLASSES),
        ("uint8_vector", torch.tensor(CLASSES, dtype=torch.uint8), 3, CLASSES),
        ("float_whole_numbers", torch.tensor(CLASSES, dtype=torch.float32), 3, CLASSES),
        ("float64_whole_numbers", torch.tensor(CLASSES, dtype=torch.float64), 3, CLASSES),
        ("int_column_Nx1", col, 3, CLASSES),
        ("float_column_Nx1", col.double(), 3, CLASSES),
        ("column_of_one_sample_1x1", torch.tensor([[1.0]]), 3, [1]),
        ("one_hot_float", _one_hot(CLASSES, 3, torch.float32), 3, CLASSES),
        ("one_hot_int64", _one_hot(CLASSES, 3, torch.int64), 3, CLASSES),
        ("one_hot_bool", _one_hot(CLASSES, 3, torch.bool), 3, CLASSES),
        ("one_hot_square_NxN", _one_hot([1, 2, 0], 3, torch.float32), 3, [1, 2, 0]),
        ("one_hot_of_one_sample", _one_hot([3], 5, torch.float32), 5, [3]),
    ]


INDEX_IDS = [case[0] for case in _index_cases()]


def _logits(n: int, c: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(n * 10 + c), dtype=dtype).to(device)


def _soft_labels(dtype=torch.float64) -> torch.Tensor:
    """4 rows over 3 classes: the first one-hot, the others soft (at least one row is not one-hot)."""
    return torch.tensor([[0.0, 1.0, 0.0], [0.7, 0.2, 0.1], [0.25, 0.25, 0.5], [0.0, 0.5, 0.5]], dtype=dtype)


@exercise("cross_entropy_target")
class TestCrossEntropyTarget:
    @pytest.mark.parametrize("index", range(len(INDEX_IDS)), ids=INDEX_IDS)
    def test_class_numbers_become_int64_indices_of_shape_n(self, kata, index):
        name, labels, c, classes = _index_cases()[index]
        logits = _logits(len(classes), c)
        expected = torch.tensor(classes, dtype=torch.int64)
        got = kata.cross_entropy_target(labels, logits)
        check_tensor(
            got,
            expected,
            f"cross_entropy_target(labels={name} of shape {tuple(labels.shape)}, logits {tuple(logits.shape)})",
        )

    def test_soft_labels_stay_probabilities_in_the_logits_dtype(self, kata):
        labels = _soft_labels(torch.float64)
        logits = _logits(4, 3, torch.float32)
        expected = labels.clone().float()
        got = kata.cross_entropy_target(labels, logits)
        check_tensor(
            got,
            expected,
            "cross_entropy_target(float64 soft labels (4, 3) whose first row is one-hot, float32 logits (4, 3))",
        )

    def test_soft_labels_follow_float64_logits(self, kata):
        labels = torch.full((2, 4), 0.25)
        logits = _logits(2, 4, torch.float64)
        expected = torch.full((2, 4), 0.25, dtype=torch.float64)
        got = kata.cross_entropy_target(labels, logits)
        check_tensor(got, expected, "cross_entropy_target(float32 uniform soft labels (2, 4), float64 logits (2, 4))")

    @pytest.mark.parametrize("form", ["float_column", "one_hot", "soft"])
    def test_the_target_is_on_the_logits_device(self, kata, device, form):
        labels = {
            "float_column": torch.tensor(CLASSES, dtype=torch.float32).unsqueeze(1),
            "one_hot": _one_hot(CLASSES, 3, torch.float32),
            "soft": _soft_labels(torch.float32),
        }[form]
        logits = _logits(4, 3, device=device)
        expected = (_soft_labels(torch.float32) if form == "soft" else torch.tensor(CLASSES)).to(device)
        got = kata.cross_entropy_target(labels, logits)
        check_tensor(got, expected, f"cross_entropy_target(labels {form} on the CPU, logits (4, 3) on {device.type})")

    @pytest.mark.parametrize("form", ["int_column", "one_hot", "soft"])
    def test_the_target_follows_logits_on_meta(self, kata, form):
        labels = {
            "int_column": torch.tensor(CLASSES).unsqueeze(1),
            "one_hot": _one_hot(CLASSES, 3, torch.int64),
            "soft": _soft_labels(torch.float64),
        }[form]
        logits = torch.empty(4, 3, device=META)
        called = f"cross_entropy_target(labels {form} on the CPU, logits (4, 3) on meta)"
        got = _call_with_meta(called, kata.cross_entropy_target, labels, logits)
        shape, dtype = ((4, 3), torch.float32) if form == "soft" else ((4,), torch.int64)
        _check_meta_result(got, shape, dtype, called)

    @pytest.mark.parametrize("form", ["int_column", "one_hot", "soft"])
    def test_the_callers_labels_are_left_unchanged(self, kata, form):
        labels = {
            "int_column": torch.tensor(CLASSES).unsqueeze(1),
            "one_hot": _one_hot(CLASSES, 3, torch.float32),
            "soft": _soft_labels(torch.float64),
        }[form]
        before = labels.clone()
        kata.cross_entropy_target(labels, _logits(4, 3))
        check_tensor(labels, before, f"the caller's labels ({form}) after cross_entropy_target(labels, logits)")


# ---------------------------------------------------------------- predict_numpy


def _model(dtype=torch.float32, device="cpu") -> nn.Module:
    """A small MLP 3 -> 4 -> 2 with fixed weights."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    g = torch.Generator().manual_seed(14)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.to(dtype=dtype, device=device)


def _batch(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))  # float64, NumPy's default


def _expected_output(model: nn.Module, batch: np.ndarray) -> torch.Tensor:
    p = next(model.parameters())
    with torch.no_grad():
        return model(torch.tensor(batch, dtype=p.dtype, device=p.device))


@exercise("predict_numpy")
class TestPredictNumpy:
    def test_a_float32_model_gives_float32_outputs(self, kata, device):
        model, batch = _model(device=device), _batch()
        expected = _expected_output(model, batch)
        got = kata.predict_numpy(model, batch)
        called = f"predict_numpy(float32 model on {device.type}, float64 array (5, 3))"
        changed = {p.dtype for p in model.parameters()} - {torch.float32}
        check(
            not changed,
            f"{called} returned {describe(got)}, and the caller's model is now {changed.pop() if changed else ''}; "
            "expected the model left float32 and the batch converted to the model's dtype instead",
        )
        check_tensor(got, expected, called)

    def test_the_model_keeps_its_dtype_and_weights(self, kata):
        model, batch = _model(), _batch(seed=1)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        kata.predict_numpy(model, batch)
        for name, p in model.named_parameters():
            check(
                p.dtype == torch.float32,
                f"after predict_numpy(model, float64 batch), the model's {name} is {p.dtype}; expected it still "
                "float32: convert the data to the model, never the model to the data",
            )
            check_tensor(p.detach(), before[name], f"the model's {name} after predict_numpy(model, batch)")

    def test_a_float64_model_gets_float64_input(self, kata):
        model, batch = _model(dtype=torch.float64), _batch(seed=2)
        expected = _expected_output(model, batch)
        got = kata.predict_numpy(model, batch)
        check_tensor(got, expected, "predict_numpy(float64 model, float64 array (5, 3))")

    def test_the_input_goes_to_the_models_device(self, kata):
        model, batch = _model(device=META), _batch(seed=3)
        got = _call_with_meta("predict_numpy(model on meta, float64 array (5, 3))", kata.predict_numpy, model, batch)
        _check_meta_result(got, (5, 2), torch.float32, "predict_numpy(float32 model on meta, float64 array (5, 3))")
        moved = sorted({str(p.device) for p in model.parameters()} - {"meta"})
        check(
            not moved,
            f"after predict_numpy(model on meta, batch), the model's parameters are on {moved}; expected them left "
            "on meta: move the batch to the model, never the model to the batch",
        )

    def test_the_callers_array_is_left_unchanged(self, kata):
        batch = _batch(seed=4)
        before = batch.copy()
        kata.predict_numpy(_model(), batch)
        check(
            batch.dtype == np.float64 and np.array_equal(batch, before),
            f"after predict_numpy(model, batch), the caller's batch is ndarray(dtype={batch.dtype}) with changed "
            "values; expected it unchanged",
        )


# ---------------------------------------------------------------- clashing_dims

CLASH_CASES = [
    # (op, a, b, expected pairs)
    ("broadcast", (4, 3), (4,), [(1, 0)]),
    ("broadcast", (4, 3), (3,), []),
    ("broadcast", (5, 1), (5,), []),  # the silent (N, 1) vs (N,) case: it works, as (N, N)
    ("broadcast", (2, 3, 4), (3, 1, 5), [(0, 0), (2, 2)]),
    ("broadcast", (8, 1, 6, 1), (7, 1, 5), []),
    ("broadcast", (2, 3), (3, 2), [(0, 0), (1, 1)]),
    ("broadcast", (4,), (2, 3, 5), [(0, 2)]),
    ("broadcast", (2, 3, 5), (4,), [(2, 0)]),
    ("broadcast", (), (3, 4), []),
    ("broadcast", (3, 0), (3,), [(1, 0)]),
    ("broadcast", (1, 3), (2, 1), []),
    ("matmul", (2, 3), (3, 5), []),
    ("matmul", (2, 3), (4, 5), [(1, 0)]),
    ("matmul", (2, 1), (3, 4), [(1, 0)]),  # a size 1 does not stretch in the contracted dimension
    ("matmul", (4, 3), (4,), [(1, 0)]),
    ("matmul", (2, 3, 4), (4,), []),
    ("matmul", (3,), (4,), [(0, 0)]),
    ("matmul", (3,), (2, 4, 5), [(0, 1)]),
    ("matmul", (3,), (2, 3, 5), []),
    ("matmul", (5, 2, 3), (4, 3, 7), [(0, 0)]),
    ("matmul", (5, 2, 3), (4, 4, 7), [(0, 0), (2, 1)]),
    ("matmul", (6, 2, 3), (3, 5), []),
    ("matmul", (2, 3), (4, 3, 5), []),
    ("matmul", (2, 1, 4, 3), (5, 3, 2), []),
    ("matmul", (2, 3, 4, 3), (5, 3, 2), [(1, 0)]),
    ("matmul", (2, 3, 4, 3), (5, 4, 2), [(1, 0), (3, 1)]),
]


def _label(op: str, a, b) -> str:
    return f"clashing_dims({op!r}, {tuple(a)}, {tuple(b)})"


def _pairs(got) -> list[tuple[int, int]] | None:
    """`got` as a sorted list of (i, j) tuples, or None if it is not a list of pairs of ints."""
    if not isinstance(got, list):
        return None
    try:
        pairs = [tuple(p) for p in got]
    except TypeError:
        return None
    if not all(len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in p) for p in pairs):
        return None
    return sorted(pairs)


def _pytorch_accepts(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """PyTorch's own verdict, on 'meta' tensors (shape checks without data)."""
    x, y = torch.empty(a, device=META), torch.empty(b, device=META)
    try:
        x + y if op == "broadcast" else x @ y
    except RuntimeError:
        return False
    return True


def _random_shape_pairs(count: int, seed: int = 14):
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        op = rng.choice(["broadcast", "matmul"])
        low = 0 if op == "broadcast" else 1
        a = tuple(rng.choice([1, 2, 3]) for _ in range(rng.randint(low, 4)))
        b = tuple(rng.choice([1, 2, 3]) for _ in range(rng.randint(low, 4)))
        cases.append((op, a, b))
    return cases


@exercise("clashing_dims")
class TestClashingDims:
    @pytest.mark.parametrize(
        "op, a, b, expected",
        CLASH_CASES,
        ids=[f"{op}_{'x'.join(map(str, a)) or 'scalar'}_{'x'.join(map(str, b))}" for op, a, b, _ in CLASH_CASES],
    )
    def test_names_the_dimensions_that_clash(self, kata, op, a, b, expected):
        got = kata.clashing_dims(op, a, b)
        pairs = _pairs(got)
        check(
            pairs is not None,
            f"{_label(op, a, b)} returned {describe(got)}; expected a list of (i, j) pairs of ints: {expected}",
        )
        accepted = "PyTorch accepts it" if not expected else "PyTorch refuses it"
        check(
            pairs == sorted(expected),
            f"{_label(op, a, b)} returned {got}; expected {expected} (in any order; i indexes a, j indexes b, both "
            f"counted from the left). {accepted}.",
        )

    def test_is_empty_exactly_when_pytorch_accepts_the_operation(self, kata):
        for op, a, b in _random_shape_pairs(150) + [(op, a, b) for op, a, b, _ in CLASH_CASES]:
            accepts = _pytorch_accepts(op, a, b)
            got = kata.clashing_dims(op, a, b)
            check(
                isinstance(got, list) and (len(got) == 0) == accepts,
                f"{_label(op, a, b)} returned {describe(got)}; PyTorch "
                + ("accepts" if accepts else "refuses")
                + " this operation, so expected "
                + ("[]" if accepts else "at least one clashing pair"),
            )

    def test_accepts_torch_size_shapes(self, kata):
        a, b = torch.Size([2, 3, 4]), torch.Size([3, 1, 5])
        got = kata.clashing_dims("broadcast", a, b)
        check(
            _pairs(got) == [(0, 0), (2, 2)],
            f"clashing_dims('broadcast', torch.Size([2, 3, 4]), torch.Size([3, 1, 5])) returned {describe(got)}; "
            "expected [(0, 0), (2, 2)]",
        )
