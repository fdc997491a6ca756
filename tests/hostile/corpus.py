"""The hostile corpus: submissions of the ``hostile`` assignment (tests/fixtures/solutions/hostile) that tamper
with the grader, crash, hang or break the notebook.

``CASES[name] = Case(answers, expected, flag, extra, tamper, why)``: ``answers`` replace the solution cells
(``square``, ``normalize``, ``net``; ``explain`` is the written answer), ``extra`` is a cell inserted after the
setup cell, ``tamper`` edits the notebook (or returns raw text), ``expected`` is what the honest parts earn
(test_square, test_normalize, test_net; 2 + 3 + 2 points), ``flag`` a word the report must show.
Build a class folder with :func:`build`; ``python -m tests.hostile.compare_nbgrader`` grades it with plain
nbgrader and with the isolated grader and prints the table of tests/hostile/RESULTS.md.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from tests.conftest import add_submission, fill

SQUARE = "def square(x):\n    return x * x"
NORMALIZE = "def normalize(X):\n    return X / np.linalg.norm(X, axis=1, keepdims=True)"
NET = "def net(d):\n    return torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))"
HONEST = {"square": SQUARE, "normalize": NORMALIZE, "net": NET}
WRONG_NET = "def net(d):\n    return torch.nn.Sequential(torch.nn.Linear(d, 1))"
STUB = "def {0}(*args):\n    raise NotImplementedError()"
# Address space taken without touching it (np.empty), so that the memory cases are quick and use no real memory.
HOG = "try:\n    while True:\n        blocks.append(np.empty(2 ** 27))\nexcept MemoryError:\n    pass\n"
MEMORY_BOMB_GLOBAL = "blocks = []\ndef square(x):\n    while True:\n        blocks.append(np.empty(2 ** 27))"
HUNGRY = ("def normalize(X):\n    scratch = np.empty(3 * 2 ** 27)  # 3 GB of address space, honest if wasteful\n"
          "    return X / np.linalg.norm(X, axis=1, keepdims=True)")


@dataclass
class Case:
    answers: dict = field(default_factory=dict)
    expected: tuple = (0, 0, 0)
    flag: str = ""
    extra: str | None = None
    tamper: Callable | None = None
    why: str = ""


def _cells_with(nb, gid):
    return [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid]


def _delete(gid):
    def f(nb):
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != gid]
        return nb
    return f


def _duplicate(gid):
    def f(nb):
        i = _cells_with(nb, gid)[0]
        copy = nbformat.from_dict(json.loads(json.dumps(nb.cells[i])))
        copy.id = "copied-cell"
        nb.cells.insert(i + 1, copy)
        return nb
    return f


def _edit(gid, source):
    def f(nb):
        nb.cells[_cells_with(nb, gid)[0]].source = source
        return nb
    return f


def _convert(gid):
    def f(nb):
        i = _cells_with(nb, gid)[0]
        old = nb.cells[i]
        new = nbformat.v4.new_markdown_cell(old.source, metadata=old.metadata)
        new.id = old.id
        nb.cells[i] = new
        return nb
    return f


def _move_to_end(gid):
    def f(nb):
        i = _cells_with(nb, gid)[0]
        nb.cells.append(nb.cells.pop(i))
        return nb
    return f


def _meta(gid, **changes):
    """Edit the nbgrader metadata of the cell with ``gid`` (its code untouched)."""
    def f(nb):
        for i in _cells_with(nb, gid)[:1]:
            nb.cells[i].metadata.nbgrader.update(changes)
        return nb
    return f


def _all_points(points):
    def f(nb):
        for c in nb.cells:
            if c.metadata.get("nbgrader", {}).get("grade"):
                c.metadata.nbgrader["points"] = points
        return nb
    return f


def _strip_metadata(gid):
    def f(nb):
        nb.cells[_cells_with(nb, gid)[0]].metadata.pop("nbgrader")
        return nb
    return f


def _both(*tampers):
    def f(nb):
        for t in tampers:
            nb = t(nb)
        return nb
    return f


def _empty(nb):
    nb.cells = []
    return nb


OUTSIDE_MARKERS = (Path("/tmp/PWNED_BY_HOSTILE"), Path.home() / "PWNED_BY_HOSTILE")


def clear_outside_markers() -> list[str]:
    """Remove the files the writes_outside case leaves outside a course (plain nbgrader lets it write them);
    return the ones that were there, so a run can report them and the next run starts clean."""
    found = [str(p) for p in OUTSIDE_MARKERS if p.exists()]
    for p in OUTSIDE_MARKERS:
        p.unlink(missing_ok=True)
    return found


CASES: dict[str, Case] = {
    "honest": Case(HONEST, (2, 3, 2), why="the reference answers"),
    "untouched": Case({}, (0, 0, 0), why="the release as handed out"),
    "patch_autograder": Case({"square": SQUARE}, (2, 0, 0), extra=(
        "import autograder.core as core\ncore.Report.score = lambda self: core.Score(self.points)\n"
        "core.Report.check = lambda self, *a, **k: None"),
        why="replaces Report.score and Report.check by full marks"),
    "patch_sys_modules": Case({"square": SQUARE}, (2, 0, 0), extra=(
        "import sys, types\nfake = types.ModuleType('autograder.core')\n"
        "class Report:\n    def __init__(self, part, points, tests='visible'):\n        self.points = points\n"
        "    def check(self, *a, **k):\n        pass\n    def score(self):\n        return self.points\n"
        "fake.Report = Report\nfake.call_student = lambda f, *a, **k: None\nfake.compare = fake.error_verdict = "
        "fake.plain_value = lambda *a, **k: None\nsys.modules['autograder.core'] = fake"),
        why="puts a fake autograder.core into sys.modules"),
    "patch_numpy": Case({"square": SQUARE, "normalize": "def normalize(X):\n    return X"}, (2, 0, 0), extra=(
        "np.allclose = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None"),
        why="np.allclose always True, normalize returns its input"),
    "patch_torch": Case({"square": SQUARE, "net": WRONG_NET}, (2, 0, 1), extra=(
        "torch.Tensor.numel = lambda self: 41 if self.dim() == 2 else 0"),
        why="torch.Tensor.numel patched so that a net with 4 parameters counts 41 (its shape check is honest)"),
    "patch_builtins": Case({"square": SQUARE, "net": WRONG_NET}, (2, 0, 1), extra=(
        "import builtins\nbuiltins.sum = lambda *a, **k: 41"),
        why="builtins.sum patched so that any parameter count is 41 (the shape check is honest)"),
    "showtraceback": Case({}, (0, 0, 0), extra=(
        "import autograder.core as core\ncore.Report.score = lambda self: 1 / 0\n"
        "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
        "ip._showtraceback = lambda *a, **k: None"),
        why="errors of the test cells hidden: nbgrader then gives full points"),
    "always_equal": Case({"square": "class Yes:\n    def __eq__(self, other):\n        return True\n"
                                    "    def __repr__(self):\n        return '9'\n"
                                    "def square(x):\n    return Yes()"}, (0, 0, 0),
                         why="square returns an object whose == is always True"),
    "lies_about_shape": Case({"normalize": "class Fake:\n    shape = (2, 2)\n    dtype = np.float64\n"
                                           "    def __array__(self, *a, **k):\n"
                                           "        return np.array([[0.6, 0.8], [1.0, 0.0]])\n"
                                           "def normalize(X):\n    return Fake()"}, (0, 0, 0),
                             why="an object that claims shape and dtype and converts to the visible answer"),
    "reads_solutions": Case({"square": SQUARE, "normalize": (
        "try:\n    from autograder.core import instructor_module\n    _ref = instructor_module('hostile')\n"
        "    def normalize(X):\n        return _ref.normalize(X)\nexcept Exception:\n"
        "    def normalize(X):\n        return X")}, (2, 0, 0),
        why="imports the instructor's solutions/hostile/grading.py and returns its answers"),
    "writes_outside": Case(HONEST, (2, 3, 2), extra=(
        "import os, glob\nfor d in [os.environ.get('TFDL_COURSE_ROOT', ''), os.path.expanduser('~'), '/tmp']:\n"
        "    try:\n        open(os.path.join(d, 'PWNED_BY_HOSTILE'), 'w').write('x')\n    except Exception:\n"
        "        pass\nfor p in glob.glob(os.path.join(os.environ.get('TFDL_COURSE_ROOT', '/nonexistent'), "
        "'course_work', 'submitted', '*', '*', '*.ipynb')):\n    try:\n        open(p, 'w').write('{}')\n"
        "    except Exception:\n        pass"),
        why="writes into the course directory and over other students' submissions"),
    "infinite_loop": Case(dict(HONEST, square="def square(x):\n    while True:\n        pass"), (0, 3, 2),
                          why="square never returns"),
    "loop_catches_interrupt": Case(dict(HONEST, square=(
        "def square(x):\n    while True:\n        try:\n            while True:\n                pass\n"
        "        except KeyboardInterrupt:\n            pass")), (0, 3, 2),
        why="square loops and swallows KeyboardInterrupt"),
    "sleeps": Case(dict(HONEST, square="import time\ntime.sleep(3600)\n" + SQUARE), (0, 3, 2),
                   why="a cell sleeps for an hour"),
    "os_exit": Case(dict(HONEST, normalize="import os\ndef normalize(X):\n    os._exit(1)"), (2, 0, 2),
                    why="normalize calls os._exit"),
    "segfault": Case(dict(HONEST, net="import ctypes\nctypes.string_at(0)\n" + NET), (2, 3, 0),
                     why="a segmentation fault through ctypes"),
    "memory_bomb": Case(dict(HONEST, square="def square(x):\n    blocks = []\n    while True:\n"
                                            "        blocks.append(np.ones(2 ** 27))"), (0, 3, 2),
                        why="square allocates until memory runs out"),
    "forks": Case(HONEST, (2, 3, 2), extra=(
        "import os\nfor _ in range(4):\n    if os.fork() == 0:\n        while True:\n            pass"),
        why="forks four children that spin forever"),
    "huge_output": Case(dict(HONEST, square="def square(x):\n    print('x' * 50_000_000)\n    return x * x"),
                        (2, 3, 2), why="prints 50 MB in every call"),
    "nan_inf": Case(dict(HONEST, normalize="def normalize(X):\n    return X * np.nan + np.inf"), (2, 0, 2),
                    why="normalize returns NaN and inf"),
    "wrong_types": Case({"square": "def square(x):\n    return str(x * x)",
                         "normalize": "def normalize(X):\n    return {'a': 1}", "net": "def net(d):\n    return 'net'"},
                        (0, 0, 0), why="a string, a dict and a string"),
    "wrong_shapes": Case(dict(HONEST, normalize="def normalize(X):\n    return (X / np.linalg.norm(X, axis=1, "
                                                "keepdims=True)).T"), (2, 0, 2), why="normalize transposed"),
    "not_json": Case(tamper=lambda nb: '{"cells": [', expected=(0, 0, 0), flag="invalid notebook",
                     why="a truncated file"),
    "empty_notebook": Case(tamper=_empty, expected=(0, 0, 0), flag="deleted", why="a notebook with no cells"),
    "deletes_test_cell": Case(HONEST, (2, 0, 2), flag="test_normalize deleted", tamper=_delete("test_normalize"),
                              why="the test cell of normalize deleted"),
    "duplicates_test_cell": Case(HONEST, (0, 3, 2), flag="test_square duplicated", tamper=_duplicate("test_square"),
                                 why="the test cell of square copied"),
    "edits_test_cell": Case(dict(HONEST, normalize=STUB.format("normalize")), (2, 0, 2),
                            flag="test_normalize edited", tamper=_edit("test_normalize", "3"),
                            why="test cell of normalize replaced by '3'"),
    "converts_test_cell": Case(HONEST, (0, 3, 2), flag="test_square converted", tamper=_convert("test_square"),
                               why="the test cell of square turned into markdown"),
    "moves_test_cell": Case(HONEST, (0, 3, 2), flag="test_square moved", tamper=_move_to_end("test_square"),
                            why="the test cell of square moved to the end"),
    # -- metadata a student can edit never decides points (issue 21, 1) ------------------------------------------
    "edits_points": Case(HONEST, (2, 3, 2), flag="points 100", tamper=_all_points(100),
                         why="every grade cell's metadata claims 100 points (code untouched)"),
    "flips_grade_flags": Case(HONEST, (2, 3, 2), flag="the source decides", tamper=_both(
        _meta("test_square", locked=False), _meta("test_normalize", grade=False), _meta("test_net", solution=True)),
        why="test cells' locked, grade and solution flags flipped (code untouched)"),
    "removes_metadata": Case(HONEST, (2, 3, 2), flag="metadata was removed", tamper=_strip_metadata("test_normalize"),
                             why="the nbgrader metadata of normalize's test cell removed (code untouched)"),
    "swaps_grade_id": Case(HONEST, (2, 3, 2), flag="grade id was changed", tamper=_meta("test_square",
                                                                                        grade_id="test_net"),
                           why="square's test cell relabelled with net's grade id"),
    "solution_claims_points": Case(HONEST, (2, 3, 2), flag="claims to be graded",
                                   tamper=_meta("square", grade=True, points=10),
                                   why="square's solution cell marked graded with 10 points"),
    "edits_metadata_and_test": Case(HONEST, (2, 0, 2), flag="test_normalize edited", tamper=_both(
        _edit("test_normalize", "3"), _meta("test_square", points=50)),
        why="normalize's test code replaced and square's points raised: only normalize's part is lost"),
    # -- exhausting memory costs only the part that did it (issue 21, 3) -----------------------------------------
    "memory_bomb_then_hungry": Case(dict(HONEST, square=MEMORY_BOMB_GLOBAL, normalize=HUNGRY), (0, 3, 2),
                                    why="square fills a global until memory runs out; the honest normalize "
                                        "then needs 3 GB"),
    "memory_hog_cell": Case(dict(HONEST, square="blocks = []\n" + HOG + SQUARE, normalize=HUNGRY), (0, 3, 2),
                            why="square's cell holds all the memory it can get (and defines square); "
                                "normalize needs 3 GB"),
    "memory_hog_call": Case(dict(HONEST, square="blocks = []\ndef square(x):\n" + textwrap.indent(HOG, "    ")
                                 + "    return x * x", normalize=HUNGRY), (2, 3, 2),
                            why="square returns the right value but keeps all the memory it can get; "
                                "normalize needs 3 GB"),
    # -- missing limits (issue 21, 4) -----------------------------------------------------------------------------
    "fork_bomb": Case(HONEST, (2, 3, 2), extra=(
        "import os\nfor _ in range(400):\n    try:\n        if os.fork() == 0:\n            import time\n"
        "            time.sleep(20)\n            os._exit(0)\n    except OSError:\n        break"),
        why="forks 400 processes that sleep (bounded, so that it cannot take a machine down)"),
    "huge_return": Case(dict(HONEST, square="def square(x):\n    return np.zeros(3 * 10 ** 7)"), (0, 3, 2),
                        why="square returns a 240 MB array"),
    "huge_string": Case(dict(HONEST, normalize="def normalize(X):\n    return 'x' * 10 ** 8"), (2, 0, 2),
                        why="normalize returns a 100 MB string"),
    "deep_return": Case(dict(HONEST, normalize="def normalize(X):\n    out = []\n    for _ in range(10_000):\n"
                                               "        out = [out]\n    return out"), (2, 0, 2),
                        why="normalize returns a list nested 10 000 deep"),
    "expensive_decode": Case(dict(HONEST, square="def square(x):\n    return [[] for _ in range(2_000_000)]"),
                             (0, 3, 2), why="square returns two million empty lists (cheap to send, costly to "
                                            "decode)"),
}


def build(folder: Path, release_nb) -> dict[str, Path]:
    """Write every case's notebook into ``folder`` (``<case>/hostile.ipynb``)."""
    paths = {}
    for name, case in CASES.items():
        answers = {k: v for k, v in case.answers.items()}
        for part in ("square", "normalize", "net"):
            answers.setdefault(part, STUB.format(part))
        nb = fill(release_nb, answers)
        if case.extra:
            i = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
            extra = nbformat.v4.new_code_cell(case.extra)
            nb.cells.insert(i + 1, extra)
        if case.tamper:
            nb = case.tamper(nb)
        if isinstance(nb, str):
            paths[name] = add_submission(folder, name, "hostile", text=nb)
        else:
            paths[name] = add_submission(folder, name, "hostile", nb)
    return paths
