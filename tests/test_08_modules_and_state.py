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
        check(
            sorted(got) == ["bias", "weight"],
            f"ScaleShift(3).named_parameters() gave the names {got}; expected ['weight', 'bias']. A tensor "
            "stored as a plain attribute (even with requires_grad=True) is not a parameter: wrap it in nn.Parameter.",
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

    def test_an_optimizer_step_changes_weight_and_bias(self, kata):
        m = kata.ScaleShift(3)
        params = list(m.parameters())
        check(
            len(params) == 2,
            f"list(ScaleShift(3).parameters()) holds {len(params)} tensors; expected 2 (weight and bias). "
            "torch.optim.SGD(module.parameters()) only ever updates what is in that list.",
        )
        before = {"weight": m.weight.detach().clone(), "bias": m.bias.detach().clone()}
        opt = torch.optim.SGD(params, lr=0.1)
        m(seeded(0, 5, 3)).pow(2).sum().backward()
        opt.step()
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

    def test_forward_is_linear_relu_linear(self, kata):
        torch.manual_seed(0)
        model = kata.make_mlp(4, 8, 2)
        x = seeded(1, 5, 4)
        w1, b1, w2, b2 = (
            model.state_dict()[k] for k in ("hidden.weight", "hidden.bias", "output.weight", "output.bias")
        )
        expected = torch.relu(x @ w1.T + b1) @ w2.T + b2
        check_tensor(model(x).detach(), expected, "make_mlp(4, 8, 2)(x of shape (5, 4))", rtol=1e-5, atol=1e-6)


@exercise("LayerStack")
class TestLayerStack:
    def test_every_layer_is_registered(self, kata):
        m = kata.LayerStack(4, 3)
        got = len(list(m.parameters()))
        check(
            got == 6,
            f"list(LayerStack(4, 3).parameters()) holds {got} tensors; expected 6 (a weight and a bias per layer). "
            "Layers in a plain Python list are not registered; nn.ModuleList registers them.",
        )

    def test_each_layer_has_its_own_weights(self, kata):
        m = kata.LayerStack(4, 3)
        layers = list(getattr(m, "layers", []))
        distinct = len({id(layer) for layer in layers})
        check(
            len(layers) == 3 and distinct == 3,
            f"LayerStack(4, 3).layers holds {len(layers)} entries but {distinct} distinct layer objects; expected 3 "
            "different nn.Linear layers ([nn.Linear(w, w)] * depth is one layer repeated)",
        )

    def test_state_dict_keys_are_numbered_under_layers(self, kata):
        got = list(kata.LayerStack(4, 2).state_dict())
        expected = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
        check(got == expected, f"LayerStack(4, 2).state_dict() has the keys {got}; expected {expected}")

    def test_to_moves_every_layer(self, kata):
        m = kata.LayerStack(4, 3).to(META)
        where = [str(p.device) for layer in getattr(m, "layers", []) for p in layer.parameters()]
        check(
            len(where) == 6 and set(where) == {"meta"},
            f"after LayerStack(4, 3).to('meta') its layers' parameters are on {where}; expected 6 tensors, all on 'meta'",
        )

    def test_forward_applies_linear_and_relu_layer_by_layer(self, kata, device):
        torch.manual_seed(0)
        m = kata.LayerStack(5, 3).to(device)
        x = seeded(2, 4, 5).to(device)
        expected = x
        for layer in m.layers:
            expected = torch.relu(expected @ layer.weight.T + layer.bias)
        check_tensor(m(x).detach(), expected.detach(), "LayerStack(5, 3)(x of shape (4, 5))", rtol=1e-5, atol=1e-6)


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
            "to True (restore them in a `finally:` block)",
        )


@exercise("save_weights")
class TestSaveWeights:
    def test_the_file_loads_with_weights_only(self, kata, tmp_path):
        path = tmp_path / "weights.pt"
        kata.save_weights(WithNorm(), path)
        try:
            loaded = torch.load(path, weights_only=True)
            problem = ""
        except pickle.UnpicklingError as err:
            loaded, problem = None, str(err).split(".")[0]  # "Weights only load failed"
        check(
            not problem,
            f"torch.load(file written by save_weights, weights_only=True) failed: {problem}; expected a plain dict of "
            "tensors. torch.save(model) pickles the model object itself; save model.state_dict().",
        )
        check(
            isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()),
            f"the file written by save_weights holds {describe(loaded)}; expected a dict of name -> tensor",
        )

    def test_the_file_holds_every_parameter_and_buffer(self, kata, tmp_path):
        model = trained_dropnorm()
        path = tmp_path / "weights.pt"
        kata.save_weights(model, path)
        loaded = torch.load(path, weights_only=False)
        expected = list(model.state_dict())
        got = list(loaded) if isinstance(loaded, dict) else f"none: it holds a {type(loaded).__name__}, not a dict"
        check(
            got == expected,
            f"the file written by save_weights has the keys {got}; expected the state_dict keys {expected} "
            "(the BatchNorm's running statistics are needed to reproduce the model's outputs)",
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

    def test_a_pickled_model_object_is_refused(self, kata, tmp_path):
        path = tmp_path / "model.pt"
        torch.save(DropNorm(), path)  # the whole object: loading it would unpickle (run) arbitrary code
        with pytest.raises(
            pickle.UnpicklingError, match="Weights only load failed"
        ):  # torch.load(..., weights_only=True)
            kata.load_weights(DropNorm(), path)
