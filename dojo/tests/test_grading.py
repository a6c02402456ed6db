"""`dojo grade`: parallel, contained, flagged; a table that fits 80 columns, two CSVs, a heat map."""

from __future__ import annotations

import csv
import re
import shutil
import time
from pathlib import Path

import pytest

from dojo import grading
from dojo.project import load_katas

PATCHING_ATTACK = """

import sys as _sys
for _name, _module in list(_sys.modules.items()):
    if _name.startswith("test_"):
        _module.check = lambda *args, **kwargs: None
        _module.check_tensor = lambda *args, **kwargs: None


def double(x):
    return None
"""


@pytest.mark.parametrize(
    "source, sign",
    [
        ("import pytest\n", "imports pytest (line 1)"),
        ("from dojo import testing\n", "imports the test machinery (dojo) (line 1)"),
        ("import test_01_double\n", "imports a test module (line 1)"),
        ("import sys\nsys.modules['x'] = 1\n", "uses sys.modules (line 2)"),
        ("import builtins\n", "imports builtins (line 1)"),
        ("__builtins__['len'] = print\n", "touches __builtins__ (line 1)"),
        ("m = __import__('sys')\n", "imports by name (__import__) (line 1)"),
        ("exec('x = 1')\n", "calls exec() (line 1)"),
        ("import inspect\n", "imports inspect (stack frames) (line 1)"),
    ],
    ids=["pytest", "dojo", "test_module", "sys_modules", "builtins", "__builtins__", "__import__", "exec", "inspect"],
)
def test_reaching_into_the_machinery_is_a_tamper_sign(source, sign):
    assert sign in grading.tamper_signs(source)


def test_ordinary_kata_code_shows_no_tamper_sign():
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "solutions").glob("*.py")):
        assert grading.tamper_signs(path.read_text()) == [], path.name


def submissions(project: Path) -> dict[str, Path]:
    """Eight learners: a right one, a stub, the patching attack, a hang, an exit, a fork, a blow-up,
    and a right one whose answer starts a worker process (as a DataLoader with workers does)."""
    base = project / "class"
    made = {}

    def make(name: str, edit=None) -> Path:
        folder = base / name
        shutil.copytree(project / "solutions", folder)
        if edit:
            edit(folder)
        made[name] = folder
        return folder

    def append(file: str, text: str):
        return lambda folder: (folder / file).write_text((folder / file).read_text() + text)

    def replace(file: str, old: str, new: str):
        return lambda folder: (folder / file).write_text((folder / file).read_text().replace(old, new))

    make("ada")
    make("bo", lambda f: shutil.copy(project / "katas" / "01_double.py", f / "01_double.py"))
    make("cy", append("01_double.py", PATCHING_ATTACK))
    make("di", replace("01_double.py", "self.count += 1", "while True:\n            pass"))
    make("ed", replace("02_halve.py", "return x / 2", "import os\n    os._exit(3)"))
    fork = (
        "\nimport os as _os\nif _os.fork() == 0:\n"
        f"    open({str(base / 'child.pid')!r}, 'w').write(str(_os.getpid()))\n"
    )
    make("flo", append("02_halve.py", fork))
    make("gus", append("02_halve.py", "\n_blob = torch.empty(64 * 2**30, dtype=torch.uint8)\n"))
    worker = (
        "import multiprocessing\n"
        "    with multiprocessing.get_context('spawn').Pool(1) as pool:\n"
        "        assert pool.apply(abs, (-2,)) == 2\n"
        "    return x / 2"
    )
    make("hal", replace("02_halve.py", "return x / 2", worker))
    return made


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether process `pid` has ended (a zombie waiting for init to reap it counts) within `within` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_each_submission_is_contained_and_the_others_are_graded(project):
    katas = load_katas(project)
    made = submissions(project)
    started = time.perf_counter()
    graded = grading.grade(project, [str(p) for p in made.values()], katas, jobs=2, limits=grading.Limits(12, 6))
    elapsed = time.perf_counter() - started
    by = {g.name: g for g in graded}
    score = {name: [grading._score(g, k)[0] for k in katas] for name, g in by.items()}
    assert score["ada"] == [2, 1] and not by["ada"].problem and not by["ada"].flags
    assert score["bo"] == [0, 1], "a stub scores zero, the other kata still counts"
    assert score["cy"] == [0, 1] and "uses sys.modules" in " ".join(by["cy"].flags["01_double"]), "flagged, zero"
    assert by["di"].problem.startswith("timed out after 12 s") and score["di"][0] == 1, "double passed before the hang"
    assert "exited early (code 3)" in by["ed"].problem and score["ed"] == [2, 0]
    assert score["flo"] == [2, 1], "the fork's child neither wrote the report nor broke the count"
    child = int((project / "class" / "child.pid").read_text())
    assert gone(child), "the whole process group should have been killed, the fork's child too"
    assert "ran out of its 6 GB of memory" in by["gus"].problem and score["gus"] == [2, 0]
    assert "02_halve" in by["gus"].broken
    assert score["hal"] == [2, 1] and not by["hal"].problem, "an answer may start processes of its own"
    assert elapsed < 60, f"eight submissions took {elapsed:.0f} s"


def plain(line: str) -> str:
    return re.sub(r"\[/?[a-z ]*\]", "", line).replace("[[", "[")


def test_the_table_fits_80_columns_for_a_class_of_30_with_every_kata():
    root = Path(__file__).resolve().parents[2]
    katas = load_katas(root)
    graded = [grading.Graded(f"student-with-a-long-name-{i:02d}", Path(f"/x/{i}")) for i in range(30)]
    graded[3].problem = "timed out after 300 s (tests up to then are counted)"
    graded[4].flags = {katas[0].stem: ["imports pytest (line 1)"]}
    graded.append(grading.Graded("missing", None, error="no such folder: missing"))
    rows = [plain(line) for line in grading.table_lines(graded, katas, 80)]
    table = [r for r in rows if not r.startswith("[")]
    assert max(len(r) for r in table) <= 80, max(table, key=len)
    assert any(k.id in rows[1] for k in katas) and "done" in rows[1]


def test_csvs_and_heat_map_are_written(project, tmp_path):
    katas = load_katas(project)
    graded = grading.grade(project, [str(project / "solutions"), str(project / "katas")], katas, 2, grading.Limits())
    grading.write_kata_csv(tmp_path / "g.csv", graded, katas)
    grading.write_exercise_csv(tmp_path / "g-ex.csv", graded, katas)
    png = grading.write_heatmap(tmp_path / "g.png", graded, katas)
    per_kata = list(csv.DictReader((tmp_path / "g.csv").open()))
    per_exercise = list(csv.DictReader((tmp_path / "g-ex.csv").open()))
    assert len(per_kata) == 4 and len(per_exercise) == 6
    assert {r["submission"] for r in per_kata} == {"solutions", "katas"}
    assert {(r["submission"], r["status"]) for r in per_exercise} == {("solutions", "done"), ("katas", "todo")}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_submissions_are_named_by_folder_and_kept_apart_when_alike():
    assert grading.submission_names(["/a/alice", "/b/bob"]) == ["alice", "bob"]
    assert grading.submission_names(["/a/x/sub", "/a/y/sub"]) == ["x/sub", "y/sub"]
