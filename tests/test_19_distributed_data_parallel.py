"""Tests for kata 19, distributed data parallel: one class per exercise, in learning order.

The exercises run in every process of a group, so most tests start real ones: two processes
(ranks 0 and 1) on the CPU with `gloo`, and with `nccl` on two GPUs where a machine has them.
Starting a process that imports torch takes seconds and joining a group milliseconds, so the
two processes are started once for this file (on first use, from a fork server where the
platform has one, see `_context`) and every test sends them a *scenario*: a function of
this file, below, that runs the kata's code in a fresh process group and sends back what it
observed. The checks run here, in the test. A scenario's answers are kept, so the tests of one
class share one run and each reports its own outcome.

What a rank raises comes back as the test's failure, with its type, message and where it was
raised (an unfilled stub's NotImplementedError is raised again here, so it reports as TODO). A
rank that does not answer within DEADLINE seconds, or GRACE seconds after the other rank
failed (it waits in a collective the other rank never joins), fails the test and both processes
are replaced; they are shut down when the file's tests end, whatever happened.

References are computed here in one process: the same model, data and loss on the union of the
ranks' batches, sums and counts in float64, the indices of a data set.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import socket
import threading
import time
import traceback
from datetime import timedelta
from multiprocessing.connection import wait
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from dojo.loader import KataLoadError, load_kata
from dojo.testing import check, describe, exercise, value_mismatch

STEM = "19_distributed_data_parallel"
WORLD = 2
DEADLINE = 30.0  # seconds a scenario may take on both ranks (a few tenths when all is well)
GRACE = 3.0  # seconds the other rank may still take after one rank raised
GROUP_TIMEOUT = 10.0  # seconds a collective waits in the groups these tests make themselves

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
RANK_DEVICES = [
    pytest.param("cpu", id="cpu", marks=pytest.mark.cpu),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(GPUS < 2, reason=f"nccl needs two CUDA GPUs, one per process; this machine has {GPUS}"),
        ],
    ),
]
ONE_DEVICE = [
    pytest.param("cpu", id="cpu", marks=pytest.mark.cpu),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(GPUS < 1, reason="CUDA is not available on this machine")],
    ),
]


# ---------------------------------------------------------------- the two ranks

# What a rank process runs: this file, loaded by its path (a test module need not be
# importable by name), then serve(). `exec` is the target so that nothing but its code string
# and arguments must be pickled.
BOOT = """
import importlib.util
spec = importlib.util.spec_from_file_location("kata19_ranks", tests_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.serve(conn, folder)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _context():
    """Where the platform has it, a fork server: one clean process, started once per test run,
    that imports torch (and the compiler modules DDP's constructor imports) once; each pair of
    ranks is then forked from it in milliseconds, where spawn imports torch again in each
    (seconds, for every run of this file and for every decoy `dojo check` tries). Forking the
    test process itself would be as fast but unsafe: it may hold threads and locks from earlier
    tests (a rank then hangs in its first backward), or CUDA, which a forked child cannot use."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "torch.distributed", "torch.nn.parallel", "torch._dynamo"])
        return ctx
    return mp.get_context("spawn")


class Ranks:
    """Two processes that run scenarios against the kata file of `folder` (--impl)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list = []
        self.conns: list = []
        self.answers: dict = {}

    def _start(self) -> None:
        ctx = _context()
        for rank in range(WORLD):
            parent, child = ctx.Pipe()
            args = (BOOT, {"conn": child, "tests_file": __file__, "folder": str(self.folder)})
            proc = ctx.Process(target=exec, args=args, name=f"kata19-rank{rank}")
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send_bytes(pickle.dumps(None))
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []

    def run(self, scenario: str, device: str = "cpu", **kwargs) -> list:
        """The answers of both ranks to `scenario`: [value of rank 0, value of rank 1]. Raises
        what a rank raised (the first one to fail), or fails the test if a rank hangs or dies."""
        key = (scenario, device, tuple(sorted(kwargs.items())))
        if key not in self.answers:
            self.answers[key] = self._run(scenario, device, kwargs)
        answers = self.answers[key]
        errors = [a["error"] for a in answers if "error" in a]
        # A rank's own exception first: a peer's closed connection, time-out or hang follows from it.
        errors.sort(key=lambda e: ("lost" in e, _knock_on(e.get("message", "")), e.get("time", 0.0)))
        if errors:
            finished = [rank for rank, a in enumerate(answers) if "ok" in a]
            _raise(errors[0], scenario, finished)
        return [answer["ok"] for answer in answers]

    def _run(self, scenario: str, device: str, kwargs: dict) -> list:
        if not self.procs:
            self._start()
        ports = [_free_port() for _ in range(3)]
        for rank, conn in enumerate(self.conns):
            conn.send_bytes(pickle.dumps((scenario, rank, ports, device, kwargs)))
        answers: list = [None] * WORLD
        deadline = time.monotonic() + DEADLINE
        pending = dict(enumerate(self.conns))
        while pending:
            ready = wait(list(pending.values()), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            for rank, conn in list(pending.items()):
                if conn in ready:
                    del pending[rank]
                    try:
                        answers[rank] = pickle.loads(conn.recv_bytes())
                    except (EOFError, OSError):
                        self.procs[rank].join(timeout=5)
                        code = self.procs[rank].exitcode
                        died = (
                            f"rank {rank} of {WORLD}: its process died (exit code {code}) while running the kata's code"
                        )
                        answers[rank] = {"error": {"lost": died, "rank": rank}}
                    if "error" in answers[rank]:
                        deadline = min(deadline, time.monotonic() + GRACE)
        lost = any(a and "lost" in a.get("error", {}) for a in answers)
        if pending:
            waited = (
                "after the other rank failed"
                if any(a and "error" in a for a in answers)
                else f"within {DEADLINE:.0f} s"
            )
            for rank in pending:
                hung = (
                    f"rank {rank} of {WORLD} did not finish {waited}: it waits for something the other rank never "
                    "does (a collective or a barrier that only one rank reaches, or a process group that never forms)"
                )
                answers[rank] = {"error": {"lost": hung, "rank": rank}}
        if pending or lost:
            self._kill()  # the next scenario starts two fresh processes
        return answers

    def _kill(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []


def _knock_on(message: str) -> bool:
    """Whether an error reads like the consequence of another rank's: a connection it closed, a
    collective it never joined."""
    return any(words in message for words in ("Connection closed", "Connection reset", "imed out", "timeout"))


def _raise(error: dict, scenario: str, finished: list[int]) -> None:
    """Fail the test with what went wrong in a rank: what it raised (the type, the message and
    where, in the kata's file), or that it hung or died."""
    __tracebackhide__ = True
    if "lost" in error:
        pytest.fail(f"{error['lost']} (scenario {scenario} of {Path(__file__).name})", pytrace=False)
    if error["type"] == "NotImplementedError":
        raise NotImplementedError(error["message"])  # an unfilled stub's message: reported as TODO
    where = f"\n{error['trace']}" if error.get("trace") else ""
    note = ""
    if finished and _knock_on(error["message"]):
        others = ", ".join(map(str, finished))
        note = (
            f"\n(rank {others} finished without an error: a collective, such as a barrier, that only some "
            "ranks reach waits for ranks that never come)"
        )
    message = f"rank {error['rank']} of {WORLD} raised {error['type']}: {error['message']}{where}{note}"
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="module")
def ranks(impl_folder):
    pool = Ranks(impl_folder)
    yield pool
    pool.close()


# ---------------------------------------------------------------- in the rank processes


def serve(conn, folder: str) -> None:
    """A rank's loop: receive (scenario, rank, ports, device, kwargs), answer {"ok": what it
    observed} or {"error": what was raised}, until told to stop or the test run goes away."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        kata = load_kata(Path(folder), STEM)
    except KataLoadError as err:
        kata = err
    while True:
        try:
            job = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            job = None
        if job is None:
            # Nothing left to send, and nothing to tidy (the groups are gone): skip the seconds
            # an interpreter that imported torch's compiler takes to shut down.
            os._exit(0)
        scenario, rank, ports, device, kwargs = job
        os.environ.update(
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(ports[0]),
            RANK=str(rank),
            WORLD_SIZE=str(WORLD),
            LOCAL_RANK=str(rank),
        )
        try:
            if isinstance(kata, Exception):
                raise kata
            answer = {"ok": SCENARIOS[scenario](kata, rank, ports, device, **kwargs)}
        except BaseException as err:  # noqa: BLE001 - whatever the kata raises goes back to the test
            answer = {"error": _error_record(err, rank, folder)}
        finally:
            if dist.is_initialized():  # a group the kata's code left behind
                with contextlib.suppress(Exception):
                    dist.destroy_process_group()
        conn.send_bytes(pickle.dumps(answer))


def _exit_with_parent(parent: int) -> None:
    """End this process when the test run that started it is gone, even while the kata's code
    is stuck in a collective (a group made with the default timeout waits for half an hour)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _error_record(err: BaseException, rank: int, folder: str) -> dict:
    frames = traceback.extract_tb(err.__traceback__)
    kata_file = str(Path(folder) / f"{STEM}.py")
    own = [f for f in frames if f.filename == kata_file]
    shown = (own or frames[-1:])[-3:]
    trace = "\n".join(f"  {Path(f.filename).name}, line {f.lineno}, in {f.name}: {f.line}" for f in shown)
    return {"type": type(err).__name__, "message": str(err), "trace": trace, "rank": rank, "time": time.time()}


def _device(rank: int, kind: str) -> torch.device:
    return torch.device("cuda", rank) if kind == "cuda" else torch.device("cpu")


@contextlib.contextmanager
def _group(rank: int, port: int, kind: str):
    """The tests' own process group (not the kata's process_group), with a short timeout."""
    import torch.distributed as dist

    if kind == "cuda":
        torch.cuda.set_device(rank)
    dist.init_process_group(
        "nccl" if kind == "cuda" else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD,
        timeout=timedelta(seconds=GROUP_TIMEOUT),
    )
    try:
        yield _device(rank, kind)
    finally:
        dist.destroy_process_group()


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))


