"""Tests for kata 13, fine-tuning a pretrained network: one class per exercise, in learning order.

Three kinds of model, none of them downloaded:
- torchvision's ResNet-18 on the `meta` device (`resnet18(weights=None)` built there): shapes,
  flags and modes but no values, so the structural checks (what requires grad, what an optimizer
  holds, which layers are in eval mode, counts) cost nothing, and a head built on the CPU shows;
- a seeded ResNet-18 with values, for one training step on the real architecture;
- `TinyResNet`, ResNet's layout in miniature (a stem `conv1`/`bn1`, blocks `layer1` ... `layer4`
  of a convolution and a BatchNorm2d each, a head `fc` that takes 6 features, not 512), whose
  BatchNorm running statistics come from a "pretraining" batch drawn from another distribution
  than the fine-tuning data, so that train-mode and eval-mode BatchNorm really differ.
Each test gets fresh copies. Phase one: everything frozen, a new seeded 10-class head `fc`;
phase two: phase one with `layer4` unfrozen as well, both set up by hand (not with the kata).

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

from dojo.testing import CUDA, check, check_tensor, describe, exercise, storage_ptr, value_mismatch

NUM_CLASSES = 10
HEAD_LR, BLOCK_LR = 0.1, 0.01
# ResNet-18's parameter counts: all of it (1000-class head), layer4 alone, a 10-class head.
RESNET18_PARAMS, LAYER4_PARAMS, HEAD10_PARAMS = 11_689_512, 8_393_728, 512 * 10 + 10
RESNET18_TENSORS, RESNET18_STATE = 62, 11_699_132  # parameter tensors; elements of state_dict (buffers too)
BN = nn.modules.batchnorm._BatchNorm
WIDTH = 6  # TinyResNet's feature width: what its head takes
TRAINABLE_2 = ("layer4.", "fc.")  # what trains in phase two
META = torch.device("meta")


# ---------------------------------------------------------------------------------------------
# Models


@functools.cache
def _resnet_meta() -> nn.Module:
    with torch.device(META):
        return resnet18(weights=None)


def resnet_meta() -> nn.Module:
    """ResNet-18 on the meta device (1000-class head), in train mode: flags and shapes, no values."""
    return copy.deepcopy(_resnet_meta()).train()


@functools.cache
def _resnet_real() -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # leave the global RNG as other tests expect it
        torch.manual_seed(13)
        return resnet18(weights=None).eval()


def resnet_real(device="cpu") -> nn.Module:
    return copy.deepcopy(_resnet_real()).train().to(device)


class TinyResNet(nn.Module):
    """ResNet-18's layout in miniature, on 3x6x6 images."""

    def __init__(self, width=WIDTH, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        for i in range(1, 5):
            block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
            setattr(self, f"layer{i}", block)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@functools.cache
def _tiny() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = TinyResNet()
        bns = [m for m in model.modules() if isinstance(m, BN)]
        for m in bns:
            m.momentum = None  # a cumulative average: one batch sets the statistics outright
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            model.train()(0.5 + 2.0 * torch.randn(16, 3, 6, 6, generator=g))  # "pretraining" data
        for m in bns:
            m.momentum = 0.1  # back to PyTorch's default
    return model.eval()


def tiny(device="cpu", dtype=torch.float32) -> nn.Module:
    """A fresh copy of the 'pretrained' TinyResNet (5-class head, 6 features), in train mode."""
    return copy.deepcopy(_tiny()).train().to(device, dtype)


def new_head(model: nn.Module) -> nn.Linear:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return nn.Linear(model.fc.in_features, NUM_CLASSES).to(model.fc.weight)


def phase_one(model: nn.Module) -> nn.Module:
    """Everything frozen, then a new trainable 10-class head."""
    model.requires_grad_(False)
    model.fc = new_head(model)
    return model


def phase_two(model: nn.Module) -> nn.Module:
    """Phase one with layer4 unfrozen as well."""
    phase_one(model).layer4.requires_grad_(True)
    return model


def batch(device="cpu", n=4, seed=2, size=6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    return x.to(device), y.to(device)


# ---------------------------------------------------------------------------------------------
# What a model is, for the checks


def names_where(model: nn.Module, requires_grad: bool) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad == requires_grad]


def short(names, limit=4) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer (running statistics included), copied."""
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], names=None) -> list[str]:
    return [n for n in (before if names is None else names) if not torch.equal(after[n], before[n])]


def modes(model: nn.Module) -> dict[str, bool]:
    return {name or "(the model)": m.training for name, m in model.named_modules()}


def mode_changes(before: dict[str, bool], model: nn.Module) -> list[str]:
    now = modes(model)
    return [
        f"{n} ({'train' if before[n] else 'eval'} -> {'train' if now[n] else 'eval'})"
        for n in before
        if now[n] != before[n]
    ]


def bn_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, BN)}


def frozen_bn(model: nn.Module) -> list[str]:
    return [n for n, m in bn_layers(model).items() if not any(p.requires_grad for p in m.parameters())]


def param_ids(optimizer, group=None) -> list[int]:
    groups = optimizer.param_groups if group is None else [optimizer.param_groups[group]]
    return [id(p) for g in groups for p in g["params"]]


def all_ids(model: nn.Module, prefixes) -> list[int]:
    return [id(p) for name, p in model.named_parameters() if name.startswith(prefixes)]


def names_of(model: nn.Module, ids) -> list[str]:
    wanted = set(ids)
    return [name for name, p in model.named_parameters() if id(p) in wanted]


def describe_optimizer(opt) -> str:
    if isinstance(opt, torch.optim.Optimizer):
        return f"a {type(opt).__name__} with {len(opt.param_groups)} param group(s)"
    return describe(opt)


def check_sgd(opt, called: str) -> None:
    __tracebackhide__ = True
    check(isinstance(opt, torch.optim.SGD), f"{called} returned {describe_optimizer(opt)}; expected a torch.optim.SGD")


SETTINGS = ("lr", "momentum", "weight_decay", "dampening", "nesterov", "maximize")


def settings_problems(opt, lrs: list[float]) -> str:
    """ "" if the param groups have the learning rates `lrs` (one group each), momentum 0.9 and
    SGD's defaults otherwise; else what differs, group by group."""
    groups = opt.param_groups
    if len(groups) != len(lrs):
        return f"{len(groups)} param group(s); expected {len(lrs)}"
    wrong = []
    for i, (group, lr) in enumerate(zip(groups, lrs)):
        want = {"lr": lr, "momentum": 0.9, "weight_decay": 0, "dampening": 0, "nesterov": False, "maximize": False}
        wrong += [
            f"group {i} has {k}={group.get(k)!r} (expected {want[k]!r})" for k in SETTINGS if group.get(k) != want[k]
        ]
    return "; ".join(wrong)


# ---------------------------------------------------------------------------------------------
@exercise("freeze_all")
class TestFreezeAll:
    def test_every_parameter_stops_requiring_grad(self, kata):
        model = resnet_meta()
        got = kata.freeze_all(model)
        check(
            got is model, f"freeze_all(resnet18) returned {describe(got)}; expected the model itself, frozen in place"
        )
        still = names_where(model, True)
        if still and not names_where(model, False) and "requires_grad" in vars(model):
            check(
                False,
                f"after freeze_all(resnet18), all {len(still)} parameters still require grad, and the model object has "
                "gained an attribute 'requires_grad': a flag set on the module freezes none of its parameters",
            )
        check(
            not still,
            f"after freeze_all(resnet18), {len(still)} parameters still require grad: {short(still)}; expected none",
        )

    def test_parameters_of_the_model_itself_are_frozen_too(self, kata):
        class Scaled(nn.Module):  # a parameter registered on the model, beside its submodules
            def __init__(self):
                super().__init__()
                self.scale = nn.Parameter(torch.ones(3))
                self.body = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3)))

        model = Scaled()
        kata.freeze_all(model)
        still = names_where(model, True)
        check(
            not still,
            f"freeze_all(model with a parameter 'scale' of its own and nested layers) left {short(still)} requiring grad; "
            "expected none: the model's own parameters and those of submodules at any depth",
        )

    @pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
    def test_every_module_keeps_its_training_mode(self, kata, mode):
        model = tiny()
        if mode == "eval":
            model.eval()
        elif mode == "mixed":  # train mode, with the stem's BatchNorm and layer2 in eval mode
            model.bn1.eval()
            model.layer2.eval()
        before = modes(model)
        kata.freeze_all(model)
        wrong = mode_changes(before, model)
        check(
            not wrong,
            f"freeze_all(model in {mode} mode) changed the training mode of {short(wrong)}; expected every module left "
            "in the mode it had: which parameters get gradients and how layers behave are separate switches",
        )

    def test_the_same_parameters_keep_their_values_gradients_and_buffers(self, kata):
        model = tiny()
        params = dict(model.named_parameters())
        for p in params.values():
            p.grad = torch.full_like(p, 0.5)  # gradients from an earlier backward pass
        before = snapshot(model)
        kata.freeze_all(model)
        replaced = [n for n, p in model.named_parameters() if p is not params[n]]
        check(
            not replaced and len(dict(model.named_parameters())) == len(params),
            f"after freeze_all(model), {short(replaced) or 'some parameters'} are new Parameter objects; expected the "
            "same objects, frozen in place: an optimizer or a caller holding the old ones no longer holds the model's",
        )
        moved = changed(before, snapshot(model))
        check(not moved, f"freeze_all(model) changed the values of {short(moved)}; expected every value unchanged")
        grads = [n for n, p in model.named_parameters() if p.grad is None or not bool((p.grad == 0.5).all())]
        check(
            not grads,
            f"freeze_all(model whose parameters had a .grad) changed or cleared the .grad of {short(grads)}; expected "
            "them left as they were: freezing stops new gradients, it does not touch stored ones",
        )

    def test_the_output_of_a_frozen_model_carries_no_graph(self, kata):
        model = kata.freeze_all(tiny())
        x, _ = batch(n=2)
        out = model(x)
        check(
            not out.requires_grad and out.grad_fn is None,
            f"after freeze_all(model), model(x) is {describe(out)} with grad_fn {out.grad_fn}; expected no graph "
            "(requires_grad False, grad_fn None): with every parameter frozen there is nothing for backward to reach",
        )


