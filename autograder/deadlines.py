"""Due dates and the late policy of a course, declared in its ``nbgrader_config.py``::

    c.LatePolicy.duedates = {"ntk": "2026-07-10 23:59:00 UTC"}   # nbgrader's Assignment.duedate
    c.LatePolicy.grace_minutes = 15       # lateness up to this costs nothing
    c.LatePolicy.penalty_per_day = 0.1    # then 10 % of the score per started day late ...
    c.LatePolicy.zero_after_days = 3      # ... and 0 when more than 3 days late (after the grace period)
    c.AssignLatePenalties.plugin_class = "autograder.deadlines.LatePolicy"

:class:`LatePolicy` is an nbgrader late-submission plugin, so plain ``nbgrader autograde`` applies the same
policy as the isolated engine, which calls :meth:`LatePolicy.penalty` itself when it commits a result. The due
dates go into the gradebook (nbgrader's ``duedate``, which formgrader shows and extensions granted with
``Gradebook.grant_extension`` extend); lateness is nbgrader's ``SubmittedAssignment.total_seconds_late``.

This module depends on nbgrader and traitlets only: nbgrader's own processes import it.
"""
from __future__ import annotations

import datetime
import math

from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Dict, Float, Unicode

__all__ = ["LatePolicy", "policy_of"]

DAY = 86400.0


class LatePolicy(LateSubmissionPlugin):
    """A grace period, then a fraction of the score lost per started day late, then zero.

    nbgrader's own ``penalty_method = 'zero'`` still works: any lateness beyond the grace period scores 0."""

    duedates = Dict(key_trait=Unicode(), value_trait=Unicode(),
                    help="assignment -> due date (e.g. '2026-07-10 23:59:00 UTC'; a time without a zone is UTC); "
                         "written into the gradebook before grading").tag(config=True)
    grace_minutes = Float(0.0, help="lateness up to this many minutes costs nothing").tag(config=True)
    penalty_per_day = Float(0.0, help="fraction of the score lost per started day late, after the grace "
                                      "period (0.1: 10 % per day)").tag(config=True)
    zero_after_days = Float(None, allow_none=True,
                            help="a submission later than this many days (after the grace period) scores "
                                 "0; None: never").tag(config=True)

    def problems(self) -> list[str]:
        """What is wrong with the declared policy (the instructor's to fix, before anyone is graded)."""
        out = []
        for name, text in self.duedates.items():
            try:
                parse_utc(text)
            except Exception as exc:  # noqa: BLE001 - dateutil's many errors
                out.append(f"LatePolicy.duedates[{name!r}] = {text!r} is not a date ({exc})")
        if not 0 <= self.penalty_per_day <= 1:
            out.append(f"LatePolicy.penalty_per_day = {self.penalty_per_day} is not a fraction between 0 and 1")
        if self.grace_minutes < 0 or (self.zero_after_days is not None and self.zero_after_days < 0):
            out.append("LatePolicy.grace_minutes and zero_after_days cannot be negative")
        return out

    def duedate(self, assignment: str) -> datetime.datetime | None:
        """The declared due date of ``assignment`` (naive UTC, as the gradebook stores it), or None."""
        text = self.duedates.get(assignment)
        return parse_utc(text) if text else None

    def fraction(self, seconds_late: float) -> float:
        """The fraction of the score a submission ``seconds_late`` seconds late loses."""
        late = float(seconds_late or 0.0) - 60.0 * self.grace_minutes
        if late <= 0:
            return 0.0
        if self.penalty_method == "zero" or (self.zero_after_days is not None and late > self.zero_after_days * DAY):
            return 1.0
        return min(1.0, self.penalty_per_day * math.ceil(late / DAY))

    def penalty(self, score: float, seconds_late: float) -> float:
        """The points a score of ``score`` loses when ``seconds_late`` seconds late (never more than the score)."""
        return max(0.0, float(score or 0.0)) * self.fraction(seconds_late)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        """nbgrader's plugin entry point (``nbgrader autograde``'s AssignLatePenalties)."""
        penalty = self.penalty(score, total_seconds_late)
        return penalty or None


def policy_of(config) -> LatePolicy:
    """The course's policy from its loaded nbgrader configuration (a traitlets Config)."""
    return LatePolicy(config=config)
