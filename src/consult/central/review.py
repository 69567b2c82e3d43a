"""Review write-back: the field supervisor sees, in Central itself, which submissions failed and why."""

from __future__ import annotations

from enum import StrEnum

from pyodk._endpoints.submissions import SubmissionService

from consult.central.session import CentralSession, call_pyodk


class ReviewState(StrEnum):
    HAS_ISSUES = "hasIssues"
    EDITED = "edited"
    APPROVED = "approved"
    REJECTED = "rejected"


def write_review(central: CentralSession, project_id: int, form_id: str, instance_id: str,
                 state: ReviewState, comment: str | None = None) -> None:
    """Set the review state, then add the comment (pyodk's two calls, in that order)."""
    submissions = SubmissionService(session=central.http, default_project_id=project_id, default_form_id=form_id)
    call_pyodk(submissions.review, instance_id=instance_id, review_state=str(state), comment=comment)


def comments(central: CentralSession, project_id: int, form_id: str, instance_id: str) -> list[str]:
    path = central.http.urlformat("projects/{pid}/forms/{fid}/submissions/{iid}/comments",
                                  pid=project_id, fid=form_id, iid=instance_id)
    return [c["body"] for c in central.json("GET", path)]
