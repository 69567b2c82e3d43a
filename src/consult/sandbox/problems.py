"""Central's error vocabulary: every failure the sandbox reports is one of these.

ODK Central answers errors as `{"message", "code", "details"?}` where `code` is the HTTP
status plus a sub-code (404.1, 409.3, ...). Clients branch on the code, so the sandbox
uses the same codes and messages as `lib/util/problem.js` in getodk/central-backend and
as recorded in `central-contract/`.
"""

from __future__ import annotations

from typing import Any

from .odata import CentralProblem


class Problem(CentralProblem):
    """An error with Central's code, message and optional details; the status is the code's integer part.

    It is the same type `odata.py` raises for query-option errors, so one handler answers both.
    """

    def __init__(self, code: float, message: str, details: dict[str, Any] | None = None):
        super().__init__(int(code), code, message, details)


def unparseable(fmt: str, raw_length: int) -> Problem:
    return Problem(
        400.1,
        f"Could not parse the given data ({raw_length} chars) as {fmt}.",
        {"format": fmt, "rawLength": raw_length},
    )


def missing_parameter(field: str) -> Problem:
    return Problem(400.2, f"Required parameter {field} missing.", {"field": field})


def invalid_header(field: str) -> Problem:
    return Problem(
        400.6, f"An expected header field ({field}) did not match the expected format.", {"field": field}
    )


def missing_multipart_field(field: str) -> Problem:
    return Problem(400.7, f"Required multipart POST field {field} missing.", {"field": field})


def unexpected_value(field: str, value: Any, reason: str) -> Problem:
    return Problem(
        400.8,
        f"Unexpected {field} value {value}; {reason}",
        {"field": field, "value": value, "reason": reason},
    )


def expected_deprecation() -> Problem:
    return Problem(
        400.19,
        "This PUT endpoint expects a deprecatedID metadata tag pointing at the "
        "current version instanceID. I cannot find that tag in your request.",
    )


def odata_repeat_id_not_found() -> Problem:
    return Problem(400.34, "Record associated with the provided $skiptoken not found.")


def authentication_failed() -> Problem:
    return Problem(401.2, "Could not authenticate with the provided credentials.")


def insufficient_rights() -> Problem:
    return Problem(403.1, "The authentication you provided does not have rights to perform that action.")


def not_found() -> Problem:
    return Problem(404.1, "Could not find the resource you were looking for.")


def deprecated_id_not_found(deprecated_id: str) -> Problem:
    return Problem(
        404.5,
        "You tried to update an existing submission, but we can't find that "
        f"submission to update ({deprecated_id})",
        {"deprecatedId": deprecated_id},
    )


def form_version_not_found(version: str) -> Problem:
    return Problem(
        404.6,
        f"The form version specified in this submission '{version}' does not exist.",
        {"formVersion": version},
    )


def xml_conflict() -> Problem:
    return Problem(
        409.1,
        "A submission already exists with this ID, but with different XML. "
        "Resubmissions to attach additional multimedia must resubmit an identical "
        "xml_submission_file.",
    )


def not_accepting_submissions() -> Problem:
    return Problem(
        409.2,
        "This form is not currently accepting submissions. Please talk to your "
        "program staff if this is unexpected.",
    )


def uniqueness_violation(fields: list[str], values: list[str], table: str) -> Problem:
    return Problem(
        409.3,
        f"A resource already exists with {','.join(fields)} value(s) of {','.join(values)}.",
        {"fields": fields, "values": values, "table": table},
    )


def version_conflict(xml_form_id: str, version: str) -> Problem:
    return Problem(
        409.6,
        f"You tried to publish the form '{xml_form_id}' with version '{version}', "
        "but a published form has already existed in this project with those identifiers.",
        {"xmlFormId": xml_form_id, "version": version},
    )


def no_published_version() -> Problem:
    return Problem(
        409.7,
        "Could not delete draft, because the form has not been published. Either "
        "delete the whole form, or replace the draft.",
    )


def instance_id_conflict() -> Problem:
    return Problem(
        409.8,
        "You tried to update a submission, but the instanceID you provided already "
        "exists on this server. Please try again with a unique instanceID.",
    )


def stale_deprecation(deprecated_id: str) -> Problem:
    return Problem(
        409.9,
        "You tried to update a submission, but the copy you were editing "
        f"({deprecated_id}) is now out of date. Please get the new version that has been "
        "submitted, and make your edits again.",
        {"deprecatedId": deprecated_id},
    )


def deleted_submission() -> Problem:
    return Problem(409.18, "This submission has been deleted. You may not resubmit it.")


def odata_unsupported_expand(text: str) -> Problem:
    return Problem(
        501.6,
        f'The given OData expand expression is not supported by this server: "{text}". '
        'Currently, only "$expand=*" is supported.',
        {"text": text},
    )
