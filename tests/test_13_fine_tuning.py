"""Tests for kata 13, fine-tuning a pretrained network: one class per exercise, in learning order.

A seeded torchvision ResNet-18 (`weights=None`, nothing downloaded) stands in for a pretrained
one: its BatchNorm running statistics come from a "pretraining" batch drawn from another
distribution than the fine-tuning data, so that train-mode and eval-mode BatchNorm really differ.
It is built once and deep-copied for each test. Images are 3x32x32 and batches small, to stay fast.

- phase one: everything frozen, a new seeded 10-class head `fc` (trainable);
- phase two: phase one with `layer4` unfrozen as well.

The reference for a training step is written out here (modes set by name, SGD's first step with
momentum done by hand: p - lr * grad), independent of the code under test.
"""

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from dojo.testing import DEVICES, check, check_tensor, describe, exercise

NUM_CLASSES = 10
HEAD_LR, BLOCK_LR = 0.1, 0.01
# ResNet-18's parameter counts: all of it (1000-class head), layer4 alone, a 10-class head.
RESNET18_PARAMS, LAYER4_PARAMS, HEAD10_PARAMS = 11_689_512, 8_393_728, 512 * 10 + 10
BN = nn.modules.batchnorm._BatchNorm
TRAINABLE_2 = ("layer4.", "fc.")  # what trains in phase two


@functools.cache
def _pretrained() -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # leave the global RNG as other tests expect it
        torch.manual_seed(13)
        model = resnet18(weights=None)
        bns = [m for m in model.modules() if isinstance(m, BN)]
        for m in bns:
            m.momentum = None  # a cumulative average: one batch sets the statistics outright
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            model.train()(0.5 + 2.0 * torch.randn(8, 3, 32, 32, generator=g))
        for m in bns:
            m.momentum = 0.1  # back to PyTorch's default
    return model.eval()


def pretrained(device="cpu") -> nn.Module:
    """A fresh copy of the seeded 'pretrained' ResNet-18 (1000-class head), in train mode."""
    return copy.deepcopy(_pretrained()).train().to(device)


def new_head() -> nn.Linear:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return nn.Linear(512, NUM_CLASSES)


def phase_one(device="cpu") -> nn.Module:
    """Frozen ResNet-18 with a new trainable 10-class head, set up by hand (not with the kata)."""
    model = pretrained()
    model.requires_grad_(False)
    model.fc = new_head()
    return model.to(device)


def phase_two(device="cpu") -> nn.Module:
    """Phase one with layer4 unfrozen as well."""
    model = phase_one(device)
    model.layer4.requires_grad_(True)
    return model


def batch(device="cpu", n=4, seed=2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    return x.to(device), y.to(device)


class TinyNet(nn.Module):
    """A small classifier with an `fc` head 24 wide (not 512), and both BatchNorm2d and 1d."""

    def __init__(self, width=24, classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.neck = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU())
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.neck(self.features(x)))


def tiny(dtype=torch.float32) -> TinyNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return TinyNet().to(dtype)


def names_where(model: nn.Module, requires_grad: bool) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad == requires_grad]


