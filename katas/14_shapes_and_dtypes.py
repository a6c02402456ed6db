"""Kata 14: shapes, dtypes and devices.

Three errors stop more PyTorch programs than all others together: two tensors whose shapes do
not fit, two whose dtypes differ, two that sit on different devices. The loud ones are the easy
ones: a RuntimeError names the sizes (or the dtypes, or the devices) and the line. The dangerous
ones are silent: broadcasting turns an (N, 1) and an (N,) into an (N, N) without a word, a
`squeeze` that worked for every batch drops the batch dimension of the last one, a reshape where
the axes should have moved returns a tensor of the right shape with scrambled pixels. This kata
practises both: producing the shape, dtype and device the next call expects, and reading a shape
mismatch the way PyTorch decides it. Run `dojo` to see which exercise is next and `dojo hint 14`
when stuck.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def make_batch(samples: Sequence[torch.Tensor]) -> torch.Tensor:
    """Return one batch tensor holding the N samples, in order: shape (N, *sample.shape).

    `samples` is a non-empty list (or tuple) of tensors of one shape, one dtype and one device,
    as a Dataset returns them: images (C, H, W) give (N, C, H, W), feature vectors (F,) give
    (N, F), and 0-d labels give (N,). `result[i]` equals `samples[i]`; the result has the
    samples' dtype and device.

    A batch of one is still a batch: one (C, H, W) image gives (1, C, H, W). The symptom of the
    classic mistake is an image batch of shape (N * C, H, W), which a model with a 3-channel
    first layer refuses with "expected input[1, 12, 32, 32] to have 3 channels, but got 12
    channels instead" (and which, for a batch of one, looks like a single image).
    """
    # TODO: N samples of one shape -> one (N, *shape) tensor, also for N = 1 and 0-d samples
    raise NotImplementedError("14_shapes_and_dtypes.make_batch is not done yet (stuck? dojo hint 14 make_batch)")


def drop_channel_dim(masks: torch.Tensor) -> torch.Tensor:
    """Turn a batch of one-channel masks (N, 1, H, W) into (N, H, W); return it.

    `masks` comes from a segmentation model with one output channel. The result holds the same
    values, `result[n] == masks[n, 0]`, and shares `masks`'s memory (nothing is copied).

    Only the channel dimension goes. The batch dimension and the image dimensions stay even
    where they have size 1: a batch of one mask gives (1, H, W), masks one pixel tall give
    (N, 1, W). Any input that is not 4-D with exactly one channel, such as (N, 3, H, W) or an
    already 3-D (N, H, W), raises ValueError (the message is free): removing a dimension "only
    if it has size 1" would silently hand such a tensor back unchanged.
    """
    # TODO: (N, 1, H, W) -> (N, H, W) as a view; ValueError for any other shape
    raise NotImplementedError("14_shapes_and_dtypes.drop_channel_dim is not done yet (stuck? dojo hint 14 drop_channel_dim)")


def image_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Turn uint8 images in HWC layout into a float32 tensor in CHW layout, values in [0, 1].

    `images` is one image (H, W, C) or a batch (N, H, W, C) of dtype uint8, as PIL, OpenCV or
    imageio give them: a NumPy array, of any strides, including a view with reversed ones (an
    OpenCV BGR image turned RGB by `img[..., ::-1]`), or a tensor on any device. Return
    float32 of shape (C, H, W), or (N, C, H, W) for a batch, where
    `result[..., c, y, x] == images[..., y, x, c] / 255` (0 -> 0.0, 255 -> exactly 1.0), on the
    input tensor's device (the CPU for an array). The caller's `images` are left as they were.

    Symptoms of the usual mistakes: a result of the right shape whose pixels are scrambled (the
    numbers were poured into the new shape instead of the axes being moved); (C, W, H) instead of
    (C, H, W), invisible on square images; values up to 255.0; float64, which a float32 model
    refuses with "mat1 and mat2 must have the same dtype"; and "At least one stride in the given
    numpy array is negative".
    """
    # TODO: uint8 (H, W, C) or (N, H, W, C) -> float32 (C, H, W) or (N, C, H, W) in [0, 1], on the input's device
    raise NotImplementedError("14_shapes_and_dtypes.image_to_tensor is not done yet (stuck? dojo hint 14 image_to_tensor)")


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Return `x` with each row divided by its own total, so that every row adds up to 1.

    `x` is a floating tensor of shape (..., M): a matrix (N, M) of non-negative counts or
    weights, a single row (M,), or a stack of matrices (B, N, M); a "row" runs along the last
    dimension, and every row has a positive total. The result has x's shape, dtype and device,
    and `result[..., i, j] == x[..., i, j] / (total of row x[..., i, :])`. The caller's `x` is
    left unchanged.

    The silent version of this bug divides each entry by the total of the wrong row (the row
    whose number is the entry's column number): it raises a shape error for most matrices but
    runs, and returns rows that do not add up to 1, for every square one.
    """
    # TODO: divide each row (along the last dim) by its own total; shape, dtype, device kept; x untouched
    raise NotImplementedError("14_shapes_and_dtypes.normalize_rows is not done yet (stuck? dojo hint 14 normalize_rows)")


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the mean squared error of a one-output regression model's predictions.

    `pred` is the model's output, shape (N, 1) (one column); `target` holds one value per
    sample, shape (N,), as a dataset gives it. Both are floating, of one dtype, on one device.
    Return a 0-d tensor of that dtype on that device, differentiable with respect to `pred`:
    the mean over the N samples of `(pred[i, 0] - target[i]) ** 2`.

    The trap is silent: (N, 1) against (N,) broadcasts to (N, N), every prediction is compared
    with every target, and the result is a plausible number that the model can lower only by
    predicting the targets' mean for every sample. The built-in loss warns about it ("Using a
    target size (torch.Size([N])) that is different to the input size (torch.Size([N, 1]))");
    computing the loss must not raise that warning, for any N, one included.
    """
    # TODO: MSE of (N, 1) predictions against (N,) targets, without the (N, N) broadcast
    raise NotImplementedError("14_shapes_and_dtypes.regression_loss is not done yet (stuck? dojo hint 14 regression_loss)")


def cross_entropy_target(labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Return `labels` in the form cross-entropy expects as the target for `logits`.

    `logits` are raw scores of shape (N, C) with C >= 2 classes, on any device (their values
    are not needed). `labels` is a tensor, usually on the CPU, in one of four forms:

    - class numbers, shape (N,), of any integer dtype, or floating holding whole numbers
      (2.0 for class 2), as a CSV column often arrives;
    - the same as a column, shape (N, 1);
    - one-hot rows, shape (N, C), any dtype (bool included): every entry 0 or 1, exactly one
      1 per row;
    - soft labels, shape (N, C), floating: every row a probability distribution over the
      classes (non-negative, adding up to 1), at least one row of them not one-hot.

    The first three forms become class indices: int64, shape (N,), `result[i]` the class of
    sample i (for one-hot rows, the position of the row's 1). Soft labels stay probabilities:
    shape (N, C), the same values, in the logits' dtype. Either way the result is on the
    logits' device, and the caller's `labels` are left as they were.

    Symptoms of a target in the wrong form: "expected target dtype to be Long or Byte, but got
    Float", "0D or 1D target tensor expected, multi-target not supported", "Expected input
    batch_size (N) to match target batch_size (M)", "Expected all tensors to be on the same
    device", a float64 loss from float32 logits, and, worst, no error at all but a loss
    computed for the wrong classes.
    """
    # TODO: class numbers, columns, one-hot or soft labels -> int64 (N,) indices or (N, C) probabilities, on the logits' device
    raise NotImplementedError("14_shapes_and_dtypes.cross_entropy_target is not done yet (stuck? dojo hint 14 cross_entropy_target)")


def predict_numpy(model: nn.Module, batch: np.ndarray) -> torch.Tensor:
    """Run `model` on a NumPy batch; return its output.

    `batch` is a NumPy array of shape (N, F) and dtype float64 (NumPy's default). `model` has at
    least one parameter; all its parameters share one floating dtype (float32 for most models)
    and one device. Feed it the batch's values in the parameters' dtype, on their device, and
    return what it returns (a tensor of that dtype on that device; whether it carries a graph is
    up to you). The model is left as it was: its parameters keep their dtype, device and values.
    The caller's `batch` is left unchanged.

    Symptoms: "mat1 and mat2 must have the same dtype, but got Double and Float"; "Expected all
    tensors to be on the same device"; or no error, but a model that silently became float64
    (twice the memory, slower on every GPU, and outputs that no longer match the float32 rest
    of the program).
    """
    # TODO: a float64 NumPy batch through a model in the model's own dtype and device
    raise NotImplementedError("14_shapes_and_dtypes.predict_numpy is not done yet (stuck? dojo hint 14 predict_numpy)")


def clashing_dims(op: str, a_shape: Sequence[int], b_shape: Sequence[int]) -> list[tuple[int, int]]:
    """Say which dimensions of two shapes make an operation on them fail; [] if it works.

    `op` is "broadcast" (an elementwise operation such as `a + b` or `a * b`) or "matmul"
    (`a @ b`); `a_shape` and `b_shape` are the shapes of the two operands (tuples of ints or
    torch.Size; for "matmul", at least 1-D each). Return a list of pairs `(i, j)`, in any
    order: dimension i of a (counted from 0, from the left, in a's own shape) against dimension
    j of b that PyTorch cannot reconcile. The list is empty exactly when PyTorch accepts the
    operation.

    The rules are PyTorch's (and NumPy's):

    - broadcast: the two shapes are aligned at their *last* dimensions (the shorter one is
      padded on the left with 1s, which never clash); each aligned pair of sizes must be
      equal, or one of them must be 1. Each aligned pair that breaks the rule is a clash.
    - matmul: the contracted dimensions must be equal, exactly (a size 1 does not stretch
      here): the last dimension of a against the second-to-last of b (the only one of b if b
      is 1-D; if a is 1-D, its only dimension is the one contracted). When both operands have
      2 or more dimensions, the dimensions before the last two of each (the batch dimensions)
      broadcast as above, and each aligned batch pair that breaks that rule is a clash too.

    For example, `clashing_dims("broadcast", (4, 3), (4,))` is [(1, 0)]: 3 against 4. (PyTorch
    says "The size of tensor a (3) must match the size of tensor b (4) at non-singleton
    dimension 1", counting in the shape of the broadcast result, which is not always b's own
    index.) `clashing_dims("matmul", (5, 2, 3), (4, 4, 7))` is [(0, 0), (2, 1)].
    """
    # TODO: the (i, j) dimension pairs that make broadcasting or matmul of two shapes fail
    raise NotImplementedError("14_shapes_and_dtypes.clashing_dims is not done yet (stuck? dojo hint 14 clashing_dims)")