def _batch(seed: int, n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(n, 2, generator=g)


def _indices(n: int) -> TensorDataset:
    """A data set whose item i is (tensor(i), tensor(-i)): an index read back from a batch."""
    return TensorDataset(torch.arange(n), -torch.arange(n))


def _order(loader) -> list[int]:
    return [int(i) for batch in loader for i in batch[0]]


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().cpu().clone() for p in model.parameters()]


def _ddp(model: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def scenario_process_group(kata, rank, ports, kind, local_rank_zero=False):
    import torch.distributed as dist

    backend = "nccl" if kind == "cuda" else "gloo"
    if local_rank_zero:  # one process on each of two machines: LOCAL_RANK 0 everywhere
        os.environ["LOCAL_RANK"] = "0"
    seen = {}
    with kata.process_group(backend) as got:
        seen["yielded"] = got if isinstance(got, tuple) else repr(got)
        seen["types"] = [type(v).__name__ for v in got] if isinstance(got, tuple) else []
        seen["inside"] = dist.is_initialized()
        t = torch.tensor([rank + 1.0], device=_device(rank, kind))
        dist.all_reduce(t)
        seen["sum"] = t.item()
        seen["current"] = torch.cuda.current_device() if kind == "cuda" else None
    seen["after"] = dist.is_initialized()
    if local_rank_zero:
        return seen
    os.environ["MASTER_PORT"] = str(ports[1])  # a new meeting point: the first one may still be closing
    marker = RuntimeError(f"raised inside the block on rank {rank}")
    try:
        with kata.process_group(backend):
            raise marker
    except BaseException as err:  # noqa: BLE001
        seen["raised"] = f"{type(err).__name__}: {err}" if err is not marker else "the same exception"
    else:
        seen["raised"] = None
    seen["after_raise"] = dist.is_initialized()
    return seen


def scenario_loader(kata, rank, ports, kind):
    seen = {}
    with _group(rank, ports[0], kind):
        for n, seed in [(16, 7), (16, 8), (13, 7)]:
            loader = kata.distributed_loader(_indices(n), 3, seed, 0)
            seen[n, seed] = {
                "order": _order(loader),
                "batches": [len(b[0]) for b in loader],
                "sampler_len": len(loader.sampler),
            }
        seen["again"] = _order(kata.distributed_loader(_indices(16), 3, 7, 0))
        seen["num_workers"] = kata.distributed_loader(_indices(16), 3, 7, 2).num_workers
    return seen


def _sampled_loader(n: int, seed: int) -> DataLoader:
    data = _indices(n)
    return DataLoader(data, batch_size=4, sampler=DistributedSampler(data, shuffle=True, seed=seed))


def scenario_begin_epoch(kata, rank, ports, kind):
    seen = {}
    with _group(rank, ports[0], kind):
        loader = _sampled_loader(16, 3)
        for epoch in range(3):
            kata.begin_epoch(loader, epoch)
            seen["epoch", epoch] = _order(loader)
        kata.begin_epoch(loader, 1)
        seen["again", 1] = _order(loader)
        fresh = _sampled_loader(16, 3)
        kata.begin_epoch(fresh, 2)
        seen["fresh", 2] = _order(fresh)
        other = _sampled_loader(16, 4)
        kata.begin_epoch(other, 1)
        seen["seed 4", 1] = _order(other)
    return seen


def scenario_wrap(kata, rank, ports, kind):
    with _group(rank, ports[0], kind) as device:
        model = _model(100 + rank).to(device)  # different on each rank before wrapping
        wrapped = kata.wrap_model(model, device)
        seen = {"after_wrap": _params(model), "is_module": isinstance(wrapped, nn.Module)}
        x, y = (t.to(device) for t in _batch(200 + rank))
        with torch.no_grad():
            seen["output"] = wrapped(x).cpu()
            seen["model_output"] = model(x).cpu()
        optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.5)
        nn.functional.mse_loss(wrapped(x), y).backward()
        optimizer.step()
        seen["after_step"] = _params(model)
    return seen


