"""Tests for kata 08, modules, parameters and state: one class per exercise, in learning order."""

import pickle

import pytest
import torch
from torch import nn

from dojo.testing import check, check_tensor, describe, exercise

# The "meta" device exists on every machine (tensors with a shape and dtype, but no data): moving a
# module there shows which of its tensors `.to()` reaches, without needing a GPU.
META = torch.device("meta")


def names(pairs) -> list[str]:
    return [name for name, _ in pairs]


def seeded(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class Block(nn.Module):
    """A submodule with a submodule of its own, for nesting two levels deep."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(5, 3))  # 5*3 + 3 = 18 values, two levels down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class Nested(nn.Module):
    """3 values of its own + 25 in a direct child + 18 two levels down = 46."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.first = nn.Linear(4, 5)
        self.block = Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(torch.relu(self.first(x))) * self.scale


class Tied(nn.Module):
    """An embedding and an output layer sharing one (10, 4) weight, as language models do."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.unembed = nn.Linear(4, 10, bias=False)
        self.unembed.weight = self.embed.weight


class WithNorm(nn.Module):
    """Linear(3 -> 4) then BatchNorm1d(4): 16 + 8 parameter values and three buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(x))


class WithCache(nn.Module):
    """A persistent buffer saved with the model and a non-persistent one that is not."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("cache", torch.zeros(2), persistent=False)


class DropNorm(nn.Module):
    """A model whose output depends on the mode: BatchNorm, then Dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(p=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.fc(x)))


def trained_dropnorm(seed: int = 0) -> DropNorm:
    """A DropNorm whose running statistics are not the initial zeros and ones."""
    torch.manual_seed(seed)
    model = DropNorm()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 6) * 2 + 1)
    return model


class Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom: this forward pass fails on purpose")


def modes(model: nn.Module) -> dict[str, bool]:
    return {name or "(model)": m.training for name, m in model.named_modules()}


# ---------------------------------------------------------------------------------------------


@exercise("ScaleShift")
class TestScaleShift:
    def test_weight_and_bias_are_registered_parameters(self, kata):
        m = kata.ScaleShift(3)
        got = names(m.named_parameters())
        plain = [
            n for n in ("weight", "bias") if isinstance(getattr(m, n, None), torch.Tensor) and n not in got
        ]  # tensors the module holds without knowing them as parameters
        check(
            sorted(got) == ["bias", "weight"],
            f"ScaleShift(3).named_parameters() gave the names {got}; expected ['weight', 'bias']"
            + (f". The module has {plain} as plain tensor attributes, which are not parameters." if plain else ""),
        )
        keys = sorted(m.state_dict())
        check(
            keys == ["bias", "weight"], f"ScaleShift(3).state_dict() has the keys {keys}; expected ['bias', 'weight']"
        )

    def test_parameters_start_as_ones_and_zeros(self, kata):
        m = kata.ScaleShift(4)
        check_tensor(getattr(m, "weight", None), torch.ones(4), "ScaleShift(4).weight")
        check_tensor(getattr(m, "bias", None), torch.zeros(4), "ScaleShift(4).bias")

    def test_forward_scales_and_shifts_each_feature(self, kata, device):
        m = kata.ScaleShift(3).to(device)
        with torch.no_grad():
            m.weight.copy_(torch.tensor([1.0, 2.0, -1.0]))
            m.bias.copy_(torch.tensor([0.0, 10.0, 0.5]))
        x = torch.tensor([[1.0, 1.0, 1.0], [2.0, 3.0, 4.0]], device=device)
        expected = torch.tensor([[1.0, 12.0, -0.5], [2.0, 16.0, -3.5]], device=device)
        check_tensor(
            m(x), expected, "ScaleShift(3) with weight=[1, 2, -1], bias=[0, 10, 0.5], called on x of shape (2, 3)"
        )

    def test_x_is_left_unchanged(self, kata):
        m = kata.ScaleShift(3)
        with torch.no_grad():
            m.weight.fill_(2.0)
            m.bias.fill_(1.0)
        x = seeded(15, 4, 3)
        before = x.clone()
        m(x)
        check(
            torch.equal(x, before),
            f"ScaleShift(3)(x) changed the caller's x: {describe(x)}; expected it left as it was, {describe(before)} "
            "(an in-place operation on x writes into the caller's tensor)",
        )

    def test_an_optimizer_step_changes_weight_and_bias(self, kata):
        m = kata.ScaleShift(3)
        params = list(m.parameters())
        check(
            len(params) == 2,
            f"list(ScaleShift(3).parameters()) holds {len(params)} tensors; expected 2 (weight and bias). "
            "torch.optim.SGD(module.parameters()) only ever updates what is in that list.",
        )
        before = {"weight": m.weight.detach().clone(), "bias": m.bias.detach().clone()}
        m(seeded(0, 5, 3)).pow(2).sum().backward()
        with torch.no_grad():  # what SGD(module.parameters(), lr=0.1).step() does (without its import time)
            for p in params:
                if p.grad is not None:
                    p -= 0.1 * p.grad
        for name, old in before.items():
            check(
                not torch.equal(getattr(m, name).detach(), old),
                f"after loss.backward() and SGD(module.parameters()).step(), ScaleShift.{name} is unchanged "
                f"({describe(old)}); expected the optimizer to have updated it",
            )

    def test_to_moves_the_parameters(self, kata):
        m = kata.ScaleShift(3).to(META)
        got = {name: describe(getattr(m, name, None)) for name in ("weight", "bias")}
        check(
            all(isinstance(getattr(m, n, None), torch.Tensor) and getattr(m, n).device == META for n in got),
            f"after ScaleShift(3).to('meta'): {got}; expected weight and bias on 'meta'. "
            ".to() moves only registered parameters and buffers.",
        )


