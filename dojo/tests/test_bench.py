"""`dojo bench`'s summary, on small hand-made pytest-benchmark files (nothing is timed here)."""

import json
import subprocess

import pytest

from dojo import bench

INFO = {
    "device": "cuda",
    "device_name": "Test GPU",
    "cpu_count": 4,
    "torch": "2.99",
    "python": "3.11",
    "impl": "solutions",
    "quick": False,
}


def loader(dataset, workers, pin, images_per_s, images=1000):
    """A loader benchmark as tests/benchmarks writes it, with a median that gives `images_per_s`."""
    return {
        "group": f"loader: {dataset} on cuda",
        "name": f"test_epoch_to_device[{dataset}-{pin}-workers{workers}]",
        "extra_info": {
            **INFO,
            "kind": "loader",
            "dataset": dataset,
            "dataset_description": f"the {dataset} set",
            "images": images,
            "num_workers": workers,
            "pin_memory": pin,
        },
        "stats": {"median": images / images_per_s, "rounds": 5},
    }


def copy(size, memory, gb_per_s, copies=4):
    return {
        "group": f"host to device: {size}",
        "name": f"test_host_to_device_copy[{memory}-{size}]",
        "extra_info": {**INFO, "kind": "h2d", "memory": memory, "bytes": size, "bytes_per_round": copies * size},
        "stats": {"median": copies * size / (gb_per_s * 1e9), "rounds": 20},
    }