def scenario_accumulate(kata, rank, ports, kind):
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    with _group(rank, ports[0], kind) as device:
        model = _model(0).to(device)
        wrapped = _ddp(model, device)
        calls = []

        def counting(state, bucket):
            calls.append(1)
            return default_hooks.allreduce_hook(state, bucket)

        wrapped.register_comm_hook(None, counting)
        x, y = (t.to(device) for t in _batch(1))  # one plain backward: how many all-reduces one sync takes
        nn.functional.mse_loss(wrapped(x), y).backward()
        seen = {"per_sync": len(calls)}
        for k in (3, 1):
            model.zero_grad(set_to_none=True)
            calls.clear()
            micro = [tuple(t.to(device) for t in _batch(300 + 10 * rank + j)) for j in range(k)]
            got = kata.accumulate_gradients(wrapped, micro, nn.functional.mse_loss)
            seen[k] = {
                "returned": got if isinstance(got, float) else describe(got),
                "float": isinstance(got, float),
                "calls": len(calls),
                "grads": [None if p.grad is None else p.grad.detach().cpu().clone() for p in model.parameters()],
            }
    return seen


GLOBAL_MEAN_CASES = {
    # id: ((total, count) of rank 0, (total, count) of rank 1), what one process would compute
    "ragged": (((10.0, 4), (2.0, 1)), 12.0 / 5),
    "equal_shards": (((1.5, 3), (4.5, 3)), 1.0),
    "int_totals": (((3, 4), (1, 1)), 4 / 5),
    "large_total": (((16777217.0, 1), (0.0, 1)), 16777217.0 / 2),  # 2**24 + 1: not a float32
    "empty_rank": (((5.0, 2), (0.0, 0)), 2.5),
}


def scenario_global_mean(kata, rank, ports, kind, case):
    with _group(rank, ports[0], kind) as device:
        total, count = GLOBAL_MEAN_CASES[case][0][rank]
        got = kata.global_mean(total, count, device)
    return {"value": got if isinstance(got, float) else describe(got), "float": isinstance(got, float)}


class _SlowToPickle:
    """An extra entry of a checkpoint that takes half a second to write: a rank that reads the
    file without waiting for the writer finds it missing or incomplete."""

    def __reduce__(self):
        time.sleep(0.5)
        return (str, ("slow",))


