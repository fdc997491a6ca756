"""The one result model of the course: a submission has parts, a part has checks.

Every producer writes these and every consumer reads them, never printed text: the checks of a grade cell
(:class:`autograder.core.Report` makes :class:`CheckResult` objects), both grading engines (isolated and plain
nbgrader), the student self-check (``tfdl check``), the ledger (``to_dict``/``from_dict``, JSON), the feedback
notebooks and the instructor report. Printing (:meth:`PartResult.text`, the report's own text) is only how a
student or nbgrader's plain engine sees a result.

This module depends on nothing but the standard library: the student side of the course imports it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["CheckResult", "PartResult", "SubmissionResult", "REPORT_MIMETYPE"]

# The MIME type under which a grade cell also displays its part's result as data (next to the printed text), so
# that the self-check reads checks and hints without parsing text.  nbgrader scores only execute_result outputs,
# and this is a display_data output, so it changes no score.
REPORT_MIMETYPE = "application/vnd.tfdl.part+json"


@dataclass
class CheckResult:
    """One check of a part: what it tried, whether it passed, and the feedback (its ``hint:`` lines name a known
    mistake)."""

    name: str
    passed: bool
    message: str = ""
    weight: float = 1.0

    @property
    def hints(self) -> list[str]:
        return [line.strip() for line in self.message.splitlines() if line.strip().startswith("hint:")]


@dataclass
class PartResult:
    """One graded part (one nbgrader grade cell) of a submission."""

    grade_id: str
    kind: str  # "auto" (a test cell) or "manual" (a written answer)
    points: float
    score: float | None  # None: a manual part left for formgrader
    feedback: str = ""  # what the student reads (the checks' printed report, or why the part scores 0)
    status: str = "ok"  # "ok", the anchor status (deleted, edited, moved, ...), "not run" or "error"
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def hints(self) -> list[str]:
        return list(dict.fromkeys(h for c in self.failed_checks for h in c.hints))

    @classmethod
    def from_dict(cls, d: dict) -> "PartResult":
        d = dict(d)
        d["checks"] = [CheckResult(**c) for c in d.get("checks", [])]
        return cls(**d)


@dataclass
class SubmissionResult:
    """One student's submission of one assignment."""

    student: str
    parts: list[PartResult] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # tampering and anomalies: named in the report
    notes: list[str] = field(default_factory=list)  # errors in the student's cells, crashes, limits
    valid: bool = True  # the notebook could be read and graded
    sha256: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return float(sum(p.score or 0.0 for p in self.parts))

    @property
    def max_score(self) -> float:
        return float(sum(p.points for p in self.parts))

    @property
    def scores(self) -> dict[str, float]:
        """grade id -> score (0 for a part not graded)."""
        return {p.grade_id: float(p.score or 0.0) for p in self.parts}

    @property
    def graded(self) -> bool:
        return self.valid

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SubmissionResult":
        d = dict(d)
        d["parts"] = [PartResult.from_dict(p) for p in d.get("parts", [])]
        return cls(**d)

    def summary(self) -> dict:
        """The result in one flat record: what a table or a CSV row shows."""
        return {"student": self.student, **self.scores, "total": self.total, "max": self.max_score,
                "flags": list(self.flags), "notes": list(self.notes), "valid": self.valid}