# ---------------------------------------------------------------------------------------------
def features_into_head(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """model(x), and what the head received."""
    seen = []
    handle = model.fc.register_forward_hook(lambda mod, inputs, out: seen.append(inputs[0]))
    try:
        out = model(x)
    finally:
        handle.remove()
    return out, seen[0]


@exercise("replace_head")
class TestReplaceHead:
    @pytest.mark.parametrize("classes", [10, 3], ids=lambda c: f"{c}_classes")
    def test_the_new_head_maps_512_features_to_the_classes(self, kata, classes):
        model = resnet_meta()
        old = model.fc
        got = kata.replace_head(model, classes)
        check(got is model, f"replace_head(resnet18, {classes}) returned {describe(got)}; expected the model itself")
        fc = model.fc
        weight, bias = getattr(fc, "weight", None), getattr(fc, "bias", None)
        shapes = f"weight {describe(weight)}, bias {describe(bias)}"
        if fc is old:
            check(
                weight is not None and weight.shape == (classes, 512),
                f"after replace_head(resnet18, {classes}), model.fc is still the old head ({fc!r}) with {shapes}; "
                f"expected a new layer with weight ({classes}, 512): changing out_features does not resize the weight",
            )
        check(
            isinstance(weight, torch.Tensor),
            f"after replace_head(resnet18, {classes}), model.fc is {type(fc).__name__} {fc!r}, which has no weight "
            f"of its own; expected one linear layer with a weight of shape ({classes}, 512) and a bias",
        )
        check(
            weight.shape == (classes, 512),
            f"after replace_head(resnet18, {classes}), model.fc is {fc!r} with {shapes}; expected a weight of "
            f"shape ({classes}, 512): {classes} outputs from the 512 features the old head took",
        )
        check(
            isinstance(bias, torch.Tensor) and bias.shape == (classes,),
            f"after replace_head(resnet18, {classes}), model.fc has bias {describe(bias)}; expected a bias of shape "
            f"({classes},)",
        )

    def test_it_takes_as_many_features_as_the_old_head_and_computes_a_linear_layer(self, kata):
        model = tiny()  # its head takes 6 features, not 512
        kata.replace_head(model, NUM_CLASSES)
        weight = getattr(model.fc, "weight", None)
        check(
            isinstance(weight, torch.Tensor) and weight.shape == (NUM_CLASSES, WIDTH),
            f"replace_head(model whose head is Linear({WIDTH}, 5), 10) built a head {model.fc!r} with weight "
            f"{describe(weight)}; expected weight shape (10, {WIDTH}): the new head takes as many features as the old "
            "one did, whatever the backbone",
        )
        x, _ = batch(n=3)
        out, feats = features_into_head(model, x)
        check(
            out.shape == (3, NUM_CLASSES),
            f"after replace_head, model(x of 3 images) has shape {tuple(out.shape)}; expected (3, 10)",
        )
        bias = getattr(model.fc, "bias", None)
        check(
            isinstance(bias, torch.Tensor),
            f"after replace_head(model, 10), model.fc.bias is {describe(bias)}; expected a bias of shape (10,)",
        )
        expected = feats @ model.fc.weight.T + bias
        mismatch = value_mismatch(out, expected)
        check(
            not mismatch,
            f"after replace_head(model, 10), the head's output is not features @ weight.T + bias ({mismatch}); "
            "expected a linear layer with a bias, and nothing after it",
        )

    def test_the_old_head_is_left_as_it_was(self, kata):
        model = tiny()
        old = model.fc
        weight, bias = old.weight.detach().clone(), old.bias.detach().clone()
        kata.replace_head(model, NUM_CLASSES)
        check(
            model.fc is not old,
            f"after replace_head(model, 10), model.fc is the old head object, now {old!r}; expected a new layer, the "
            "old one left as it was",
        )
        check(
            old.weight.shape == weight.shape
            and torch.equal(old.weight.detach(), weight)
            and torch.equal(old.bias.detach(), bias),
            f"replace_head(model, 10) changed the old head, now weight {describe(old.weight)}; expected it left as it "
            "was (shape (5, 6), same values) for a caller that kept it",
        )
        new = model.fc.weight
        check(
            storage_ptr(new) != storage_ptr(old.weight),
            "after replace_head(model, 10), model.fc.weight shares memory with the old head's weight; expected a head "
            "built anew, with tensors of its own",
        )

    def test_the_new_head_trains_in_a_frozen_model(self, kata):
        model = resnet_meta().requires_grad_(False)
        kata.replace_head(model, NUM_CLASSES)
        trainable = names_where(model, True)
        check(
            sorted(trainable) == ["fc.bias", "fc.weight"],
            f"after replace_head on a frozen resnet18, the parameters that require grad are [{short(trainable)}]; "
            "expected exactly fc.weight and fc.bias: the new head trains, the rest stays frozen",
        )

    def test_every_other_module_keeps_its_parameters_flags_values_and_mode(self, kata):
        model = tiny().requires_grad_(False)
        model.layer4.requires_grad_(True)  # some of the backbone trains
        model.bn1.eval()
        model.layer2.eval()
        submodules = {n: m for n, m in model.named_modules() if not n.startswith("fc")}
        params = {n: p for n, p in model.named_parameters() if not n.startswith("fc.")}
        flags = {n: p.requires_grad for n, p in params.items()}
        before, mode = snapshot(model), modes(model)
        del mode["fc"]
        kata.replace_head(model, NUM_CLASSES)
        now = dict(model.named_modules())
        swapped = [n or "(the model)" for n, m in submodules.items() if now.get(n) is not m]
        check(not swapped, f"replace_head(model, 10) replaced {short(swapped)}; expected only model.fc replaced")
        now_params = dict(model.named_parameters())
        lost = [n for n, p in params.items() if now_params.get(n) is not p]
        check(not lost, f"replace_head(model, 10) replaced the parameters {short(lost)}; expected only the head's new")
        flipped = [f"{n} ({flags[n]} -> {p.requires_grad})" for n, p in params.items() if p.requires_grad != flags[n]]
        check(
            not flipped,
            f"replace_head(model with layer4 trainable, the rest frozen, 10) changed requires_grad of {short(flipped)}; "
            "expected every parameter but the head's to keep its flag",
        )
        moved = changed(before, snapshot(model), [n for n in before if not n.startswith("fc.")])
        check(not moved, f"replace_head(model, 10) changed the values of {short(moved)}; expected them unchanged")
        wrong = mode_changes(mode, model)
        check(not wrong, f"replace_head(model, 10) changed the training mode of {short(wrong)}; expected it unchanged")

    @pytest.mark.parametrize(
        "device, dtype",
        [
            pytest.param("meta", torch.float32, id="meta-float32"),
            pytest.param("cpu", torch.float64, id="cpu-float64"),
            pytest.param("meta", torch.float64, id="meta-float64"),
            pytest.param("cpu", torch.bfloat16, id="cpu-bfloat16"),
            pytest.param("cuda", torch.float32, id="cuda-float32", marks=CUDA.marks),
        ],
    )
    def test_the_new_head_has_the_models_device_and_dtype(self, kata, device, dtype):
        # 'meta' tensors have a device but no data: a head built on the CPU shows without a GPU.
        model = tiny(device, dtype)
        kata.replace_head(model, NUM_CLASSES)
        tensors = [t for t in (getattr(model.fc, "weight", None), getattr(model.fc, "bias", None)) if t is not None]
        places = sorted({str(t.device) for t in tensors})
        check(
            {t.device.type for t in tensors} == {torch.device(device).type},
            f"replace_head(model on {device!r}, 10) built a head on {places}; expected it on {device!r} like the "
            "rest of the model, or the first forward pass fails",
        )
        dtypes = sorted({str(t.dtype) for t in tensors})
        check(
            {t.dtype for t in tensors} == {dtype},
            f"replace_head({dtype} model, 10) built a head in {dtypes}; expected {dtype} like the rest of the model, or "
            "the first forward pass fails",
        )
        if device != "meta":
            x, _ = batch(device, n=2)
            out = model(x.to(dtype))
            check(
                out.shape == (2, NUM_CLASSES), f"the model after replace_head gives {describe(out)}; expected (2, 10)"
            )


# ---------------------------------------------------------------------------------------------
def count_message(called: str, got, expected: int, model: nn.Module) -> str:
    """What went wrong, where the number itself tells (tensors counted, frozen ones counted...)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    causes = {
        len(trainable): "the number of trainable tensors, not of their elements",
        sum(p.numel() for p in model.parameters()): "every parameter's elements, the frozen ones included",
        sum(t.numel() for t in model.state_dict().values()): "every element of state_dict(), buffers included",
        sum(p.numel() for m in model.modules() for p in m.parameters() if p.requires_grad): (
            "the trainable elements counted once for every module that contains them"
        ),
    }
    why = causes.get(got, "") if isinstance(got, int) and got != expected else ""
    return f"{called} returned {describe(got)}{f', which is {why}' if why else ''}; expected the int {expected}"


@exercise("count_trainable")
class TestCountTrainable:
    def test_counts_the_elements_of_the_trainable_parameters_only(self, kata):
        model = phase_one(resnet_meta())
        got = kata.count_trainable(model)
        check(
            type(got) is int and got == HEAD10_PARAMS,
            count_message("count_trainable(frozen resnet18 with a 10-class head)", got, HEAD10_PARAMS, model)
            + " = 512 * 10 + 10, the elements of the head's weight and bias",
        )

    def test_counts_the_unfrozen_last_block_too(self, kata):
        model = phase_two(resnet_meta())
        got = kata.count_trainable(model)
        expected = LAYER4_PARAMS + HEAD10_PARAMS
        check(
            type(got) is int and got == expected,
            count_message("count_trainable(resnet18 with layer4 and a 10-class head trainable)", got, expected, model)
            + f" ({LAYER4_PARAMS} in layer4 + {HEAD10_PARAMS} in the head)",
        )

    def test_an_unfrozen_model_counts_parameters_not_buffers(self, kata):
        model = resnet_meta()
        got = kata.count_trainable(model)
        check(
            type(got) is int and got == RESNET18_PARAMS,
            count_message("count_trainable(resnet18, nothing frozen)", got, RESNET18_PARAMS, model)
            + ": running statistics are buffers, not parameters",
        )

    def test_a_shared_parameter_counts_once(self, kata):
        model = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5))
        model[1].weight = model[0].weight  # tied weights: one tensor used by two layers
        got = kata.count_trainable(model)
        check(
            got == 35,
            f"count_trainable(two Linear(5, 5) sharing one weight) returned {describe(got)}; expected 35 "
            "(the shared 5x5 weight once, plus two biases of 5)",
        )

    def test_a_fully_frozen_model_counts_zero(self, kata):
        got = kata.count_trainable(resnet_meta().requires_grad_(False))
        check(
            type(got) is int and got == 0,
            f"count_trainable(resnet18 with every parameter frozen) returned {describe(got)}; expected the int 0",
        )


# ---------------------------------------------------------------------------------------------
@exercise("trainable_optimizer")
class TestTrainableOptimizer:
    def test_holds_exactly_the_trainable_parameters(self, kata):
        model = phase_one(resnet_meta())
        opt = kata.trainable_optimizer(model, HEAD_LR)
        check_sgd(opt, "trainable_optimizer(model, 0.1)")
        got = names_of(model, param_ids(opt))
        frozen = [n for n in got if not n.startswith("fc.")]
        check(
            not frozen,
            f"trainable_optimizer(frozen resnet18 with a new head, 0.1) holds {len(frozen)} frozen parameters "
            f"[{short(frozen)}]; expected only those that require grad: a step moves any frozen one that has a .grad",
        )
        check(
            sorted(param_ids(opt)) == sorted(all_ids(model, ("fc.",))),
            f"trainable_optimizer(frozen resnet18 with a new head, 0.1) holds {len(param_ids(opt))} parameters "
            f"[{short(got)}]; expected exactly fc.weight and fc.bias, the ones that require grad",
        )

    def test_holds_every_trainable_parameter_not_only_the_head(self, kata):
        model = phase_two(resnet_meta())
        opt = kata.trainable_optimizer(model, HEAD_LR)
        check_sgd(opt, "trainable_optimizer(model, 0.1)")
        expected = all_ids(model, TRAINABLE_2)
        missing = names_of(model, set(expected) - set(param_ids(opt)))
        extra = names_of(model, set(param_ids(opt)) - set(expected))
        wrong = ([f"misses the trainable [{short(missing)}]"] if missing else []) + (
            [f"holds the frozen [{short(extra)}]"] if extra else []
        )
        check(
            not wrong,
            f"trainable_optimizer(resnet18 with layer4 and fc trainable, 0.1) {' and '.join(wrong)}; expected every "
            "parameter that requires grad, wherever it sits, and no other",
        )

    def test_each_parameter_once(self, kata):
        model = nn.Sequential(nn.Linear(5, 5), nn.Sequential(nn.Linear(5, 5)))
        model[1][0].weight = model[0].weight  # tied weights: one tensor used by two layers
        opt = kata.trainable_optimizer(model, HEAD_LR)
        check_sgd(opt, "trainable_optimizer(model, 0.1)")
        ids = param_ids(opt)
        check(
            len(ids) == len(set(ids)) == 3 and set(ids) == {id(p) for p in model.parameters()},
            f"trainable_optimizer(two nested Linear(5, 5) sharing one weight, 0.1) holds {len(ids)} tensors, "
            f"{len(set(ids))} of them distinct; expected the 3 parameters once each",
        )

    @pytest.mark.parametrize("lr", [0.1, 0.003], ids=lambda lr: f"lr={lr}")
    def test_one_group_with_the_given_lr_momentum_and_no_other_setting(self, kata, lr):
        opt = kata.trainable_optimizer(phase_one(resnet_meta()), lr)
        check_sgd(opt, f"trainable_optimizer(model, {lr})")
        wrong = settings_problems(opt, [lr])
        check(
            not wrong,
            f"trainable_optimizer(model, {lr}) has {wrong}; expected one param group with lr={lr}, momentum=0.9 and "
            "SGD's defaults otherwise",
        )

    def test_a_step_leaves_a_frozen_weight_with_a_stale_gradient_where_it_was(self, kata):
        model = phase_one(tiny())
        before = snapshot(model)
        # A gradient left from before the freeze: an optimizer that holds conv1.weight would apply it.
        model.conv1.weight.grad = torch.ones_like(model.conv1.weight)
        model.layer1[1].weight.grad = torch.ones_like(model.layer1[1].weight)
        opt = kata.trainable_optimizer(model, HEAD_LR)
        check_sgd(opt, "trainable_optimizer(model, 0.1)")
        x, y = batch(n=2)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        moved = changed(before, snapshot(model), [n for n in names_where(model, False)])
        check(
            not moved,
            f"a step of trainable_optimizer(model, 0.1) moved the frozen {short(moved)}, which carried a stale .grad "
            "of ones; expected every frozen parameter exactly where it was",
        )

    def test_building_it_changes_nothing_in_the_model(self, kata):
        model = phase_two(tiny())
        stale = {n: torch.full_like(p, 0.5) for n, p in model.named_parameters()}
        for n, p in model.named_parameters():
            p.grad = stale[n].clone()
        flags, before = {n: p.requires_grad for n, p in model.named_parameters()}, snapshot(model)
        kata.trainable_optimizer(model, HEAD_LR)
        flipped = [n for n, p in model.named_parameters() if p.requires_grad != flags[n]]
        check(not flipped, f"trainable_optimizer(model, 0.1) changed requires_grad of {short(flipped)}; expected none")
        moved = changed(before, snapshot(model))
        check(not moved, f"trainable_optimizer(model, 0.1) changed the values of {short(moved)}; expected none")
        grads = [n for n, p in model.named_parameters() if p.grad is None or not torch.equal(p.grad, stale[n])]
        check(
            not grads,
            f"trainable_optimizer(model, 0.1) changed or cleared the .grad of {short(grads)}; expected every gradient "
            "left as it was (building an optimizer is not a step, nor a reset)",
        )


# ---------------------------------------------------------------------------------------------
class MyBatchNorm2d(nn.BatchNorm2d):
    """A subclass, as libraries define them."""


@exercise("set_bn_eval")
class TestSetBnEval:
    def test_frozen_batchnorm_layers_go_to_eval_mode(self, kata):
        model = phase_one(resnet_meta())
        got = kata.set_bn_eval(model)
        check(got is model, f"set_bn_eval(model) returned {describe(got)}; expected the model itself")
        training = [name for name, m in bn_layers(model).items() if m.training]
        check(
            not training,
            f"after set_bn_eval(frozen resnet18 with a new head), the frozen BatchNorm layers {short(training)} are "
            "still in train mode; expected every one of them in eval mode",
        )

    def test_every_other_module_stays_in_train_mode(self, kata):
        model = phase_one(resnet_meta())
        kata.set_bn_eval(model)
        wrong = [name or "(the model)" for name, m in model.named_modules() if not isinstance(m, BN) and not m.training]
        check(
            not wrong,
            f"set_bn_eval(frozen resnet18 in train mode) put {short(wrong)} in eval mode; expected only the frozen "
            "BatchNorm layers switched, everything else in train mode as it was",
        )

    def test_trainable_batchnorm_layers_stay_in_train_mode(self, kata):
        model = phase_two(resnet_meta())
        kata.set_bn_eval(model)
        wrong = [
            f"{name} ({'train' if m.training else 'eval'})"
            for name, m in bn_layers(model).items()
            if m.training != name.startswith("layer4.")
        ]
        check(
            not wrong,
            f"after set_bn_eval(resnet18 with layer4 unfrozen), the BatchNorm layers {short(wrong)} are in the wrong "
            "mode; expected layer4's (trainable) in train mode and every frozen one in eval mode",
        )

    def test_a_model_in_eval_mode_stays_in_eval_mode(self, kata):
        model = phase_two(resnet_meta()).eval()  # as after a validation pass
        kata.set_bn_eval(model)
        woken = [name or "(the model)" for name, m in model.named_modules() if m.training]
        check(
            not woken,
            f"set_bn_eval(resnet18 with layer4 unfrozen, in eval mode) put {short(woken)} in train mode; expected "
            "every module to keep the mode it had, the trainable BatchNorm layers included",
        )

    def test_no_parameter_is_frozen_or_unfrozen(self, kata):
        model = phase_two(resnet_meta())
        flags = {name: p.requires_grad for name, p in model.named_parameters()}
        kata.set_bn_eval(model)
        flipped = [name for name, p in model.named_parameters() if p.requires_grad != flags[name]]
        check(
            not flipped,
            f"set_bn_eval(resnet18 with layer4 unfrozen) changed requires_grad of {short(flipped)}; expected it to "
            "change modes only",
        )

    def test_batchnorm_1d_2d_3d_and_subclasses_count(self, kata):
        layers = {
            "bn1d": nn.BatchNorm1d(3),
            "bn2d": nn.BatchNorm2d(3),
            "bn3d": nn.BatchNorm3d(3),
            "sub": MyBatchNorm2d(3),
        }
        model = nn.ModuleDict(layers).requires_grad_(False)
        kata.set_bn_eval(model)
        left = [f"{name} ({type(m).__name__})" for name, m in layers.items() if m.training]
        check(
            not left,
            f"set_bn_eval(frozen BatchNorm1d, 2d, 3d and a subclass of BatchNorm2d) left {short(left)} in train mode; "
            "expected every kind of BatchNorm layer in eval mode",
        )

    def test_a_batchnorm_layer_without_parameters_counts_as_frozen(self, kata):
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False), nn.ReLU(), nn.BatchNorm2d(4))
        kata.set_bn_eval(model)
        got = {name: "train" if m.training else "eval" for name, m in model.named_modules() if name}
        check(
            got == {"0": "train", "1": "eval", "2": "train", "3": "train"},
            f"set_bn_eval(Sequential(trainable Conv2d, BatchNorm2d(affine=False), ReLU, trainable BatchNorm2d)) left "
            f"modes {got}; expected only the BatchNorm layer without parameters in eval mode: it has nothing to train",
        )

    @pytest.mark.parametrize("trainable", ["weight", "bias"])
    def test_a_batchnorm_layer_with_one_trainable_parameter_trains(self, kata, trainable):
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).requires_grad_(False)
        getattr(model[1], trainable).requires_grad_(True)
        kata.set_bn_eval(model)
        check(
            model[1].training,
            f"set_bn_eval(model whose BatchNorm2d has a trainable {trainable} and a frozen "
            f"{'bias' if trainable == 'weight' else 'weight'}) put it in eval mode; expected it in train mode: a layer "
            "is frozen only when none of its parameters requires grad",
        )

    def test_the_call_itself_changes_no_buffer(self, kata):
        model = phase_one(tiny())
        before = snapshot(model)
        kata.set_bn_eval(model)
        moved = changed(before, snapshot(model))
        check(not moved, f"set_bn_eval(model) changed {short(moved)}; expected no value changed (it only sets modes)")

    def test_a_forward_pass_afterwards_leaves_the_frozen_statistics_alone(self, kata):
        model = kata.set_bn_eval(phase_one(tiny()))
        before = snapshot(model)
        x, _ = batch()
        with torch.no_grad():
            model(x)
        moved = changed(before, snapshot(model))
        check(
            not moved,
            f"after set_bn_eval(frozen model), a forward pass changed the buffers {short(moved)}; expected the "
            "running statistics of frozen BatchNorm layers to stay as they were",
        )


# ---------------------------------------------------------------------------------------------
def reference_step(
    model: nn.Module, x, y, lrs: dict[str, float], bn_train=None, reduction="mean"
) -> tuple[dict[str, torch.Tensor], float]:
    """State after one step, by hand: `lrs` maps a name prefix to its learning rate; BatchNorm
    layers run in train mode under the prefixes `bn_train` (by default those of `lrs`: the
    trainable blocks; True: all of them), in eval mode elsewhere; no leftover gradients;
    p - lr * grad (SGD's first step, momentum or not). Returns (state_dict, loss)."""
    ref = copy.deepcopy(model).train()
    bn_train = tuple(lrs) if bn_train is None else bn_train
    for name, m in ref.named_modules():
        if isinstance(m, BN) and bn_train is not True and not (bn_train and name.startswith(bn_train)):
            m.eval()
    ref.zero_grad()
    loss = F.cross_entropy(ref(x), y, reduction=reduction)
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


def tolerances(device) -> dict:
    # On a GPU, TF32 convolutions and other kernels may round differently from run to run.
    return {} if torch.device(device).type == "cpu" else {"rtol": 1e-3, "atol": 1e-4}


def mismatched(after, expected, names, device) -> list[str]:
    return [n for n in names if value_mismatch(after[n], expected[n], **tolerances(device))]


def check_moved_like(after, expected, names, called, device, why=""):
    __tracebackhide__ = True
    why = f" ({why})" if why else ""
    for name in names:
        check_tensor(after[name], expected[name], f"after {called}, {name}{why}", **tolerances(device))


@exercise("train_step")
class TestTrainStep:
    def test_frozen_parameters_and_running_statistics_do_not_change(self, kata, device):
        model = phase_one(tiny(device))
        before = snapshot(model)
        x, y = batch(device)
        kata.train_step(model, head_sgd(model), x, y)
        moved = changed(before, snapshot(model), [n for n in before if not n.startswith("fc.")])
        stats = [n for n in moved if "running_" in n or "num_batches" in n]
        check(
            not stats,
            f"train_step(frozen model with a new head, SGD over the head, x, y) changed the running statistics "
            f"{short(stats)}; expected them unchanged. A frozen BatchNorm layer rewrites them whenever it runs in "
            "train mode",
        )
        check(
            not moved,
            f"train_step(frozen model with a new head, SGD over the head, x, y) changed the frozen {short(moved)}; "
            "expected every frozen parameter unchanged",
        )

    def test_the_head_takes_one_step_on_this_batchs_mean_cross_entropy(self, kata, device):
        model = phase_one(tiny(device))
        x, y = batch(device)
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR})
        # Steps of known mistakes, to name the one made where the head's values tell.
        in_train, _ = reference_step(model, x, y, {"fc.": HEAD_LR}, bn_train=True)
        summed, _ = reference_step(model, x, y, {"fc.": HEAD_LR}, reduction="sum")
        before = snapshot(model)
        kata.train_step(model, head_sgd(model), x, y)
        after, head = snapshot(model), ["fc.weight", "fc.bias"]
        called = "train_step(frozen model with a new head, SGD(head, lr=0.1, momentum=0.9), x, y)"
        check(
            changed(before, after, head),
            f"{called} left the head where it was; expected one step of the optimizer, taken with this batch's "
            "gradient (a step right after the gradients are reset has nothing to apply)",
        )
        if mismatched(after, expected, head, device):
            for variant, why in [
                (in_train, "the frozen BatchNorm layers normalized with the batch's statistics (train mode)"),
                (summed, "the loss were summed over the batch, not averaged"),
            ]:
                check(
                    mismatched(after, variant, head, device),
                    f"{called} moved the head as one step would if {why}; expected the step of the mean "
                    "cross-entropy, with the frozen BatchNorm layers using their stored statistics",
                )
        why = "one SGD step on the mean cross-entropy, with the frozen BatchNorm layers in eval mode"
        check_moved_like(after, expected, head, called, device, why)

    def test_returns_the_loss_before_the_step_as_a_python_float(self, kata):
        model = phase_one(tiny())
        x, y = batch()
        _, loss = reference_step(model, x, y, {"fc.": HEAD_LR})
        got = kata.train_step(model, head_sgd(model), x, y)
        check(
            type(got) is float and abs(got - loss) <= 1e-5 * max(1.0, abs(loss)),
            f"train_step(frozen model with a new head, SGD, x, y) returned {describe(got)}; expected the float "
            f"{loss:.6f}, the batch's mean cross-entropy before the step (frozen BatchNorm layers in eval mode)",
        )

    def test_leftover_gradients_do_not_leak_into_the_step(self, kata):
        model = phase_one(tiny())
        x, y = batch()
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR})
        model.fc.weight.grad = torch.full_like(model.fc.weight, 5.0)
        model.fc.bias.grad = torch.full_like(model.fc.bias, -5.0)
        kata.train_step(model, head_sgd(model), x, y)
        after, head = snapshot(model), ["fc.weight", "fc.bias"]
        called = "train_step(model arriving with leftover .grad of +5 on fc.weight and -5 on fc.bias, SGD, x, y)"
        summed = {"fc.weight": expected["fc.weight"] - HEAD_LR * 5.0, "fc.bias": expected["fc.bias"] + HEAD_LR * 5.0}
        check(
            bool(mismatched(after, summed, head, "cpu")),
            f"{called} moved the head by the leftover gradient plus this batch's; expected this batch's gradient only",
        )
        check_moved_like(after, expected, head, called, "cpu", "a step with this batch's gradient only")

    def test_a_model_arriving_in_eval_mode_trains_in_train_mode(self, kata, device):
        model = phase_two(tiny(device)).eval()  # as after a validation pass
        before = snapshot(model)
        x, y = batch(device)
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR, "layer4.": BLOCK_LR})
        kata.train_step(model, two_group_sgd(model), x, y)
        after = snapshot(model)
        stale = [n for n in before if n.startswith("layer4.") and "running_" in n and torch.equal(after[n], before[n])]
        check(
            not stale,
            f"train_step(model with layer4 unfrozen, arriving in eval mode, ...) left {short(stale)} unchanged; "
            "expected layer4's trainable BatchNorm layer to run in train mode and update its running statistics",
        )
        moved = changed(before, after, [n for n in before if not n.startswith(TRAINABLE_2)])
        check(
            not moved,
            f"train_step(model with layer4 unfrozen, ...) changed the frozen {short(moved)}; expected them unchanged",
        )
        names = [n for n in expected if n.startswith(TRAINABLE_2) and after[n].is_floating_point()]
        called = "train_step(model with layer4 unfrozen, arriving in eval mode, two-group SGD, x, y)"
        check_moved_like(
            after, expected, names, called, device, "one step in train mode, frozen BatchNorm in eval mode"
        )

    def test_the_model_is_left_in_train_mode_with_its_frozen_batchnorm_in_eval(self, kata):
        model = phase_two(tiny()).eval()
        x, y = batch()
        kata.train_step(model, two_group_sgd(model), x, y)
        frozen = set(frozen_bn(model))
        wrong = [
            f"{name or '(the model)'} ({'train' if m.training else 'eval'})"
            for name, m in model.named_modules()
            if m.training == (name in frozen)
        ]
        check(
            not wrong,
            f"after train_step(model with layer4 unfrozen, arriving in eval mode, ...), {short(wrong)} are in the wrong "
            "mode; expected the model in train mode, except its frozen BatchNorm layers in eval mode",
        )

    def test_on_resnet18_only_the_head_moves(self, kata):
        model = phase_one(resnet_real())
        x, y = batch(n=2, size=16)
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR})
        before = snapshot(model)
        kata.train_step(model, head_sgd(model), x, y)
        after = snapshot(model)
        moved = changed(before, after, [n for n in before if not n.startswith("fc.")])
        check(
            not moved,
            f"train_step(frozen resnet18 with a new head, SGD over the head, x, y) changed {short(moved)}; expected "
            "every frozen parameter and running statistic unchanged",
        )
        called = "train_step(frozen resnet18 with a new head, SGD, x, y)"
        check_moved_like(
            after, expected, ["fc.weight", "fc.bias"], called, "cpu", "one SGD step, frozen BatchNorm in eval mode"
        )


