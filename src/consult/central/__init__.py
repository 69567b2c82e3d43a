"""ODK Central client: deploy, field teams and QR codes, OpenRosa, OData pull, review write-back."""

from consult.central.config import CentralConfigError, CentralSettings
from consult.central.deploy import (
    BuiltForm,
    DeployAction,
    DeployedForm,
    DeployError,
    MissingMediaError,
    built_forms,
    deploy_forms,
    resolve_project,
)
from consult.central.openrosa import SubmissionReceipt, collect_session, submit
from consult.central.pull import (
    ODataPage,
    SubmissionQuery,
    count_submissions,
    download_attachments,
    pull_submissions,
    read_ahead,
    submission_ids,
)
from consult.central.review import ReviewState, write_review
from consult.central.session import CentralError, CentralSession, redact
from consult.central.teams import FieldTeam, TeamAccess, ensure_teams, read_teams, write_qr_codes

__all__ = [
    "BuiltForm", "CentralConfigError", "CentralError", "CentralSession", "CentralSettings", "DeployAction",
    "DeployError", "DeployedForm", "FieldTeam", "MissingMediaError", "ODataPage", "ReviewState", "SubmissionQuery", "SubmissionReceipt",
    "TeamAccess", "built_forms", "collect_session", "count_submissions", "deploy_forms", "download_attachments",
    "ensure_teams", "pull_submissions", "read_ahead", "read_teams", "redact", "resolve_project", "submission_ids",
    "submit", "write_qr_codes", "write_review",
]
