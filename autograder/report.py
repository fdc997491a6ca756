"""The instructor's report of one graded assignment: score distribution, per part the failure rate and the most
common failed checks and hints, and the flagged submissions; as CSV (one row per student) and a readable summary.

Built from the results of :mod:`autograder.batch` (the ledger ``course_work/isolated/<a>.jsonl`` keeps them).
"""
from __future__ import annotations

import collections
import csv
import re
from pathlib import Path

from .batch import SubmissionResult, read_ledger

__all__ = ["write_report", "summary", "from_ledger"]


def from_ledger(course: Path, assignment: str) -> list[SubmissionResult]:
    return [SubmissionResult.from_dict(e["result"]) for _, e in sorted(read_ledger(course, assignment).items())]


def _failed_checks(feedback: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^\s*\[FAIL\] (.+)$", feedback, re.M)]


def _hints(feedback: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^\s*(hint: .+)$", feedback, re.M)]


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
        checks = collections.Counter(c for p in failed for c in set(_failed_checks(p.feedback)))
        hints = collections.Counter(h for p in failed for h in set(_hints(p.feedback)))
        for c, k in checks.most_common(top):
            lines.append(f"      failed by {k}: {c}")
        for h, k in hints.most_common(top):
            lines.append(f"      {k} x {h}")
    flagged = [r for r in results if r.flags]
    lines += ["", f"Flagged submissions ({len(flagged)}):"]
    lines += [f"  {r.student}: " + "; ".join(r.flags) for r in flagged] or ["  none"]
    crashed = [r for r in results if r.notes]
    lines += ["", f"Notes (errors, crashes, limits) ({len(crashed)}):"]
    lines += [f"  {r.student}: " + "; ".join(x.splitlines()[0] for x in r.notes)[:300] for r in crashed] or ["  none"]
    return "\n".join(lines)


def write_report(course: Path, assignment: str, results: list[SubmissionResult] | None = None) -> tuple[Path, Path]:
    """Write ``course_work/reports/<a>.csv`` and ``<a>.txt``; return their paths."""
    results = from_ledger(course, assignment) if results is None else results
    out = Path(course) / "course_work" / "reports"
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