def scenario_save(kata, rank, ports, kind, folder):
    import torch.distributed as dist

    folder = Path(folder)
    seen = {}
    with _group(rank, ports[0], kind) as device:
        model = _model(5).to(device)
        wrapped = _ddp(model, device)
        path = folder / "shared.pt"
        kata.save_on_rank0(path, wrapped, epoch=3, note="hello", slow=_SlowToPickle())
        try:  # at once: the file must be complete when the call returns, on every rank
            state = torch.load(path, map_location="cpu", weights_only=False)
            seen["read"] = None
        except Exception as err:  # noqa: BLE001
            seen["read"] = f"{type(err).__name__}: {str(err)[:200]}"
            state = None
        if state is not None:
            seen["keys"] = sorted(state) if isinstance(state, dict) else describe(state)
            seen["epoch"] = state.get("epoch") if isinstance(state, dict) else None
            saved = state.get("model") if isinstance(state, dict) else None
            seen["model_keys"] = sorted(saved) if isinstance(saved, dict) else describe(saved)
            plain = _model(6)
            try:
                plain.load_state_dict(saved)
                seen["load_plain"] = None
                seen["same_values"] = all(
                    not value_mismatch(a, b) for a, b in zip(_params(plain), _params(model), strict=True)
                )
            except Exception as err:  # noqa: BLE001
                seen["load_plain"] = f"{type(err).__name__}: {str(err)[:300]}"
        own = folder / f"own-{rank}.pt"  # each rank names its own file: only rank 0's may appear
        kata.save_on_rank0(own, wrapped, epoch=4)
        seen["own_exists"] = own.exists()
        dist.barrier()  # both calls done on every rank: what the folder holds now is all that was written
        seen["files"] = sorted(p.name for p in folder.iterdir())
    return seen


def scenario_load(kata, rank, ports, kind, path):
    with _group(rank, ports[0], kind) as device:
        state = kata.load_on_every_rank(path, device)
    return _summary(state)


def _summary(state) -> dict:
    if not isinstance(state, dict):
        return {"type": describe(state)}
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    return {
        "keys": sorted(state),
        "devices": {k: str(v.device) for k, v in tensors.items()},
        "values": {k: v.cpu() for k, v in tensors.items()},
        "other": {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)},
    }


SCENARIOS = {
    "process_group": scenario_process_group,
    "loader": scenario_loader,
    "begin_epoch": scenario_begin_epoch,
    "wrap": scenario_wrap,
    "accumulate": scenario_accumulate,
    "global_mean": scenario_global_mean,
    "save": scenario_save,
    "load": scenario_load,
}


# ---------------------------------------------------------------- helpers of the checks


def _same(got: list[torch.Tensor], expected: list[torch.Tensor]) -> str:
    """ "" if two lists of tensors agree (float32 tolerances), else what differs."""
    if len(got) != len(expected):
        return f"{len(got)} tensors instead of {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        if g is None:
            return f"tensor {i} is None"
        if g.shape != e.shape:
            return f"tensor {i} has shape {tuple(g.shape)} instead of {tuple(e.shape)}"
        mismatch = value_mismatch(g, e, rtol=1e-5, atol=1e-6)
        if mismatch:
            return f"tensor {i}: {mismatch}"
    return ""


def _shards_problem(orders: list[list[int]], n: int) -> str:
    """ "" if the ranks' index lists are disjoint, without repeats, and cover range(n)."""
    for rank, order in enumerate(orders):
        if len(set(order)) != len(order):
            return f"rank {rank} sees some samples twice in one pass: {order}"
    common = set(orders[0]) & set(orders[1])
    if common:
        return f"ranks 0 and 1 both see samples {sorted(common)} (rank 0: {orders[0]}, rank 1: {orders[1]})"
    missing = set(range(n)) - set(orders[0]) - set(orders[1])
    if missing:
        return f"no rank sees samples {sorted(missing)} (rank 0: {orders[0]}, rank 1: {orders[1]})"
    return ""


# ---------------------------------------------------------------- process_group


@exercise("process_group")
class TestProcessGroup:
    @pytest.mark.parametrize("device", RANK_DEVICES)
    def test_each_rank_gets_its_rank_and_the_world_size_as_ints(self, kata, ranks, device):
        for rank, seen in enumerate(ranks.run("process_group", device)):
            check(
                seen["yielded"] == (rank, WORLD) and seen["types"] == ["int", "int"],
                f"with process_group(backend) as got: on rank {rank} of {WORLD} (RANK={rank}, WORLD_SIZE={WORLD}), got "
                f"{seen['yielded']!r} (types {seen['types']}); expected the tuple ({rank}, {WORLD}) of two ints. Hint 2",
            )

    def test_the_rank_comes_from_RANK_not_LOCAL_RANK(self, kata, ranks):
        for rank, seen in enumerate(ranks.run("process_group", "cpu", local_rank_zero=True)):
            check(
                seen["yielded"] == (rank, WORLD),
                f"one process on each of two machines (RANK={rank}, LOCAL_RANK=0 on both): process_group gave "
                f"{seen['yielded']!r} on rank {rank}; expected ({rank}, {WORLD}): LOCAL_RANK numbers the processes "
                "of one machine only. Hint 2",
            )

    @pytest.mark.parametrize("device", RANK_DEVICES)
    def test_the_ranks_can_all_reduce_inside_the_block(self, kata, ranks, device):
        for rank, seen in enumerate(ranks.run("process_group", device)):
            check(
                seen["inside"] and seen["sum"] == 3.0,
                f"inside process_group's block on rank {rank}: a group is initialised: {seen['inside']}; the "
                f"all-reduce of rank + 1 over {WORLD} ranks gave {seen['sum']}; expected True and 3.0",
            )

    @pytest.mark.parametrize("device", RANK_DEVICES)
    def test_the_group_is_torn_down_after_the_block(self, kata, ranks, device):
        for rank, seen in enumerate(ranks.run("process_group", device)):
            check(
                not seen["after"],
                f"after the with process_group(...) block on rank {rank}, the default process group is still "
                "initialised; expected it torn down (a second group could not be made). Hint 2",
            )

    @pytest.mark.parametrize("device", RANK_DEVICES)
    def test_an_exception_in_the_block_reaches_the_caller_and_the_group_is_torn_down(self, kata, ranks, device):
        for rank, seen in enumerate(ranks.run("process_group", device)):
            check(
                seen["raised"] == "the same exception",
                f"a RuntimeError raised inside process_group's block on rank {rank} came out as: {seen['raised']}; "
                "expected the same exception, unchanged (not swallowed, not replaced)",
            )
            check(
                not seen["after_raise"],
                f"after a block that raised, on rank {rank}, the default process group is still initialised; "
                "expected it torn down even then. Hint 2",
            )

    @pytest.mark.parametrize("device", [p for p in RANK_DEVICES if p.id == "cuda"])
    def test_with_nccl_each_process_drives_the_gpu_of_its_local_rank(self, kata, ranks, device):
        for rank, seen in enumerate(ranks.run("process_group", device)):
            check(
                seen["current"] == rank,
                f"inside process_group('nccl') with LOCAL_RANK={rank}, the current CUDA device is {seen['current']}; "
                f"expected {rank}: otherwise every process of a machine uses GPU 0. Hint 2",
            )