# ---------------------------------------------------------------------------------------------
@exercise("unfreeze_last_block")
class TestUnfreezeLastBlock:
    def test_layer4_and_the_head_train_and_nothing_else(self, kata):
        model = phase_one(resnet_meta())
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
        model = phase_one(resnet_meta())
        opt = kata.unfreeze_last_block(model, HEAD_LR, BLOCK_LR)
        groups = getattr(opt, "param_groups", [])
        check(
            isinstance(opt, torch.optim.SGD) and len(groups) == 2,
            f"unfreeze_last_block(model, 0.1, 0.01) returned {describe_optimizer(opt)}; "
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
    def test_each_group_has_its_own_learning_rate_and_momentum(self, kata, head_lr, block_lr):
        opt = kata.unfreeze_last_block(phase_one(resnet_meta()), head_lr, block_lr)
        check_sgd(opt, f"unfreeze_last_block(model, {head_lr}, {block_lr})")
        wrong = settings_problems(opt, [head_lr, block_lr])
        check(
            not wrong,
            f"unfreeze_last_block(model, head_lr={head_lr}, block_lr={block_lr}) has {wrong}; expected group 0 (the "
            f"head) with lr={head_lr}, group 1 (layer4) with lr={block_lr}, both with momentum=0.9 and SGD's defaults "
            "otherwise",
        )

    def test_no_value_and_no_mode_changes(self, kata):
        model = phase_one(tiny())
        model.eval()
        model.layer3.train()  # a mix of modes, to be kept as it is
        before, mode = snapshot(model), modes(model)
        kata.unfreeze_last_block(model, HEAD_LR, BLOCK_LR)
        moved = changed(before, snapshot(model))
        check(
            not moved, f"unfreeze_last_block(model, 0.1, 0.01) changed {short(moved)}; expected every value unchanged"
        )
        wrong = mode_changes(mode, model)
        check(
            not wrong,
            f"unfreeze_last_block(model, 0.1, 0.01) changed the training mode of {short(wrong)}; expected every "
            "module's mode unchanged",
        )

    def test_layer4_moves_at_its_own_smaller_rate(self, kata):
        model = phase_one(tiny())
        x, y = batch()
        opt = kata.unfreeze_last_block(model, HEAD_LR, BLOCK_LR)
        check_sgd(opt, "unfreeze_last_block(model, 0.1, 0.01)")
        model.eval()  # every BatchNorm layer in eval mode, for this model and for the reference alike
        expected, _ = reference_step(model, x, y, {"fc.": HEAD_LR, "layer4.": BLOCK_LR}, bn_train=())
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        names = ["layer4.0.weight", "layer4.1.weight", "layer4.1.bias", "fc.weight", "fc.bias"]
        check_moved_like(
            snapshot(model), expected, names, "one step of unfreeze_last_block(model, 0.1, 0.01)'s optimizer", "cpu"
        )