def short(names: list[str], limit=4) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer (running statistics included), copied."""
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def param_ids(optimizer, group=None) -> list[int]:
    groups = optimizer.param_groups if group is None else [optimizer.param_groups[group]]
    return [id(p) for g in groups for p in g["params"]]


def names_of(model: nn.Module, ids) -> list[str]:
    wanted = set(ids)
    return [name for name, p in model.named_parameters() if id(p) in wanted]


# ---------------------------------------------------------------------------------------------
@exercise("freeze_all")
class TestFreezeAll:
    def test_every_parameter_stops_requiring_grad(self, kata):
        model = pretrained()
        got = kata.freeze_all(model)
        check(
            got is model, f"freeze_all(resnet18) returned {describe(got)}; expected the model itself, frozen in place"
        )
        still = names_where(model, True)
        check(
            not still,
            f"after freeze_all(resnet18), {len(still)} parameters still require grad: {short(still)}; expected none. "
            "Freezing is requires_grad=False on each parameter (model.requires_grad = False only adds an attribute)",
        )

    @pytest.mark.parametrize("mode", ["train", "eval"])
    def test_the_training_mode_is_left_as_it_was(self, kata, mode):
        model = getattr(pretrained(), mode)()
        kata.freeze_all(model)
        changed = [name or "(the model)" for name, m in model.named_modules() if m.training != (mode == "train")]
        check(
            not changed,
            f"freeze_all(resnet18 in {mode} mode) changed the mode of {short(changed)}; expected every module left in "
            f"{mode} mode: requires_grad and train()/eval() are separate switches",
        )

    def test_the_output_of_a_frozen_model_needs_no_backward(self, kata):
        model = kata.freeze_all(tiny())
        x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        out = model(x)
        check(
            not out.requires_grad,
            "after freeze_all(model), model(x).requires_grad is True; expected False: with every parameter frozen "
            "there is nothing for backward() to compute",
        )


# ---------------------------------------------------------------------------------------------
@exercise("replace_head")
class TestReplaceHead:
    @pytest.mark.parametrize("classes", [10, 3], ids=lambda c: f"{c}_classes")
    def test_the_new_head_maps_512_features_to_the_classes(self, kata, classes):
        model = pretrained().requires_grad_(False)
        got = kata.replace_head(model, classes)
        check(got is model, f"replace_head(resnet18, {classes}) returned {describe(got)}; expected the model itself")
        fc = model.fc
        check(
            isinstance(fc, nn.Linear) and fc.in_features == 512 and fc.out_features == classes and fc.bias is not None,
            f"after replace_head(resnet18, {classes}), model.fc is {fc!r}; expected "
            f"Linear(in_features=512, out_features={classes}, bias=True)",
        )
        check(
            fc.weight.shape == (classes, 512),
            f"after replace_head(resnet18, {classes}), model.fc.weight has shape {tuple(fc.weight.shape)}; expected "
            f"({classes}, 512): changing out_features on the old layer does not resize its weight",
        )

    def test_in_features_are_read_from_the_old_head(self, kata):
        model = tiny()  # its fc is Linear(24, 5)
        kata.replace_head(model, NUM_CLASSES)
        fc = model.fc
        check(
            isinstance(fc, nn.Linear) and fc.in_features == 24 and fc.out_features == NUM_CLASSES,
            f"replace_head(model whose fc is Linear(24, 5), 10) set model.fc to {fc!r}; expected "
            "Linear(in_features=24, out_features=10): read in_features from the old head, don't hard-code 512",
        )
        out = model(torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)))
        check(
            out.shape == (2, NUM_CLASSES),
            f"the model after replace_head gives shape {tuple(out.shape)}; expected (2, 10)",
        )

    def test_only_the_new_head_is_trainable_in_a_frozen_model(self, kata):
        model = pretrained().requires_grad_(False)
        kata.replace_head(model, NUM_CLASSES)
        trainable = names_where(model, True)
        check(
            trainable == ["fc.weight", "fc.bias"],
            f"after replace_head on a frozen resnet18, the trainable parameters are [{short(trainable)}]; expected "
            "exactly fc.weight and fc.bias: the new head trains, the rest stays frozen",
        )

    def test_the_new_head_has_the_old_heads_dtype(self, kata):
        model = tiny(torch.float64)
        kata.replace_head(model, NUM_CLASSES)
        check(
            model.fc.weight.dtype == torch.float64 and model.fc.bias.dtype == torch.float64,
            f"replace_head(float64 model, 10) built a head with weight {describe(model.fc.weight)}; expected float64 "
            "like the old head: nn.Linear takes dtype=",
        )

    @pytest.mark.parametrize("device", [pytest.param("meta", id="meta"), *DEVICES])
    def test_the_new_head_is_on_the_old_heads_device(self, kata, device):
        # 'meta' tensors have shapes but no data: it catches a forgotten device without a GPU.
        model = tiny().to(device)
        kata.replace_head(model, NUM_CLASSES)
        where = {model.fc.weight.device.type, model.fc.bias.device.type}
        check(
            where == {torch.device(device).type},
            f"replace_head(model on {device!r}, 10) built a head on {sorted(where)}; expected it on {device!r} like the "
            "old head: nn.Linear builds on the CPU unless given device=",
        )


# ---------------------------------------------------------------------------------------------
@exercise("count_trainable")
class TestCountTrainable:
    def test_counts_the_elements_of_the_trainable_parameters_only(self, kata):
        got = kata.count_trainable(phase_one())
        check(
            type(got) is int and got == HEAD10_PARAMS,
            f"count_trainable(frozen resnet18 with a 10-class head) returned {describe(got)}; expected the int "
            f"{HEAD10_PARAMS} = 512 * 10 + 10 (the head's weight and bias elements; the frozen ones do not count)",
        )

    def test_counts_the_unfrozen_last_block_too(self, kata):
        got = kata.count_trainable(phase_two())
        expected = LAYER4_PARAMS + HEAD10_PARAMS
        check(
            got == expected,
            f"count_trainable(resnet18 with layer4 and a 10-class head trainable) returned {describe(got)}; expected "
            f"{expected} ({LAYER4_PARAMS} in layer4 + {HEAD10_PARAMS} in the head)",
        )

    def test_an_unfrozen_model_counts_parameters_not_buffers(self, kata):
        got = kata.count_trainable(pretrained())
        check(
            got == RESNET18_PARAMS,
            f"count_trainable(resnet18, nothing frozen) returned {describe(got)}; expected {RESNET18_PARAMS}. "
            "Running statistics in state_dict() are buffers, not parameters; count elements (numel), not tensors",
        )

    def test_a_shared_parameter_counts_once(self, kata):
        model = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5))
        model[1].weight = model[0].weight  # tied weights: one tensor used by two layers
        got = kata.count_trainable(model)
        check(
            got == 35,
            f"count_trainable(two Linear(5, 5) sharing one weight) returned {describe(got)}; expected 35 "
            "(the shared 5x5 weight once, plus two biases of 5): model.parameters() yields a shared one once",
        )


# ---------------------------------------------------------------------------------------------
def all_ids(model: nn.Module, prefixes) -> list[int]:
    return [id(p) for name, p in model.named_parameters() if name.startswith(prefixes)]


def check_sgd(opt, called: str) -> None:
    __tracebackhide__ = True
    check(isinstance(opt, torch.optim.SGD), f"{called} returned {describe(opt)}; expected a torch.optim.SGD")


@exercise("trainable_optimizer")
class TestTrainableOptimizer:
    def test_holds_exactly_the_trainable_parameters(self, kata):
        model = phase_one()
        opt = kata.trainable_optimizer(model, HEAD_LR)
        check_sgd(opt, "trainable_optimizer(model, 0.1)")
        got = names_of(model, param_ids(opt))
        check(
            sorted(param_ids(opt)) == sorted(all_ids(model, ("fc.",))),
            f"trainable_optimizer(frozen resnet18 with a new head, 0.1) holds {len(param_ids(opt))} parameters "
            f"[{short(got)}]; expected exactly fc.weight and fc.bias, the ones that require grad",
        )

    def test_holds_every_trainable_parameter_not_only_the_head(self, kata):
        model = phase_two()
        opt = kata.trainable_optimizer(model, HEAD_LR)
        check_sgd(opt, "trainable_optimizer(model, 0.1)")
        expected = all_ids(model, TRAINABLE_2)
        missing = names_of(model, set(expected) - set(param_ids(opt)))
        extra = names_of(model, set(param_ids(opt)) - set(expected))
        check(
            not missing and not extra and len(param_ids(opt)) == len(expected),
            f"trainable_optimizer(resnet18 with layer4 and fc trainable, 0.1) misses [{short(missing)}] and holds "
            f"frozen [{short(extra)}]; expected every parameter that requires grad, wherever it sits, and no other",
        )

    @pytest.mark.parametrize("lr", [0.1, 0.003], ids=lambda lr: f"lr={lr}")
    def test_one_group_with_the_given_lr_and_momentum(self, kata, lr):
        opt = kata.trainable_optimizer(phase_one(), lr)
        check_sgd(opt, f"trainable_optimizer(model, {lr})")
        groups = opt.param_groups
        settings = [(g.get("lr"), g.get("momentum")) for g in groups]
        check(
            settings == [(lr, 0.9)],
            f"trainable_optimizer(model, {lr}) has param groups with (lr, momentum) {settings}; expected [({lr}, 0.9)]",
        )

    def test_a_frozen_weight_with_a_stale_gradient_stays_put(self, kata):
        model = phase_one()
        before = model.conv1.weight.detach().clone()
        # A gradient left from before the freeze: an optimizer that holds conv1.weight would apply it.
        model.conv1.weight.grad = torch.ones_like(model.conv1.weight)
        opt = kata.trainable_optimizer(model, HEAD_LR)
        check_sgd(opt, "trainable_optimizer(model, 0.1)")
        x, y = batch(n=2)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        check(
            torch.equal(model.conv1.weight.detach(), before),
            "after trainable_optimizer(model, 0.1).step(), the frozen conv1.weight (which had a stale .grad of ones) "
            "moved; expected it untouched: an optimizer that holds frozen weights applies whatever .grad they carry",
        )


# ---------------------------------------------------------------------------------------------
@exercise("set_bn_eval")
class TestSetBnEval:
    def test_frozen_batchnorm_layers_go_to_eval_mode(self, kata):
        model = phase_one()
        got = kata.set_bn_eval(model)
        check(got is model, f"set_bn_eval(model) returned {describe(got)}; expected the model itself")
        training = [name for name, m in model.named_modules() if isinstance(m, BN) and m.training]
        check(
            not training,
            f"after set_bn_eval(frozen resnet18), the BatchNorm layers {short(training)} are still in train mode; "
            "expected every frozen BatchNorm layer in eval mode",
        )

    def test_every_other_module_stays_in_train_mode(self, kata):
        model = phase_one()
        kata.set_bn_eval(model)
        changed = [
            name or "(the model)" for name, m in model.named_modules() if not isinstance(m, BN) and not m.training
        ]
        check(
            not changed,
            f"set_bn_eval(frozen resnet18 in train mode) put {short(changed)} in eval mode; expected only the "
            "BatchNorm layers switched (model.eval() switches every module)",
        )

    def test_trainable_batchnorm_layers_stay_in_train_mode(self, kata):
        model = phase_two()
        kata.set_bn_eval(model)
        wrong = [
            f"{name} ({'train' if m.training else 'eval'})"
            for name, m in model.named_modules()
            if isinstance(m, BN) and m.training != name.startswith("layer4.")
        ]
        check(
            not wrong,
            f"after set_bn_eval(resnet18 with layer4 unfrozen), the BatchNorm layers {short(wrong)} are in the wrong mode; "
            "expected layer4's (trainable) in train mode and every frozen one in eval mode",
        )

    def test_no_parameter_is_frozen_or_unfrozen(self, kata):
        model = phase_two()
        flags = {name: p.requires_grad for name, p in model.named_parameters()}
        kata.set_bn_eval(model)
        changed = [name for name, p in model.named_parameters() if p.requires_grad != flags[name]]
        check(
            not changed,
            f"set_bn_eval(resnet18 with layer4 unfrozen) changed requires_grad of {short(changed)}; expected it to "
            "change modes only: a trainable BatchNorm layer stays trainable",
        )

    def test_batchnorm_1d_layers_count_too(self, kata):
        model = tiny().requires_grad_(False)
        kata.set_bn_eval(model)
        modes = {name: ("train" if m.training else "eval") for name, m in model.named_modules() if isinstance(m, BN)}
        check(
            set(modes.values()) == {"eval"},
            f"set_bn_eval(frozen model with a BatchNorm2d and a BatchNorm1d) left modes {modes}; expected both in eval "
            "mode: look for the common base class of all BatchNorm layers, not one of them",
        )

    def test_a_forward_pass_leaves_the_running_statistics_alone(self, kata):
        model = phase_one()
        kata.set_bn_eval(model)
        before = {name: b.clone() for name, b in model.named_buffers()}
        x, _ = batch()
        with torch.no_grad():
            model(x)
        changed = [name for name, b in model.named_buffers() if not torch.equal(b, before[name])]
        check(
            not changed,
            f"after set_bn_eval(frozen resnet18), a forward pass changed the buffers {short(changed)}; expected the "
            "running statistics of frozen BatchNorm layers to stay as they were",
        )


# ---------------------------------------------------------------------------------------------
def reference_step(
    model: nn.Module, x, y, lrs: dict[str, float], bn_train: tuple[str, ...] | None = None
) -> tuple[dict[str, torch.Tensor], float]:
    """State after one step, by hand: `lrs` maps a name prefix to its learning rate; BatchNorm
    layers run in train mode under the prefixes `bn_train` (by default those of `lrs`: the
    trainable blocks), in eval mode elsewhere; no leftover gradients; p - lr * grad (SGD's first
    step, momentum or not). Returns (state_dict, loss)."""
    ref = copy.deepcopy(model).train()
    bn_train = tuple(lrs) if bn_train is None else bn_train
    for name, m in ref.named_modules():
        if isinstance(m, BN) and not (bn_train and name.startswith(bn_train)):
            m.eval()
    ref.zero_grad()
    loss = F.cross_entropy(ref(x), y)
    loss.backward()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            for prefix, lr in lrs.items():
                if name.startswith(prefix):
                    p -= lr * p.grad
    return snapshot(ref), loss.item()


def head_sgd(model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.fc.parameters(), lr=HEAD_LR, momentum=0.9)


def two_group_sgd(model: nn.Module) -> torch.optim.SGD:
    groups = [{"params": model.fc.parameters(), "lr": HEAD_LR}, {"params": model.layer4.parameters(), "lr": BLOCK_LR}]
    return torch.optim.SGD(groups, lr=HEAD_LR, momentum=0.9)


def check_moved_like(after, expected, names, called, device, why=""):
    __tracebackhide__ = True
    why = f" ({why})" if why else ""
    # On a GPU, TF32 convolutions and other kernels may round differently from run to run.
    tol = {} if torch.device(device).type == "cpu" else {"rtol": 1e-3, "atol": 1e-4}
    for name in names:
        check_tensor(after[name], expected[name], f"after {called}, {name}{why}", **tol)


@exercise("train_step")
class TestTrainStep:
    def test_frozen_parameters_and_running_statistics_do_not_change(self, kata, device):
        model = phase_one(device)
        before = snapshot(model)
        x, y = batch(device)
        kata.train_step(model, head_sgd(model), x, y)
        after = snapshot(model)
        changed = [name for name in before if not name.startswith("fc.") and not torch.equal(after[name], before[name])]
        check(
            not changed,
            f"train_step(frozen resnet18 with a new head, SGD over the head, x, y) changed {short(changed)}; expected "
            "every frozen parameter and buffer unchanged. Running statistics move in train mode: were the frozen "
            "BatchNorm layers in eval mode during the forward pass?",
        )

    def test_the_head_takes_one_step_on_the_cross_entropy_loss(self, kata, device):
        model = phase_one(device)
        x, y = batch(device)
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR})
        kata.train_step(model, head_sgd(model), x, y)
        called = "train_step(phase-one model, SGD(lr=0.1), x, y)"
        why = "one SGD step on the cross-entropy loss, computed with the frozen BatchNorm layers in eval mode"
        check_moved_like(snapshot(model), expected, ["fc.weight", "fc.bias"], called, device, why)

    def test_returns_the_loss_as_a_python_float(self, kata):
        model = phase_one()
        x, y = batch()
        _, loss = reference_step(model, x, y, {"fc.": HEAD_LR})
        got = kata.train_step(model, head_sgd(model), x, y)
        check(
            type(got) is float and abs(got - loss) <= 1e-5 * max(1.0, abs(loss)),
            f"train_step(phase-one model, SGD, x, y) returned {describe(got)}; expected the float {loss:.6f}, "
            "F.cross_entropy(model(x), y) before the step (frozen BatchNorm in eval mode)",
        )

    def test_leftover_gradients_do_not_leak_into_the_step(self, kata):
        model = phase_one()
        x, y = batch()
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR})
        model.fc.weight.grad = torch.full_like(model.fc.weight, 5.0)
        model.fc.bias.grad = torch.full_like(model.fc.bias, -5.0)
        kata.train_step(model, head_sgd(model), x, y)
        called = "train_step(model arriving with leftover .grad, SGD, x, y)"
        why = "the step must use this batch's gradient only: reset the gradients before backward()"
        check_moved_like(snapshot(model), expected, ["fc.weight", "fc.bias"], called, "cpu", why)

    def test_an_unfrozen_block_trains_with_batch_statistics_even_from_eval_mode(self, kata):
        model = phase_two().eval()  # as after a validation pass
        before = snapshot(model)
        x, y = batch(n=2)
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR, "layer4.": BLOCK_LR})
        kata.train_step(model, two_group_sgd(model), x, y)
        after = snapshot(model)
        stale = [
            n for n in before if n.startswith("layer4.") and "running_mean" in n and torch.equal(after[n], before[n])
        ]
        check(
            not stale,
            f"train_step(model with layer4 unfrozen, arriving in eval mode, ...) left {short(stale)} unchanged; expected "
            "layer4's trainable BatchNorm layers to run in train mode and update their statistics: put the model in "
            "train mode first, then only the frozen BatchNorm layers back in eval mode",
        )
        changed = [n for n in before if not n.startswith(TRAINABLE_2) and not torch.equal(after[n], before[n])]
        check(
            not changed,
            f"train_step(model with layer4 unfrozen, ...) changed the frozen {short(changed)}; expected them unchanged",
        )
        moved = [n for n in expected if n.startswith(TRAINABLE_2) and after[n].is_floating_point()]
        check_moved_like(after, expected, moved, "train_step(model with layer4 unfrozen, two-group SGD, x, y)", "cpu")


# ---------------------------------------------------------------------------------------------
@exercise("unfreeze_last_block")
class TestUnfreezeLastBlock:
    def test_layer4_and_the_head_train_and_nothing_else(self, kata):
        model = phase_one()
        kata.unfreeze_last_block(model, HEAD_LR, BLOCK_LR)
        wrong_frozen = [n for n in names_where(model, False) if n.startswith(TRAINABLE_2)]
        wrong_trainable = [n for n in names_where(model, True) if not n.startswith(TRAINABLE_2)]
        check(
            not wrong_frozen,
            f"after unfreeze_last_block(phase-one resnet18, 0.1, 0.01), {short(wrong_frozen)} still frozen; "
            "expected every parameter of layer4 and of the head fc trainable",
        )
        check(
            not wrong_trainable,
            f"after unfreeze_last_block(phase-one resnet18, 0.1, 0.01), {short(wrong_trainable)} became trainable; "
            "expected only layer4 and fc: the earlier blocks stay frozen",
        )

    def test_two_param_groups_the_head_first_then_layer4(self, kata):
        model = phase_one()
        opt = kata.unfreeze_last_block(model, HEAD_LR, BLOCK_LR)
        groups = getattr(opt, "param_groups", [])
        check(
            isinstance(opt, torch.optim.SGD) and len(groups) == 2,
            f"unfreeze_last_block(model, 0.1, 0.01) returned {describe(opt)} with {len(groups)} param group(s); "
            "expected torch.optim.SGD with 2 groups (the head, then layer4), so each gets its own learning rate",
        )
        for i, (prefix, what) in enumerate([("fc.", "the head fc"), ("layer4.", "layer4")]):
            got = param_ids(opt, i)
            check(
                sorted(got) == sorted(all_ids(model, (prefix,))),
                f"unfreeze_last_block(model, 0.1, 0.01).param_groups[{i}] holds [{short(names_of(model, got))}]; "
                f"expected exactly the parameters of {what}",
            )

    @pytest.mark.parametrize("head_lr, block_lr", [(0.1, 0.01), (0.05, 0.001)], ids=["0.1_0.01", "0.05_0.001"])
    def test_each_group_has_its_own_learning_rate(self, kata, head_lr, block_lr):
        opt = kata.unfreeze_last_block(phase_one(), head_lr, block_lr)
        check_sgd(opt, f"unfreeze_last_block(model, {head_lr}, {block_lr})")
        settings = [(g.get("lr"), g.get("momentum")) for g in opt.param_groups]
        expected = [(head_lr, 0.9), (block_lr, 0.9)]
        check(
            settings == expected,
            f"unfreeze_last_block(model, head_lr={head_lr}, block_lr={block_lr}) has param groups with (lr, momentum) "
            f"{settings}; expected {expected}: the head's group first, layer4's with the smaller rate",
        )

    def test_layer4_moves_at_its_own_smaller_rate(self, kata):
        model = phase_one()
        x, y = batch(n=2)
        opt = kata.unfreeze_last_block(model, HEAD_LR, BLOCK_LR)
        check_sgd(opt, "unfreeze_last_block(model, 0.1, 0.01)")
        # Every BatchNorm layer in eval mode, for this model and for the reference alike.
        model.eval()
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR, "layer4.": BLOCK_LR}, bn_train=())
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        after = snapshot(model)
        names = ["layer4.1.conv2.weight", "layer4.0.bn1.weight", "fc.weight"]
        check_moved_like(after, expected, names, "one step of unfreeze_last_block(model, 0.1, 0.01)'s optimizer", "cpu")