# ---------------------------------------------------------------- distributed_loader


@exercise("distributed_loader")
class TestDistributedLoader:
    def test_the_shards_are_disjoint_and_cover_the_data_set(self, kata, ranks):
        seen = ranks.run("loader")
        orders = [s[16, 7]["order"] for s in seen]
        problem = _shards_problem(orders, 16)
        check(
            not problem,
            f"distributed_loader(16 samples, batch_size=3, seed=7) on {WORLD} ranks, one pass: {problem}; expected "
            "disjoint shards that together hold every sample once. Hint 1",
        )

    def test_every_rank_gets_as_many_batches_and_no_sample_is_left_out(self, kata, ranks):
        seen = ranks.run("loader")
        orders = [s[13, 7]["order"] for s in seen]
        batches = [s[13, 7]["batches"] for s in seen]
        check(
            len(batches[0]) == len(batches[1]),
            f"distributed_loader(13 samples, batch_size=3) on {WORLD} ranks gave rank 0 {len(batches[0])} batches "
            f"and rank 1 {len(batches[1])}; expected as many on every rank (the rank with one batch more would wait "
            "forever for the others to average its gradients). Hint 2",
        )
        missing = set(range(13)) - set(orders[0]) - set(orders[1])
        check(
            not missing,
            f"distributed_loader(13 samples, batch_size=3) on {WORLD} ranks: no rank sees samples {sorted(missing)} "
            f"(rank 0: {orders[0]}, rank 1: {orders[1]}); expected every sample in every pass. Hint 2",
        )

    def test_each_shard_is_shuffled_and_the_order_depends_on_the_seed(self, kata, ranks):
        seen = ranks.run("loader")
        for rank, s in enumerate(seen):
            order = s[16, 7]["order"]
            check(
                order != sorted(order),
                f"distributed_loader(16 samples, seed=7) on rank {rank} gives its samples in index order: {order}; "
                "expected them shuffled. Hint 2",
            )
        by_seed = {seed: [s[16, seed]["order"] for s in seen] for seed in (7, 8)}
        check(
            by_seed[7] != by_seed[8],
            f"distributed_loader(16 samples) gives the same order with seed 7 and seed 8: {by_seed[7]}; expected "
            "the order to depend on the seed. Hint 2",
        )

    def test_the_same_seed_gives_the_same_order_in_a_new_loader(self, kata, ranks):
        for rank, s in enumerate(ranks.run("loader")):
            check(
                s["again"] == s[16, 7]["order"],
                f"two loaders made by distributed_loader(16 samples, batch_size=3, seed=7) on rank {rank} gave the "
                f"orders {s[16, 7]['order']} and {s['again']}; expected the same: the seed alone decides the order "
                "(that is what makes every rank agree on one permutation). Hint 2",
            )

    def test_batches_hold_batch_size_samples(self, kata, ranks):
        for rank, s in enumerate(ranks.run("loader")):
            sizes = s[16, 7]["batches"]
            check(
                sizes[:-1] and all(b == 3 for b in sizes[:-1]) and 0 < sizes[-1] <= 3 and sum(sizes) == 8,
                f"distributed_loader(16 samples, batch_size=3) on rank {rank} of {WORLD} gave batches of {sizes} "
                "samples; expected batches of 3 (the last one may be smaller), 8 samples in all",
            )

    def test_len_of_the_sampler_is_the_number_of_samples_this_rank_sees(self, kata, ranks):
        for rank, s in enumerate(ranks.run("loader")):
            for key in [(16, 7), (13, 7)]:
                got, seen = s[key]["sampler_len"], len(s[key]["order"])
                check(
                    got == seen,
                    f"distributed_loader({key[0]} samples) on rank {rank}: len(loader.sampler) is {got}, but a pass "
                    f"gives {seen} samples; expected them equal (dojo train counts the samples so)",
                )

    def test_uses_the_given_number_of_workers(self, kata, ranks):
        for rank, s in enumerate(ranks.run("loader")):
            check(
                s["num_workers"] == 2,
                f"distributed_loader(..., num_workers=2) on rank {rank} gave a loader with num_workers="
                f"{s['num_workers']}; expected 2",
            )


