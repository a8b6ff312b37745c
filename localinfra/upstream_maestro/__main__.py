"""Build the driver of upstream Maestro's clients and upstream's server; prints their paths."""

from __future__ import annotations

import argparse
from pathlib import Path

from localinfra.upstream_maestro import ensure_driver, ensure_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--git", action="append", default=[], metavar="OWNER/NAME=DIR", help="a repository's git directory"
    )
    args = parser.parse_args()
    git_dirs = {}
    for item in args.git:
        repo, _, folder = item.partition("=")
        git_dirs[repo] = Path(folder)
    print(ensure_driver(git_dirs))
    print(ensure_server(git_dirs))


if __name__ == "__main__":
    main()
