"""The instructor's report of one graded assignment: score distribution, per part the failure rate and the most
common failed checks and hints, and the flagged submissions; as CSV (one row per student) and a readable summary.

Built from result data (:mod:`autograder.results`: each part's checks with their hints), never from printed
feedback; the ledger of the isolated engine keeps the results.
"""
from __future__ import annotations

import collections
import csv
import re
from pathlib import Path

from .course import Course, as_course
from .gradebook import read_ledger, with_manual_grades
from .results import SubmissionResult

__all__ = ["write_report", "summary", "from_ledger"]


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?(?![\w.])")
_ANY = "\x00"


def _hint_key(hint: str) -> str:
    """A hint with its numbers masked: the same mistake at different factors or sizes is one common hint."""
    return _NUMBER.sub(_ANY, hint)


def from_ledger(course: Course | Path, assignment: str) -> list[SubmissionResult]:
    """The last result of every student in the ledger, with the grades entered by hand in formgrader in place of
    the autograder's."""
    results = [SubmissionResult.from_dict(e["result"]) for _, e in sorted(read_ledger(course, assignment).items())]
    return with_manual_grades(course, assignment, results)


def summary(results: list[SubmissionResult], assignment: str, top: int = 3) -> str:
    if not results:
        return f"{assignment}: no results"
    totals = sorted(r.total for r in results)
    max_score = max(sum(p.points for p in r.parts if p.kind == "auto") for r in results)
    n = len(totals)
    mean = sum(totals) / n
    lines = [f"Assignment {assignment}: {n} submissions, max {max_score:g} (autograded parts; written answers "
             "are graded in formgrader)",
             f"  mean {mean:.2f}, median {totals[n // 2]:g}, min {totals[0]:g}, max {totals[-1]:g}", "",
             "Score distribution:"]
    bins = collections.Counter(min(int(4 * t / max_score), 3) if max_score else 0 for t in totals)
    for b in range(4):
        lo, hi = b * max_score / 4, (b + 1) * max_score / 4
        lines.append(f"  {lo:5.1f} - {hi:5.1f} {'#' * bins.get(b, 0)} {bins.get(b, 0)}")
    lines += ["", "Per part:"]
    part_ids = list(dict.fromkeys(p.grade_id for r in results for p in r.parts))
    for gid in part_ids:
        parts = [p for r in results for p in r.parts if p.grade_id == gid]
        if all(p.kind == "manual" for p in parts):
            lines.append(f"  {gid}: written answer, graded in formgrader")
            continue
        failed = [p for p in parts if (p.score or 0) < p.points]
        lines.append(f"  {gid} ({parts[0].points:g} points): {len(failed)} of {len(parts)} below full marks "
                     f"({100 * len(failed) / len(parts):.0f}%), mean {sum(p.score or 0 for p in parts) / len(parts):.2f}")
        checks = collections.Counter(c for p in failed for c in {c.name for c in p.failed_checks})
        # a hint counts once per student, whatever its numbers (the factor of a ratio hint differs by student)
        examples = collections.defaultdict(set)
        for p in failed:
            for h in p.hints:
                examples[_hint_key(h)].add(h)
        hints = collections.Counter(key for p in failed for key in {_hint_key(h) for h in p.hints})
        for c, k in checks.most_common(top):
            lines.append(f"      failed by {k}: {c}")
        for key, k in hints.most_common(top):
            text = next(iter(examples[key])) if len(examples[key]) == 1 else key.replace(_ANY, "…")
            lines.append(f"      {k} student{'s' if k != 1 else ''}: {text}")
    lines += _variants(results, assignment)
    flagged = [r for r in results if r.flags]
    lines += ["", f"Flagged submissions ({len(flagged)}):"]
    lines += [f"  {r.student}: " + "; ".join(r.flags) for r in flagged] or ["  none"]
    crashed = [r for r in results if r.notes]
    lines += ["", f"Notes (errors, crashes, limits) ({len(crashed)}):"]
    lines += [f"  {r.student}: " + "; ".join(x.splitlines()[0] for x in r.notes)[:300] for r in crashed] or ["  none"]
    return "\n".join(lines)


def _variants(results: list[SubmissionResult], assignment: str) -> list[str]:
    """Each student's values of the assignment's per-student variants (autograder.variants), as graded."""
    from .release import declared_topic
    from .variants import draw
    try:
        topic = declared_topic(assignment)
    except Exception:  # noqa: BLE001 - a report never fails on the topic
        topic = None
    parts = [p for p in getattr(topic, "parts", []) if getattr(p, "variant", None)]
    if not parts:
        return []
    lines = ["", "Variants (each student's values, drawn from the nbgrader student id; \"hidden checks\": the "
             "student's own hidden case of an implementation part):"]
    for r in results:
        for p in parts:
            kind = " (hidden checks)" if getattr(p, "variant_cases", "") else ""
            values = ", ".join(f"{k} = {v}" for k, v in draw(p.name, r.student, p.variant).items())
            lines.append(f"  {r.student}: {p.name}: {values}{kind}")
    return lines


def write_report(course: Course | Path, assignment: str,
                 results: list[SubmissionResult] | None = None) -> tuple[Path, Path]:
    """Write ``<a>.csv`` and ``<a>.txt`` in the course's reports folder; return their paths."""
    course = as_course(course)
    results = from_ledger(course, assignment) if results is None else results
    out = course.reports()
    out.mkdir(parents=True, exist_ok=True)
    part_ids = list(dict.fromkeys(p.grade_id for r in results for p in r.parts))
    csv_path = out / f"{assignment}.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *part_ids, "total", "max", "flags", "notes"])
        for r in sorted(results, key=lambda r: r.student):
            by = {p.grade_id: p for p in r.parts}
            w.writerow([r.student, *("" if by.get(g) is None or by[g].score is None else f"{by[g].score:g}"
                                     for g in part_ids),
                        f"{r.total:g}", f"{r.max_score:g}", "; ".join(r.flags),
                        "; ".join(x.splitlines()[0] for x in r.notes if x)])
    txt_path = out / f"{assignment}.txt"
    txt_path.write_text(summary(results, assignment) + "\n")
    return csv_path, txt_path