# ---------------------------------------------------------------- begin_epoch


@exercise("begin_epoch")
class TestBeginEpoch:
    def test_each_epoch_has_its_own_order(self, kata, ranks):
        seen = ranks.run("begin_epoch")
        orders = {epoch: [s["epoch", epoch] for s in seen] for epoch in range(3)}
        for a, b in [(0, 1), (1, 2), (0, 2)]:
            check(
                orders[a] != orders[b],
                f"after begin_epoch(loader, {a}) and begin_epoch(loader, {b}), one pass over the loader gave the "
                f"same order both times (ranks 0 and 1: {orders[a]}); expected every epoch shuffled its own way. Hint 1",
            )

    def test_the_same_epoch_gives_the_same_order_again_and_in_a_new_loader(self, kata, ranks):
        for rank, s in enumerate(ranks.run("begin_epoch")):
            check(
                s["again", 1] == s["epoch", 1],
                f"on rank {rank}, begin_epoch(loader, 1) gave the order {s['epoch', 1]} the first time and "
                f"{s['again', 1]} when called again; expected the same order: an epoch is reproducible. Hint 2",
            )
            check(
                s["fresh", 2] == s["epoch", 2],
                f"on rank {rank}, a new loader with the same seed after begin_epoch(new, 2) gave {s['fresh', 2]}; "
                f"the first loader's epoch 2 was {s['epoch', 2]}; expected the same (a resumed run must see the epoch "
                "the original run would have seen). Hint 2",
            )

    def test_the_order_still_depends_on_the_seed(self, kata, ranks):
        seen = ranks.run("begin_epoch")
        seed3, seed4 = [s["epoch", 1] for s in seen], [s["seed 4", 1] for s in seen]
        check(
            seed3 != seed4,
            f"at epoch 1, loaders with seeds 3 and 4 gave the same order {seed3} after begin_epoch; expected the "
            "order to depend on the seed and the epoch. Hint 2",
        )

    def test_the_shards_stay_disjoint_in_every_epoch(self, kata, ranks):
        seen = ranks.run("begin_epoch")
        for epoch in range(3):
            problem = _shards_problem([s["epoch", epoch] for s in seen], 16)
            check(
                not problem,
                f"after begin_epoch(loader, {epoch}) on both ranks: {problem}; expected disjoint shards of one "
                "permutation (every rank must shuffle the same way). Hint 2",
            )


# ---------------------------------------------------------------- eval_shard

EVAL_SIZES = [(10, 2), (11, 2), (7, 3), (11, 4), (5, 1), (1, 2)]


@exercise("eval_shard")
class TestEvalShard:
    @pytest.mark.parametrize(("n", "world"), EVAL_SIZES, ids=[f"{n}_items_{w}_ranks" for n, w in EVAL_SIZES])
    def test_the_parts_hold_every_item_exactly_once(self, kata, n, world):
        data = _indices(n)
        parts = []
        for rank in range(world):
            part = kata.eval_shard(data, rank, world)
            read = [int(i) for batch in DataLoader(part, batch_size=4) for i in batch[0]]
            check(
                len(part) == len(read),
                f"eval_shard({n} items, rank={rank}, world={world}) has len {len(part)} but gives {len(read)} items",
            )
            parts.append(read)
        counts = {i: sum(p.count(i) for p in parts) for i in range(n)}
        twice = sorted(i for i, c in counts.items() if c > 1)
        missing = sorted(i for i, c in counts.items() if c == 0)
        check(
            not twice and not missing and sum(len(p) for p in parts) == n,
            f"eval_shard({n} items, rank, world={world}) for ranks 0..{world - 1} gave the items {parts}; items "
            f"counted more than once: {twice}, missing: {missing}; expected every item exactly once (repeated "
            "samples bias the accuracy). Hint 1",
        )

    def test_items_are_the_data_sets_own(self, kata):
        data = _indices(9)
        for rank in range(2):
            part = kata.eval_shard(data, rank, 2)
            for j in range(len(part)):
                x, y = part[j]
                check(
                    isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and int(y) == -int(x),
                    f"eval_shard(data, {rank}, 2)[{j}] is {describe((x, y))}; expected an item of the data set, "
                    "as data[i] gives it: (tensor(i), tensor(-i))",
                )


# ---------------------------------------------------------------- wrap_model


