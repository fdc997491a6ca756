"""What the tests of every assignment's checks share: grading a function in-process through the same entry
point a grade cell uses, and the stand-ins for untouched, noisy and lying submissions."""
from __future__ import annotations

import contextlib
import io
import sys
import warnings
from types import ModuleType

import numpy as np


class Grader:
    """``grade``, ``assert_full`` and ``assert_loses`` for the checks of one autograder module."""

    def __init__(self, module: ModuleType):
        self.module = module

    def points(self, part: str) -> float:
        """The part's full marks, as its topic declares them (``TOPIC``) or, for a module not yet declared as a
        topic, its ``POINTS``."""
        topic = getattr(self.module, "TOPIC", None)
        return float(topic.part(part).points) if topic is not None else float(self.module.POINTS[part])

    def grade(self, part: str, fn, tests: str = "all") -> tuple[float, str]:
        """Points and feedback of ``fn`` for one part (feedback captured, not printed), through the part's
        ``check_<part>`` entry point, as its grade cell calls it."""
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            score = getattr(self.module, f"check_{part}")(fn, tests)
        return float(score), buffer.getvalue()

    def assert_full(self, part: str, fn, tests: str = "all") -> None:
        points, text = self.grade(part, fn, tests)
        assert points == self.points(part), text

    def assert_loses(self, part: str, fn, tests: str = "all") -> str:
        points, text = self.grade(part, fn, tests)
        assert points < self.points(part), f"a wrong implementation kept full marks:\n{text}"
        return text


def stub(*args, **kwargs):
    """What the release puts in place of every solution."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


class AlwaysEqual(np.ndarray):
    """An array that claims to equal anything."""

    def __eq__(self, other):
        return True


def noisy(fn):
    """``fn`` that also prints to stdout and stderr and raises a warning, as debugging students' code does."""
    def wrapper(*args, **kwargs):
        print("debug output")
        print("to stderr", file=sys.stderr)
        warnings.warn("a harmless warning")
        return fn(*args, **kwargs)
    return wrapper


def tfdl(*args: str) -> tuple[int, str, str]:
    """Run ``tfdl`` in-process (the command line's own ``main``); return its exit code, stdout and stderr."""
    from autograder import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse: --help and usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Per-student variants of hidden checks (Part(variant=...), autograder.core): a student's own case alone, and a
# submission that replays another student's outputs
# ----------------------------------------------------------------------------------------------------------------
def own_case_verdicts(topic, part: str, fn, values: dict, fixed: str, student: str = "test"):
    """The verdicts of part ``part``'s hidden checks on ``fn`` with only the own case made from ``values`` (the
    hidden function's fixed cases, ``grading.<fixed>()``, replaced by none): [own case, purity]."""
    from autograder.core import Report, instructor_module

    real = instructor_module(topic.assignment)

    class OnlyOwn:
        def __getattr__(self, name):
            return (lambda: []) if name == fixed else getattr(real, name)

    p = topic.part(part)
    report = Report(part, float(p.points), "all", student=student, variant=dict(values),
                    variant_cases=p.variant_cases)
    p.hidden(report, fn, OnlyOwn())
    return report.verdicts


def every_combination(variant: dict) -> list[dict]:
    """Every combination of a variant's options, as ``{parameter: option}`` dicts."""
    import itertools
    return [dict(zip(variant, combo)) for combo in itertools.product(*variant.values())]


def replaying(fn):
    """``(recording, replay)``: ``recording`` is ``fn`` that also keeps each output; ``replay()`` is a function
    that ignores its arguments and returns the kept outputs in order: a submission hard-coding what another
    student's grading returned."""
    import copy
    outputs = []

    def recording(*args, **kwargs):
        out = fn(*args, **kwargs)
        outputs.append(copy.deepcopy(out))
        return out

    def replay():
        queue = list(outputs)

        def replayed(*args, **kwargs):
            return copy.deepcopy(queue.pop(0)) if queue else None
        return replayed
    return recording, replay


def two_draws(part, prefix="student"):
    """Two student ids whose draws of ``part``'s variant differ in every parameter (found by scanning ids, not
    hard-coded draws)."""
    first = part.student_values(f"{prefix}-0")[1]
    for i in range(1, 500):
        other = part.student_values(f"{prefix}-{i}")[1]
        if all(other[k] != first[k] for k in first):
            return f"{prefix}-0", f"{prefix}-{i}"
    raise AssertionError("no two different draws in 500 ids")


def own_cases_and_a_replay(topic, part: str, fn, a: str, b: str):
    """``(names, copied)``: students ``a`` and ``b`` each keep full marks with ``fn`` and get one own case
    (``names[s]``, its verdict's name); ``fn``'s outputs recorded while grading ``a`` keep full marks for ``a``;
    ``copied`` is the report of ``b`` submitting them (a hard-coded copy), for the caller to judge."""
    points = topic.part(part).points
    names = {}
    for s in (a, b):
        report = topic.report(part, fn, "all", student=s)
        assert report.earned == points, report.text()
        (names[s],) = [v.name for v in report.verdicts if v.name.startswith("your own case")]
    recording, replay = replaying(fn)
    assert topic.report(part, recording, "all", student=a).earned == points
    assert topic.report(part, replay(), "all", student=a).earned == points  # a's outputs are right for a
    return names, topic.report(part, replay(), "all", student=b)