@exercise("count_parameters")
class TestCountParameters:
    def test_counts_the_parameters_of_nested_submodules(self, kata):
        got = kata.count_parameters(Nested())
        check(
            got == 46,
            f"count_parameters(model) returned {describe(got)}; expected 46 = 3 (the model's own `scale`) + "
            "25 (Linear(4, 5), a direct child) + 18 (Linear(5, 3), two levels down)",
        )

    def test_returns_a_python_int(self, kata):
        got = kata.count_parameters(nn.Linear(3, 2))
        check(
            type(got) is int and got == 8,
            f"count_parameters(nn.Linear(3, 2)) returned {describe(got)}; expected the int 8",
        )

    def test_a_shared_weight_counts_once(self, kata):
        got = kata.count_parameters(Tied())
        check(
            got == 40,
            f"count_parameters(model with an Embedding(10, 4) whose weight the output Linear shares) returned "
            f"{describe(got)}; expected 40: one (10, 4) weight, used twice but stored once",
        )

    def test_buffers_are_not_counted(self, kata):
        got = kata.count_parameters(WithNorm())
        check(
            got == 24,
            f"count_parameters(Linear(3, 4) + BatchNorm1d(4)) returned {describe(got)}; expected 24 = 16 + 8. "
            "BatchNorm's running_mean, running_var and num_batches_tracked are buffers, not parameters.",
        )

    def test_trainable_only_leaves_frozen_parameters_out(self, kata):
        model = Nested()
        model.first.requires_grad_(False)
        got = kata.count_parameters(model, trainable_only=True)
        check(
            got == 21,
            f"count_parameters(model with `first` frozen, trainable_only=True) returned {describe(got)}; expected "
            "21 = 46 - 25 (the frozen Linear(4, 5))",
        )

    def test_a_model_without_parameters_has_zero(self, kata):
        got = kata.count_parameters(nn.Sequential(nn.ReLU(), nn.Dropout()))
        check(
            type(got) is int and got == 0,
            f"count_parameters(nn.Sequential(nn.ReLU(), nn.Dropout())) returned {describe(got)}; expected the int 0",
        )

    def test_the_model_is_left_as_it_was(self, kata):
        model = Nested()
        model.first.requires_grad_(False)
        before = {name: p.requires_grad for name, p in model.named_parameters()}
        kata.count_parameters(model, trainable_only=True)
        kata.count_parameters(model)
        got = {name: p.requires_grad for name, p in model.named_parameters()}
        check(
            got == before,
            f"after count_parameters(model), the parameters' requires_grad flags are {got}; expected them as they "
            f"were, {before}",
        )

    def test_frozen_parameters_count_by_default(self, kata):
        model = Nested()
        model.first.requires_grad_(False)
        got = kata.count_parameters(model)
        check(got == 46, f"count_parameters(model with `first` frozen) returned {describe(got)}; expected all 46")


