"""`python -m consult.sandbox`: serve a local ODK Central-compatible API on loopback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .server import DEFAULT_ADMIN_EMAIL, DEFAULT_WORKER_INTERVAL, LOOPBACK, PASSWORD_ENV, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consult.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8383)
    parser.add_argument("--data-dir", type=Path, required=True, help="where the SQLite file and blobs live")
    parser.add_argument("--domain", help="public base URL used in absolute links (default http://HOST:PORT)")
    parser.add_argument("--admin-email", default=DEFAULT_ADMIN_EMAIL)
    parser.add_argument("--admin-password", help=f"admin password (default: ${PASSWORD_ENV})")
    parser.add_argument("--worker-interval", type=float, default=DEFAULT_WORKER_INTERVAL,
                        help="seconds between runs of the background worker "
                        "(0: only on POST /sandbox/worker/exhaust)")
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK:
        parser.error(f"the sandbox only listens on loopback ({', '.join(LOOPBACK)}), not {args.host}")
    password = args.admin_password or os.environ.get(PASSWORD_ENV)
    if not password:
        parser.error(f"give --admin-password or set {PASSWORD_ENV}")
    serve(args.host, args.port, args.data_dir, args.domain, args.admin_email, password, args.worker_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
