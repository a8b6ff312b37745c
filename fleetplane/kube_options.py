"""``--kubeconfig`` and ``--context``: the options of every command that talks to a kube-apiserver.

They are found as kubectl finds them (:mod:`kubeio.kubeconfig`): the option, else ``KUBECONFIG``
(several files merged), else ``~/.kube/config``, else the pod's service account.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from kubeio import kubeconfig
from kubeio.rest import KubeRest


def kubeconfig_option(of: str) -> Any:
    """``--kubeconfig``, its help naming the cluster it is ``of``."""
    return typer.Option(
        None,
        "--kubeconfig",
        help=f"Kubeconfig of {of}. Default: the files in $KUBECONFIG (separated by ':', merged as "
        "kubectl merges them), else ~/.kube/config; in a pod, its service account.",
        show_default=False,
    )


CONTEXT = typer.Option(
    None,
    "--context",
    help="The kubeconfig context to use (default: the kubeconfig's current-context).",
    show_default=False,
)


def load(path: str | None, context: str | None) -> kubeconfig.Kubeconfig:
    """The options' kubeconfig, or the command stopped with what to pass instead."""
    try:
        return kubeconfig.load(path or None, context or None)
    except kubeconfig.KubeconfigError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def rest(config: kubeconfig.Kubeconfig) -> KubeRest:
    """A client of the chosen context's API server (loading may run an exec plugin: call it where
    blocking is fine)."""
    return KubeRest(config.credentials())


def single_file(config: kubeconfig.Kubeconfig) -> str | None:
    """A file holding just the chosen context, for loaders that read one file and its
    current-context (the operators' kopf login); None for the pod's service account.

    The user's own file when it is one file already on the chosen context; else a private copy of
    the minified context, removed when this process ends.
    """
    if config.in_cluster:
        return None
    if len(config.files) == 1 and config.context == config.merged.get("current-context"):
        return str(config.files[0])
    fd, name = tempfile.mkstemp(prefix="fleetplane-kubeconfig-", suffix=".yaml")
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config.minified(), out, sort_keys=False)
    atexit.register(_remove, name)
    return name


def _remove(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