def _one_step_reference() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Rank 0's initial parameters, and those after one SGD step on both ranks' batches."""
    model = _model(100)
    start = _params(model)
    batches = [_batch(200 + rank) for rank in range(WORLD)]
    loss = sum(nn.functional.mse_loss(model(x), y) for x, y in batches) / WORLD
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * p.grad
    return start, _params(model)


@exercise("wrap_model")
@pytest.mark.parametrize("device", RANK_DEVICES)
class TestWrapModel:
    def test_every_rank_starts_from_rank_0s_parameters(self, kata, ranks, device):
        start, _ = _one_step_reference()
        for rank, seen in enumerate(ranks.run("wrap", device)):
            problem = _same(seen["after_wrap"], start)
            check(
                not problem,
                f"each rank made its model with its own seed, then called wrap_model(model, device); on rank {rank} "
                f"the model's parameters are not rank 0's: {problem}. Expected every copy to start from rank 0's "
                "(and the caller's model to be the one wrapped, not a copy). Hint 2",
            )

    def test_the_forward_is_the_models(self, kata, ranks, device):
        for rank, seen in enumerate(ranks.run("wrap", device)):
            check(seen["is_module"], f"wrap_model(...) on rank {rank} did not return an nn.Module")
            problem = value_mismatch(seen["output"], seen["model_output"])
            check(not problem, f"on rank {rank}, wrap_model(model, device)(x) differs from model(x): {problem}")

    def test_one_step_leaves_every_rank_with_the_parameters_of_one_step_on_all_batches(self, kata, ranks, device):
        _, after = _one_step_reference()
        for rank, seen in enumerate(ranks.run("wrap", device)):
            problem = _same(seen["after_step"], after)
            check(
                not problem,
                f"after one SGD step through wrap_model(model, device) on different batches per rank, the model of "
                f"rank {rank} is not the model of one step on both batches together: {problem}. Expected the "
                "gradients averaged over the ranks, and the caller's model trained. Hint 2",
            )


# ---------------------------------------------------------------- accumulate_gradients


def _accumulation_reference(k: int) -> tuple[list[torch.Tensor], list[float]]:
    """The gradients of the mean loss over all ranks' micro-batches, and each rank's mean loss."""
    model = _model(0)
    losses = [
        [nn.functional.mse_loss(model(x), y) for x, y in (_batch(300 + 10 * r + j) for j in range(k))]
        for r in range(WORLD)
    ]
    total = sum(sum(per_rank) for per_rank in losses) / (k * WORLD)
    total.backward()
    return [p.grad.clone() for p in model.parameters()], [float(sum(per_rank).detach() / k) for per_rank in losses]


@exercise("accumulate_gradients")
@pytest.mark.parametrize("device", RANK_DEVICES)
@pytest.mark.parametrize("k", [3, 1], ids=["3_micro_batches", "1_micro_batch"])
class TestAccumulateGradients:
    def test_the_gradients_are_those_of_the_whole_global_batch_on_every_rank(self, kata, ranks, device, k):
        grads, _ = _accumulation_reference(k)
        for rank, seen in enumerate(ranks.run("accumulate", device)):
            problem = _same(seen[k]["grads"], grads)
            check(
                not problem,
                f"after accumulate_gradients(wrapped, {k} micro-batches, mse_loss) on rank {rank}, the parameters' "
                f".grad is not the gradient of the mean loss over all ranks' micro-batches: {problem}. Hint 2",
            )

    def test_the_gradients_cross_the_network_once_per_call(self, kata, ranks, device, k):
        for rank, seen in enumerate(ranks.run("accumulate", device)):
            check(
                seen[k]["calls"] == seen["per_sync"],
                f"accumulate_gradients(wrapped, {k} micro-batches, ...) on rank {rank} all-reduced gradient buckets "
                f"{seen[k]['calls']} times; one averaging of the gradients takes {seen['per_sync']}; expected one "
                "averaging per call, after the last micro-batch. Hint 1",
            )

    def test_returns_this_ranks_mean_loss_as_a_float(self, kata, ranks, device, k):
        _, losses = _accumulation_reference(k)
        for rank, seen in enumerate(ranks.run("accumulate", device)):
            got = seen[k]["returned"]
            check(
                seen[k]["float"] and abs(got - losses[rank]) <= 1e-5 * max(1.0, abs(losses[rank])),
                f"accumulate_gradients(wrapped, {k} micro-batches, mse_loss) returned {got!r} on rank {rank}; "
                f"expected that rank's mean loss over its micro-batches, as a Python float: {losses[rank]:.6f}",
            )


# ---------------------------------------------------------------- global_mean


@exercise("global_mean")
@pytest.mark.parametrize("device", RANK_DEVICES)
class TestGlobalMean:
    @pytest.mark.parametrize("case", list(GLOBAL_MEAN_CASES))
    def test_is_the_mean_over_all_samples_on_every_rank(self, kata, ranks, device, case):
        pairs, expected = GLOBAL_MEAN_CASES[case]
        called = (
            f"global_mean(total, count, device) with (total, count) = {pairs[0]} on rank 0 and {pairs[1]} on rank 1"
        )
        for rank, seen in enumerate(ranks.run("global_mean", device, case=case)):
            got = seen["value"]
            check(seen["float"], f"{called}: rank {rank} got {got}; expected a Python float")
            means = [t / c for t, c in pairs if c]
            hint = f" (the mean of the ranks' means is {sum(means) / len(means):g})" if len(means) == WORLD else ""
            check(
                abs(got - expected) <= 1e-12 * abs(expected),
                f"{called}: rank {rank} got {got!r}; expected {expected!r}, the sum of the totals over the sum of the "
                f"counts{hint}. Hint 1",
            )


# ---------------------------------------------------------------- save_on_rank0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kata19-checkpoints")


@exercise("save_on_rank0")
@pytest.mark.parametrize("device", RANK_DEVICES)
class TestSaveOnRank0:
    def run(self, ranks, device, checkpoints):
        folder = checkpoints / device
        folder.mkdir(exist_ok=True)
        return ranks.run("save", device, folder=str(folder))

    def test_the_file_is_complete_on_every_rank_when_the_call_returns(self, kata, ranks, device, checkpoints):
        for rank, seen in enumerate(self.run(ranks, device, checkpoints)):
            check(
                seen["read"] is None,
                f"right after save_on_rank0(path, wrapped, ...) returned on rank {rank}, reading the file failed: "
                f"{seen['read']}. Expected every rank to return only once rank 0 has written it all. Hint 2",
            )

    def test_it_holds_the_model_and_the_extra_entries(self, kata, ranks, device, checkpoints):
        seen = self.run(ranks, device, checkpoints)[0]
        check(
            seen.get("keys") == ["epoch", "model", "note", "slow"] and seen.get("epoch") == 3,
            f"save_on_rank0(path, wrapped, epoch=3, note='hello', slow=...) wrote a dict with keys {seen.get('keys')} "
            f"(epoch {seen.get('epoch')!r}); expected the keys epoch, model, note and slow, epoch 3",
        )

    def test_the_state_dict_loads_into_a_plain_model(self, kata, ranks, device, checkpoints):
        seen = self.run(ranks, device, checkpoints)[0]
        plain = sorted(_model(0).state_dict())
        check(
            seen.get("model_keys") == plain and seen.get("load_plain") is None,
            f"the checkpoint's 'model' has the keys {seen.get('model_keys')}; a plain model's are {plain}; loading it "
            f"into one: {seen.get('load_plain')}. Expected the model's own state dict, without the wrapper's "
            "'module.' in front of each key. Hint 2",
        )
        check(seen.get("same_values"), "the checkpoint's 'model' holds other values than the model's parameters")

    def test_the_other_ranks_write_nothing(self, kata, ranks, device, checkpoints):
        seen = self.run(ranks, device, checkpoints)
        exists = [one["own_exists"] for one in seen]
        check(
            exists == [True, False],
            f"each rank called save_on_rank0 with a path of its own (own-<rank>.pt); the files exist: "
            f"rank 0: {exists[0]}, rank 1: {exists[1]}; expected rank 0's alone. Hint 1",
        )
        stray = [name for name in seen[0]["files"] if name not in ("shared.pt", "own-0.pt")]
        check(
            not stray,
            f"after save_on_rank0 to shared.pt (every rank) and to own-<rank>.pt (each rank its own), the folder "
            f"also holds {stray}; expected rank 0's files alone: the other ranks write nothing, anywhere. Hint 1",
        )


# ---------------------------------------------------------------- load_on_every_rank


def _saved_from(path: Path, location: str, state: dict) -> Path:
    """Write `state` (CPU tensors) as if saved from the device `location` ("cuda:1"): torch.load
    would put its tensors back there."""
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    tag = b"X\x03\x00\x00\x00cpu"  # the location string in the (protocol 2) pickle
    raw = buffer.getvalue()
    assert raw.count(tag) >= 1, "torch.save's legacy format changed: the device tag was not found"
    path.write_bytes(raw.replace(tag, b"X" + len(location).to_bytes(4, "little") + location.encode()))
    return path


def _checkpoint() -> dict:
    return {"w": torch.arange(6.0).reshape(2, 3), "step": torch.tensor(7), "epoch": 2, "note": "hello"}


def _check_loaded(summary: dict, device: torch.device, what: str) -> None:
    __tracebackhide__ = True
    expected = _checkpoint()
    check("keys" in summary, f"{what} returned {summary.get('type')}; expected the checkpoint's dict")
    check(summary["keys"] == sorted(expected), f"{what} has the keys {summary['keys']}; expected {sorted(expected)}")
    wrong = {k: d for k, d in summary["devices"].items() if torch.device(d) != device}
    check(not wrong, f"{what}: tensors on {wrong}; expected every tensor on {device}. Hint 1")
    for k, v in summary["values"].items():
        check(not value_mismatch(v, expected[k]), f"{what}: {k} is {describe(v)}; expected {describe(expected[k])}")
    check(summary["other"] == {"epoch": 2, "note": "hello"}, f"{what}: the other entries are {summary['other']}")


@exercise("load_on_every_rank")
class TestLoadOnEveryRank:
    @pytest.mark.parametrize("device", ONE_DEVICE)
    def test_tensors_saved_from_another_gpu_land_on_the_given_device(self, kata, tmp_path, device):
        target = torch.device(device, 0) if device == "cuda" else torch.device(device)
        path = _saved_from(tmp_path / "from_gpu1.pt", "cuda:1", _checkpoint())
        got = kata.load_on_every_rank(path, target)
        _check_loaded(_summary(got), target, f"load_on_every_rank(a checkpoint saved from cuda:1, {target})")

    def test_a_file_that_would_run_code_raises_instead(self, kata, tmp_path):
        marker = tmp_path / "the_file_ran_code"

        class Payload:
            def __reduce__(self):
                return (os.mkdir, (str(marker),))

        safe = _saved_from(tmp_path / "safe.pt", "cpu", _checkpoint())
        _check_loaded(_summary(kata.load_on_every_rank(safe, torch.device("cpu"))), torch.device("cpu"), "load")
        path = tmp_path / "payload.pt"
        torch.save({"w": torch.zeros(2), "payload": Payload()}, path)
        raised = None
        try:
            kata.load_on_every_rank(path, torch.device("cpu"))
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001
            raised = err
        check(
            raised is not None and not marker.exists(),
            f"load_on_every_rank(a file whose unpickling calls os.mkdir, cpu) "
            f"{'raised ' + type(raised).__name__ if raised else 'returned'} and the call "
            f"{'ran' if marker.exists() else 'did not run'}; expected it to raise without running it. Hint 2",
        )

    @pytest.mark.parametrize("device", RANK_DEVICES)
    def test_every_rank_loads_it_onto_its_own_device(self, kata, ranks, checkpoints, device):
        path = _saved_from(checkpoints / f"from_gpu0_{device}.pt", "cuda:0", _checkpoint())
        for rank, summary in enumerate(ranks.run("load", device, path=str(path))):
            _check_loaded(
                summary, _device(rank, device), f"load_on_every_rank(a checkpoint saved from cuda:0) on rank {rank}"
            )