def write(tmp_path, benchmarks, name="run.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"datetime": "2026-01-02T03:04:05", "benchmarks": benchmarks}))
    return path


GRID = [
    loader("tensors", 0, False, 1000),
    loader("tensors", 0, True, 1500),
    loader("tensors", 2, False, 3000),
    loader("tensors", 2, True, 4000),
    loader("tensors", 8, False, 2000),
    loader("png", 0, False, 500),
    loader("png", 4, False, 1750),
]
MiB = 1 << 20
COPIES = [
    copy(MiB, "pageable", 5.0),
    copy(MiB, "pinned", 12.5),
    copy(16 * MiB, "pageable", 10.0),
    copy(16 * MiB, "pinned", 25.2),
]


@pytest.fixture
def full_run(tmp_path):
    return write(tmp_path, GRID + COPIES)


def rows_of(text: str, first_cell: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip("│┃ ").startswith(first_cell)]


def test_each_cell_is_images_per_second_and_speedup_over_no_workers_unpinned(full_run):
    text = bench.summarize(full_run)
    assert "1,000/s  1.00×" in text
    assert "1,500/s  1.50×" in text
    assert "3,000/s  3.00×" in text and "4,000/s  4.00×" in text
    assert "1,750/s  3.50×" in text  # png's own baseline (500/s), not the tensors'


def test_one_table_per_data_set_with_rows_num_workers_and_columns_pin_memory(full_run):
    text = bench.summarize(full_run)
    assert text.index("tensors: the tensors set") < text.index("png: the png set")
    header = next(line for line in text.splitlines() if line.startswith("┃") and "num_workers" in line)
    assert header.index("pin_memory=False") < header.index("pin_memory=True")
    workers_2 = rows_of(text, "2 ")
    assert workers_2 and "3,000/s" in workers_2[0] and "4,000/s" in workers_2[0]


def test_a_setting_that_was_not_timed_is_a_dash(full_run):
    text = bench.summarize(full_run)
    row = rows_of(text, "8 ")[0]
    assert "2,000/s  2.00×" in row and "—" in row


def test_more_workers_than_cpus_are_marked(full_run):
    assert rows_of(bench.summarize(full_run), "8 (> CPUs)")


def test_the_best_setting_is_named_per_data_set(full_run):
    text = bench.summarize(full_run)
    assert "best for tensors: num_workers=2, pin_memory=True (4,000 images/s, 4.00× the baseline)" in text
    assert "best for png: num_workers=4, pin_memory=False (1,750 images/s, 3.50× the baseline)" in text


def test_copy_table_gives_gb_per_s_ratio_and_fraction_of_pcie_gen5(full_run):
    text = bench.summarize(full_run)
    row = rows_of(text, "16 MiB")[0].split("│")
    cells = [c.strip() for c in row if c.strip()]
    assert cells == ["16 MiB", "10.0", "25.2", "2.52×", "40%"]
    assert [c.strip() for c in rows_of(text, "1 MiB")[0].split("│") if c.strip()] == [
        "1 MiB",
        "5.0",
        "12.5",
        "2.50×",
        "20%",
    ]


def test_header_says_where_the_figures_come_from(full_run):
    text = bench.summarize(full_run)
    assert "kata 11 from solutions, batches delivered to cuda (Test GPU); 4 CPUs; torch 2.99" in text


def test_a_cpu_run_says_what_was_not_timed(tmp_path):
    path = write(tmp_path, [b for b in GRID if not b["extra_info"]["pin_memory"]])
    text = bench.summarize(path)
    assert "pin_memory=True" not in text.split("pin_memory=True was not timed")[0]
    assert "pin_memory=True was not timed: it needs an accelerator" in text
    assert "Host-to-device copies: not timed (CUDA only)" in text


def test_no_baseline_is_said_rather_than_guessed(tmp_path):
    path = write(tmp_path, [loader("png", 2, False, 900)])
    assert "900/s  (no baseline)" in bench.summarize(path)


def test_a_file_without_our_figures_says_why(tmp_path):
    foreign = {"name": "test_other", "extra_info": {}, "stats": {"median": 1.0}}
    no_stats = {**loader("png", 0, False, 100), "stats": {}}
    text = bench.summarize(write(tmp_path, [foreign, no_stats]))
    assert "No benchmark figures in this file" in text and "--impl=solutions" in text


def test_copies_alone_summarize_without_loader_tables(tmp_path):
    text = bench.summarize(write(tmp_path, COPIES))
    assert "No loader figures: finish kata 11" in text
    assert "2.52×" in text


def test_the_chart_is_a_png(full_run, tmp_path):
    png = tmp_path / "charts" / "run.png"
    text = bench.summarize(full_run, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart: {png}" in text.replace("\n", "")


def test_an_empty_run_still_draws_a_chart(tmp_path):
    png = tmp_path / "empty.png"
    bench.summarize(write(tmp_path, []), png)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_main_load_prints_the_summary_and_writes_the_chart_beside_the_json(full_run, capsys):
    assert bench.main(["--load", str(full_run)]) == 0
    out = capsys.readouterr().out
    assert "best for tensors" in out and "16 MiB" in out
    assert full_run.with_suffix(".png").is_file()


def test_main_load_of_a_missing_file_is_an_error(tmp_path, capsys):
    assert bench.main(["--load", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().out


def test_bench_command_runs_the_benchmark_lane_with_impl_and_quick(tmp_path):
    cmd = bench.bench_command(tmp_path / "r.json", "solutions", True, ["-k", "png"])
    assert cmd[1:3] == ["-m", "pytest"] and set(bench.BENCH_FILES) <= set(cmd)
    # a marker selection would leave them skipped by the addopts' --benchmark-skip
    assert "--benchmark-only" in cmd and "-m" not in cmd[2:]
    assert f"--benchmark-json={tmp_path / 'r.json'}" in cmd
    assert "--impl=solutions" in cmd and "--bench-quick" in cmd
    assert cmd[-2:] == ["-k", "png"]
    assert not any(a.startswith("--impl") for a in bench.bench_command(tmp_path / "r.json"))


def test_main_runs_pytest_then_summarizes_what_it_saved(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(cmd, cwd):
        calls.append(cmd)
        target = next(a.split("=", 1)[1] for a in cmd if a.startswith("--benchmark-json="))
        write(tmp_path, GRID, name="saved.json").replace(target)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    out_json = tmp_path / "out" / "run.json"
    assert bench.main(["--impl", "solutions", "--quick", "--json", str(out_json), "--", "-k", "tensors"]) == 0
    assert calls and "--impl=solutions" in calls[0] and calls[0][-2:] == ["-k", "tensors"]
    out = capsys.readouterr().out
    assert "best for tensors" in out and "run saved" in out
    assert out_json.with_suffix(".png").is_file()


def test_main_says_so_when_every_benchmark_was_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench.subprocess, "run", lambda cmd, cwd: subprocess.CompletedProcess(cmd, 0))
    assert bench.main(["--json", str(tmp_path / "run.json")]) == 1
    assert "no figures were saved" in capsys.readouterr().out
