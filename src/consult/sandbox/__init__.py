"""A local ODK Central-compatible server for tests, the demo and training.

It answers the Central API calls the project makes and what ODK Collect needs (sessions,
projects, app users, forms and drafts, OpenRosa, REST submissions, OData), with the same
status codes, headers and JSON shapes as the exchanges recorded from a real Central in
`central-contract/`. Start it with `python -m consult.sandbox`, `serve(...)`, or
`SandboxServer` / `run_sandbox` for a child process on a free loopback port.
"""

from .server import SandboxServer, run_sandbox, serve

__all__ = ["SandboxServer", "run_sandbox", "serve"]