@exercise("make_mlp")
class TestMakeMlp:
    def test_returns_a_sequential(self, kata):
        got = kata.make_mlp(4, 8, 2)
        check(isinstance(got, nn.Sequential), f"make_mlp(4, 8, 2) returned {describe(got)}; expected an nn.Sequential")

    def test_layers_are_named_hidden_act_output(self, kata):
        got = names(kata.make_mlp(4, 8, 2).named_children())
        check(
            got == ["hidden", "act", "output"],
            f"make_mlp(4, 8, 2) has layers named {got}; expected ['hidden', 'act', 'output'] in that order",
        )

    def test_state_dict_keys_use_the_layer_names(self, kata):
        model = kata.make_mlp(4, 8, 2)
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        expected = {"hidden.weight": (8, 4), "hidden.bias": (8,), "output.weight": (2, 8), "output.bias": (2,)}
        check(got == expected, f"make_mlp(4, 8, 2).state_dict() has keys and shapes {got}; expected {expected}")

    def test_hidden_and_output_are_the_linear_layers(self, kata):
        model = kata.make_mlp(4, 8, 2)
        got = {name: getattr(model, name, None) for name in ("hidden", "output")}
        shapes = {
            name: (layer.in_features, layer.out_features) if isinstance(layer, nn.Linear) else describe(layer)
            for name, layer in got.items()
        }
        check(
            shapes == {"hidden": (4, 8), "output": (8, 2)},
            f"make_mlp(4, 8, 2): model.hidden and model.output are {shapes}; expected nn.Linear layers "
            "(in, out) = (4, 8) and (8, 2)",
        )

    @pytest.mark.parametrize("sizes", [(4, 8, 2), (3, 5, 1)], ids=["4-8-2", "3-5-1"])
    def test_forward_is_linear_relu_linear(self, kata, sizes):
        torch.manual_seed(0)
        model = kata.make_mlp(*sizes)
        x = seeded(1, 5, sizes[0])
        state = model.state_dict()
        keys = ("hidden.weight", "hidden.bias", "output.weight", "output.bias")
        check(
            all(k in state for k in keys),
            f"make_mlp{sizes}.state_dict() has the keys {list(state)}; expected {list(keys)}",
        )
        w1, b1, w2, b2 = (state[k] for k in keys)
        expected = torch.relu(x @ w1.T + b1) @ w2.T + b2
        check_tensor(
            model(x).detach(), expected, f"make_mlp{sizes}(x of shape (5, {sizes[0]})); expected "
            "relu(x W1ᵀ + b1) W2ᵀ + b2", rtol=1e-5, atol=1e-6,
        )  # fmt: skip


@exercise("LayerStack")
class TestLayerStack:
    def test_every_layer_is_registered(self, kata):
        m = kata.LayerStack(4, 3)
        got = len(list(m.parameters()))
        check(
            got == 6,
            f"list(LayerStack(4, 3).parameters()) holds {got} tensors; expected 6 (a weight and a bias per layer)"
            + (". Layers kept in a plain Python list are invisible to the module." if got == 0 else "")
            + (". Only one layer's: the same layer object is used at every depth." if got == 2 else ""),
        )

    def test_each_layer_has_its_own_weights(self, kata):
        state = kata.LayerStack(4, 3).state_dict()
        distinct = len({t.data_ptr() for t in state.values()})
        check(
            len(state) == 6 and distinct == 6,
            f"LayerStack(4, 3).state_dict() holds {len(state)} tensors, {distinct} of them distinct; expected 6 "
            "different tensors (3 layers, each with its own weight and bias; [layer] * depth is one layer repeated)",
        )

    @pytest.mark.parametrize("depth", [1, 2, 3], ids=["depth1", "depth2", "depth3"])
    def test_state_dict_keys_are_numbered_under_layers(self, kata, depth):
        got = list(kata.LayerStack(4, depth).state_dict())
        expected = [f"layers.{i}.{name}" for i in range(depth) for name in ("weight", "bias")]
        check(got == expected, f"LayerStack(4, {depth}).state_dict() has the keys {got}; expected {expected}")

    def test_to_moves_every_layer(self, kata):
        m = kata.LayerStack(4, 3).to(META)
        where = {name: str(p.device) for name, p in m.named_parameters()}
        check(
            len(where) == 6 and set(where.values()) == {"meta"},
            f"after LayerStack(4, 3).to('meta') its parameters are {where}; expected 6 tensors, all on 'meta'",
        )

    @pytest.mark.parametrize("depth", [1, 3], ids=["depth1", "depth3"])
    def test_forward_applies_linear_and_relu_layer_by_layer(self, kata, device, depth):
        torch.manual_seed(0)
        m = kata.LayerStack(5, depth).to(device)
        x = seeded(2, 4, 5).to(device) - 0.5
        before = x.clone()
        state = m.state_dict()
        keys = [f"layers.{i}.{name}" for i in range(depth) for name in ("weight", "bias")]
        check(
            all(k in state for k in keys),
            f"LayerStack(5, {depth}).state_dict() has the keys {list(state)}; expected {keys}",
        )
        expected = x
        for i in range(depth):
            expected = torch.relu(expected @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"])
        check_tensor(
            m(x).detach(), expected,
            f"LayerStack(5, {depth})(x of shape (4, 5)); expected relu(layer(x)) for each layer in order, "
            "the last one included",
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip
        check(torch.equal(x, before), f"LayerStack(5, {depth})(x) changed the caller's x; expected it left as it was")


@exercise("state_dict_keys")
class TestStateDictKeys:
    def test_buffers_are_listed_with_the_parameters(self, kata):
        got = kata.state_dict_keys(WithNorm())
        expected = [
            "fc.weight", "fc.bias",
            "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
        ]  # fmt: skip
        check(
            got == expected,
            f"state_dict_keys(Linear + BatchNorm1d model) returned {describe(got)}; expected {expected}. "
            "BatchNorm saves its running statistics (buffers) along with its parameters.",
        )

    def test_non_persistent_buffers_are_left_out(self, kata):
        got = kata.state_dict_keys(WithCache())
        expected = ["steps", "fc.weight", "fc.bias"]
        check(
            got == expected,
            f"state_dict_keys(model with a persistent buffer `steps` and a persistent=False buffer `cache`) returned "
            f"{describe(got)}; expected {expected} (the state_dict's order: the module's own tensors, then its children's)",
        )

    def test_a_shared_tensor_is_listed_under_each_name(self, kata):
        got = kata.state_dict_keys(Tied())
        expected = ["embed.weight", "unembed.weight"]
        check(
            got == expected,
            f"state_dict_keys(model whose output Linear shares the Embedding's weight) returned {describe(got)}; "
            f"expected {expected}: the state_dict lists a shared tensor under each of its names",
        )

    def test_returns_a_list_of_str(self, kata):
        got = kata.state_dict_keys(nn.Linear(2, 2))
        check(
            type(got) is list and got == ["weight", "bias"],
            f"state_dict_keys(nn.Linear(2, 2)) returned {describe(got)}; expected the list ['weight', 'bias']",
        )


@exercise("RunningCenter")
class TestRunningCenter:
    def test_running_mean_is_a_buffer_in_the_state_dict(self, kata):
        m = kata.RunningCenter(3)
        got = list(m.state_dict())
        check(
            got == ["running_mean"] and names(m.named_buffers()) == ["running_mean"],
            f"RunningCenter(3).state_dict() has the keys {got} and its buffers are {names(m.named_buffers())}; "
            "expected one buffer, 'running_mean', in both. A plain tensor attribute is not saved.",
        )

    def test_running_mean_is_not_a_parameter(self, kata):
        got = names(kata.RunningCenter(3).named_parameters())
        check(
            got == [],
            f"RunningCenter(3).named_parameters() gave {got}; expected none: an optimizer must not train a running "
            "statistic. Use register_buffer, not nn.Parameter.",
        )

    def test_running_mean_starts_as_zeros(self, kata):
        m = kata.RunningCenter(3)
        check_tensor(getattr(m, "running_mean", None), torch.zeros(3), "RunningCenter(3).running_mean")

    def test_to_moves_the_running_mean(self, kata):
        m = kata.RunningCenter(3).to(META)
        got = getattr(m, "running_mean", None)
        check(
            isinstance(got, torch.Tensor) and got.device == META,
            f"after RunningCenter(3).to('meta'), running_mean is {describe(got)}; expected it on 'meta'. "
            ".to() moves registered buffers; a plain tensor attribute stays behind.",
        )

    def test_training_subtracts_the_batch_mean(self, kata, device):
        m = kata.RunningCenter(3).to(device).train()
        x = seeded(3, 8, 3).to(device) + torch.tensor([1.0, -2.0, 5.0], device=device)
        check_tensor(
            m(x), x - x.mean(0), "RunningCenter(3) in training mode, called on x of shape (8, 3)", rtol=1e-5, atol=1e-6
        )

    def test_training_updates_the_running_mean_with_momentum(self, kata, device):
        m = kata.RunningCenter(3, momentum=0.25).to(device).train()
        a = seeded(4, 6, 3).to(device) + 2.0
        b = seeded(5, 6, 3).to(device) - 1.0
        m(a)
        m(b)
        expected = 0.75 * (0.25 * a.mean(0)) + 0.25 * b.mean(0)
        check_tensor(
            m.running_mean, expected,
            "RunningCenter(3, momentum=0.25).running_mean after two training batches a, b "
            "(expected 0.75 * (0.75 * 0 + 0.25 * mean(a)) + 0.25 * mean(b))",
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip

    def test_the_default_momentum_is_one_tenth(self, kata):
        m = kata.RunningCenter(3).train()
        a = seeded(16, 6, 3) + 3.0
        m(a)
        check_tensor(
            getattr(m, "running_mean", None), 0.1 * a.mean(0),
            "RunningCenter(3).running_mean after one training batch a with the default momentum "
            "(expected 0.9 * 0 + 0.1 * mean(a))",
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip

    def test_training_output_is_differentiable_through_the_batch_mean(self, kata):
        m = kata.RunningCenter(3).train()
        x = seeded(17, 5, 3).requires_grad_()
        weights = seeded(18, 5, 3)
        out = m(x)
        check(
            isinstance(out, torch.Tensor) and out.requires_grad,
            f"RunningCenter(3) in training mode, on an x that requires grad, returned {describe(out)}; expected a "
            "result that requires grad",
        )
        (out * weights).sum().backward()
        expected = weights - weights.mean(0)  # d/dx of sum(w * (x - mean(x)))
        check_tensor(
            x.grad, expected,
            "x.grad after backward from sum(w * RunningCenter(3)(x)) in training mode; expected w - w.mean(0): the "
            "gradient also flows through the batch mean (a mean computed without a graph gives w instead)",
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip

    @pytest.mark.parametrize("mode", ["train", "eval"])
    def test_x_is_left_unchanged(self, kata, mode):
        m = getattr(kata.RunningCenter(3), mode)()
        x = seeded(19, 4, 3) + 1.0
        before = x.clone()
        m(x)
        check(
            torch.equal(x, before),
            f"RunningCenter(3) in {mode} mode changed the caller's x: {describe(x)}; expected it left as it was, "
            f"{describe(before)} (an in-place operation on x writes into the caller's tensor)",
        )

    def test_eval_subtracts_the_running_mean_and_keeps_it(self, kata, device):
        m = kata.RunningCenter(3).to(device)
        with torch.no_grad():
            m.running_mean.copy_(torch.tensor([1.0, 2.0, 3.0]))
        m.eval()
        x = seeded(6, 4, 3).to(device)
        out = m(x)
        check_tensor(
            m.running_mean, torch.tensor([1.0, 2.0, 3.0], device=device),
            "RunningCenter.running_mean after a forward pass in eval mode (it must not change)",
        )  # fmt: skip
        check_tensor(
            out, x - torch.tensor([1.0, 2.0, 3.0], device=device),
            "RunningCenter(3) in eval mode with running_mean=[1, 2, 3], called on x of shape (4, 3)",
        )  # fmt: skip

    def test_the_buffer_keeps_no_autograd_history(self, kata):
        m = kata.RunningCenter(3).train()
        x = seeded(7, 5, 3).requires_grad_()
        m(x)
        got = m.running_mean
        check(
            isinstance(got, torch.Tensor) and got.grad_fn is None and not got.requires_grad,
            f"after a training forward pass on an x that requires grad, running_mean is {describe(got)} with grad_fn="
            f"{getattr(got, 'grad_fn', None)}; expected a plain tensor without history (update it under torch.no_grad())",
        )


@exercise("predict")
class TestPredict:
    def test_dropout_is_off_and_running_statistics_are_used(self, kata, device):
        model = trained_dropnorm().to(device).train()
        x = seeded(8, 5, 6).to(device)
        model.eval()
        with torch.no_grad():
            expected = model(x)
        model.train()
        torch.manual_seed(1)
        got = kata.predict(model, x)
        check_tensor(
            got, expected,
            "predict(model with BatchNorm and Dropout, in training mode, x of shape (5, 6)); expected the eval-mode "
            "output (dropout off, BatchNorm using its running statistics)",
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip

    def test_running_statistics_are_not_updated(self, kata):
        model = trained_dropnorm().train()
        before = {k: v.clone() for k, v in model.bn.state_dict().items()}
        kata.predict(model, seeded(9, 5, 6) * 10)
        changed = [k for k, v in model.bn.state_dict().items() if not torch.equal(v, before[k])]
        check(
            not changed,
            f"predict(model in training mode, x) changed the BatchNorm buffers {changed}; expected them untouched "
            "(in training mode BatchNorm updates its running statistics on every batch)",
        )

    def test_the_output_has_no_autograd_graph(self, kata):
        model = trained_dropnorm()
        got = kata.predict(model, seeded(10, 3, 6))
        check(
            isinstance(got, torch.Tensor) and not got.requires_grad and got.grad_fn is None,
            f"predict(model, x) returned {describe(got)} with grad_fn={getattr(got, 'grad_fn', None)}; "
            "expected no graph (run the forward pass under torch.no_grad())",
        )

    def test_the_forward_pass_records_no_graph(self, kata):
        # Detaching the output afterwards hides the graph, but it was built (and its memory spent) first.
        model = trained_dropnorm()
        saved = []

        def pack(t):
            saved.append(tuple(t.shape))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            kata.predict(model, seeded(23, 3, 6))
        check(
            not saved,
            f"predict(model, x) recorded an autograd graph during the forward pass (it saved {len(saved)} tensor(s) "
            "for a backward pass); expected the forward pass itself to run without recording, not only the "
            "result to come back detached",
        )

    def test_no_graph_even_when_x_requires_grad(self, kata):
        model = trained_dropnorm()
        x = seeded(20, 3, 6).requires_grad_()
        got = kata.predict(model, x)
        check(
            isinstance(got, torch.Tensor) and not got.requires_grad and got.grad_fn is None,
            f"predict(model, x that requires grad) returned {describe(got)} with grad_fn="
            f"{getattr(got, 'grad_fn', None)}; expected no graph",
        )
        grads = {n: describe(p.grad) for n, p in model.named_parameters() if p.grad is not None}
        check(x.grad is None and not grads, f"predict(model, x) filled .grad: x.grad={x.grad}, {grads}; expected none")

    def test_parameters_keep_their_requires_grad(self, kata):
        model = trained_dropnorm()
        model.bn.requires_grad_(False)  # a frozen BatchNorm: fc trains, bn does not
        before = {name: p.requires_grad for name, p in model.named_parameters()}
        kata.predict(model, seeded(21, 3, 6))
        got = {name: p.requires_grad for name, p in model.named_parameters()}
        check(
            got == before,
            f"after predict(model, x), the parameters' requires_grad flags are {got}; expected them as they were, "
            f"{before}",
        )

    @pytest.mark.parametrize("grad_enabled", [True, False], ids=["caller-records", "caller-under-no_grad"])
    def test_the_callers_grad_mode_is_kept(self, kata, grad_enabled):
        model = trained_dropnorm()
        with torch.set_grad_enabled(grad_enabled):
            kata.predict(model, seeded(22, 3, 6))
            got = torch.is_grad_enabled()
        check(
            got == grad_enabled,
            f"after predict(model, x) called with autograd recording {'on' if grad_enabled else 'off'}, recording is "
            f"{'on' if got else 'off'}; expected the caller's setting kept",
        )

    def test_a_training_model_goes_back_to_training(self, kata):
        model = trained_dropnorm().train()
        kata.predict(model, seeded(11, 3, 6))
        got = modes(model)
        check(
            all(got.values()),
            f"after predict(model in training mode, x), the modes (training=True) are {got}; expected all True",
        )

    def test_an_eval_model_stays_in_eval(self, kata):
        model = trained_dropnorm().eval()
        kata.predict(model, seeded(12, 3, 6))
        got = modes(model)
        check(
            not any(got.values()),
            f"after predict(model in eval mode, x), the modes (training=True) are {got}; expected all False",
        )

    def test_each_submodule_gets_its_own_mode_back(self, kata):
        model = trained_dropnorm().train()
        model.bn.eval()  # a frozen BatchNorm while fine-tuning the rest
        before = modes(model)
        kata.predict(model, seeded(13, 3, 6))
        got = modes(model)
        check(
            got == before,
            f"predict(model training with its BatchNorm frozen in eval mode, x) left the modes {got}; expected "
            f"{before}, each module as it was (model.train() at the end also un-freezes the BatchNorm)",
        )

    def test_modes_are_restored_when_the_forward_pass_raises(self, kata):
        model = nn.Sequential(nn.Dropout(0.5), Boom()).train()
        with pytest.raises(ValueError, match="boom"):
            kata.predict(model, torch.ones(2, 2))
        got = modes(model)
        check(
            all(got.values()),
            f"after predict(model, x) raised from the model's forward pass, the modes are {got}; expected all back "
            "to True, as they were before the call",
        )
        check(
            torch.is_grad_enabled(),
            "after predict(model, x) raised from the model's forward pass, autograd recording is off; expected it on, "
            "as it was before the call",
        )

    def test_requires_grad_is_kept_when_the_forward_pass_raises(self, kata):
        model = nn.Sequential(nn.Linear(2, 2), Boom())
        with pytest.raises(ValueError, match="boom"):
            kata.predict(model, torch.ones(2, 2))
        got = {name: p.requires_grad for name, p in model.named_parameters()}
        check(
            all(got.values()),
            f"after predict(model, x) raised from the model's forward pass, requires_grad is {got}; expected all True",
        )


@exercise("save_weights")
class TestSaveWeights:
    @pytest.mark.parametrize("as_str", [False, True], ids=["Path", "str"])
    def test_the_file_loads_with_weights_only(self, kata, tmp_path, as_str):
        path = tmp_path / "weights.pt"
        kata.save_weights(WithNorm(), str(path) if as_str else path)
        check(path.is_file(), f"save_weights(model, {'str' if as_str else 'Path'} path) wrote no file at that path")
        try:
            loaded = torch.load(path, weights_only=True)
            problem = ""
        except pickle.UnpicklingError as err:
            loaded, problem = None, str(err).split(".")[0]  # "Weights only load failed"
        check(
            not problem,
            f"torch.load(file written by save_weights, weights_only=True) failed: {problem}; expected a plain dict of "
            "tensors, which the safe loader accepts (the file holds a pickled object of another kind, such as the "
            "model itself)",
        )
        check(
            isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()),
            f"the file written by save_weights holds {describe(loaded)}; expected a dict of name -> tensor",
        )

    @pytest.mark.parametrize(
        "build", [trained_dropnorm, WithCache, Tied], ids=["batchnorm-buffers", "non-persistent-buffer", "tied-weights"]
    )
    def test_the_file_holds_exactly_the_state_dict_names(self, kata, tmp_path, build):
        model = build()
        path = tmp_path / "weights.pt"
        kata.save_weights(model, path)
        loaded = torch.load(path, weights_only=False)
        expected = sorted(model.state_dict())
        got = sorted(loaded) if isinstance(loaded, dict) else f"none: it holds a {type(loaded).__name__}, not a dict"
        check(
            got == expected,
            f"the file written by save_weights({build.__name__}()) has the names {got}; expected the state_dict's "
            f"{expected} (every parameter and persistent buffer under each of its names, nothing else)",
        )

    def test_the_saved_values_are_the_models(self, kata, tmp_path):
        model = trained_dropnorm()
        path = tmp_path / "weights.pt"
        kata.save_weights(model, path)
        loaded = torch.load(path, weights_only=False)
        check(
            isinstance(loaded, dict),
            f"the file written by save_weights holds a {type(loaded).__name__}; expected a dict",
        )
        for key, value in model.state_dict().items():
            check_tensor(loaded.get(key), value, f"the saved {key!r}")

    def test_the_model_is_left_as_it_was(self, kata, tmp_path):
        model = trained_dropnorm().train()
        model.bn.eval()
        before_modes = modes(model)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        flags = {name: p.requires_grad for name, p in model.named_parameters()}
        kata.save_weights(model, tmp_path / "weights.pt")
        check(
            modes(model) == before_modes,
            f"after save_weights(model, path) the modes are {modes(model)}; expected {before_modes}",
        )
        got = {name: p.requires_grad for name, p in model.named_parameters()}
        check(got == flags, f"after save_weights(model, path) requires_grad is {got}; expected {flags}")
        for key, value in model.state_dict().items():
            check_tensor(value, before[key], f"the model's {key!r} after save_weights(model, path)")


@exercise("load_weights")
class TestLoadWeights:
    def test_a_fresh_model_gives_the_same_outputs(self, kata, tmp_path, device):
        original = trained_dropnorm(seed=0).eval()
        path = tmp_path / "weights.pt"
        torch.save(original.state_dict(), path)
        fresh = trained_dropnorm(seed=1).to(device).eval()  # other weights and running statistics
        kata.load_weights(fresh, path)
        x = seeded(14, 5, 6).to(device)
        with torch.no_grad():
            out = fresh(x)
            expected = original.to(device)(x)  # the same device, so the same kernels
        check_tensor(out, expected, "a fresh model after load_weights(fresh, path), called on x", rtol=1e-5, atol=1e-6)

    def test_returns_the_model_itself(self, kata, tmp_path):
        path = tmp_path / "weights.pt"
        torch.save(nn.Linear(2, 2).state_dict(), path)
        model = nn.Linear(2, 2)
        got = kata.load_weights(model, path)
        check(got is model, f"load_weights(model, path) returned {describe(got)}; expected the model object itself")

    def test_the_models_own_tensors_receive_the_values(self, kata, tmp_path):
        original = trained_dropnorm(seed=0)
        path = tmp_path / "weights.pt"
        torch.save(original.state_dict(), path)
        fresh = DropNorm()
        objects = dict(fresh.named_parameters()) | dict(fresh.named_buffers())
        kata.load_weights(fresh, path)
        now = dict(fresh.named_parameters()) | dict(fresh.named_buffers())
        replaced = [name for name, t in objects.items() if now.get(name) is not t]
        check(
            not replaced,
            f"after load_weights(model, path), the model's {replaced} are new tensor objects; expected the values "
            "copied into the model's own parameters and buffers (an optimizer built on the model before loading "
            "still holds the old ones, and would train values the model no longer uses)",
        )
        for name, t in objects.items():
            check_tensor(t, original.state_dict()[name], f"the model's own {name!r} tensor after load_weights")

    def test_weights_saved_on_a_gpu_load_on_a_machine_without_one(self, kata, tmp_path, monkeypatch):
        original = trained_dropnorm(seed=0).eval()
        path = tmp_path / "gpu_weights.pt"
        with monkeypatch.context() as patch:  # write the file as if every tensor were on "cuda:0"
            patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
            torch.save(original.state_dict(), path)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # and load it where there is no GPU
        fresh = DropNorm().eval()
        kata.load_weights(fresh, path)
        for key, value in original.state_dict().items():
            check_tensor(
                fresh.state_dict()[key],
                value,
                f"after load_weights(model, checkpoint saved on a GPU), the model's {key!r}",
            )

    def test_the_buffers_are_loaded_too(self, kata, tmp_path):
        original = trained_dropnorm(seed=0)
        path = tmp_path / "weights.pt"
        torch.save(original.state_dict(), path)
        fresh = DropNorm()
        kata.load_weights(fresh, path)
        for key in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"):
            check_tensor(
                fresh.state_dict()[key], original.state_dict()[key], f"after load_weights, the model's {key!r}"
            )

    def test_a_checkpoint_with_missing_keys_is_refused(self, kata, tmp_path):
        path = tmp_path / "weights.pt"
        torch.save(nn.Sequential(nn.Linear(6, 8)).state_dict(), path)
        bigger = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 2))
        with pytest.raises(
            RuntimeError, match=r"Missing key\(s\) in state_dict"
        ):  # load_state_dict is strict by default
            kata.load_weights(bigger, path)

    def test_a_checkpoint_with_unexpected_keys_is_refused(self, kata, tmp_path):
        path = tmp_path / "weights.pt"
        torch.save(nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 2)).state_dict(), path)
        smaller = nn.Sequential(nn.Linear(6, 8))
        with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict"):
            kata.load_weights(smaller, path)

    def test_a_pickled_model_object_is_refused(self, kata, tmp_path):
        path = tmp_path / "model.pt"
        torch.save(DropNorm(), path)  # the whole object: loading it would unpickle (run) arbitrary code
        with pytest.raises(
            pickle.UnpicklingError, match="Weights only load failed"
        ):  # torch.load(..., weights_only=True)
            kata.load_weights(DropNorm(), path)
