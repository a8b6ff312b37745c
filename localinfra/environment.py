"""A named local environment: its folder, the processes it runs and the endpoints it offers.

State is one JSON file, rewritten atomically after each change, so ``status`` and ``down`` work from
any later command, and ``down`` still cleans up after a crash half-way through ``up``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from localinfra import paths, process
from localinfra.errors import InfraError


class Environment:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()
        self.processes: dict[str, process.ProcessRecord] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self._load()

    @classmethod
    def named(cls, name: str) -> Environment:
        return cls(paths.envs_dir() / name)

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def path(self, *parts: str) -> Path:
        target = self.root.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def _load(self) -> None:
        if not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        self.processes = {n: process.ProcessRecord.from_json(r) for n, r in data.get("processes", {}).items()}
        self.endpoints = data.get("endpoints", {})

    def save(self) -> None:
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            data = {
                "processes": {n: r.to_json() for n, r in self.processes.items()},
                "endpoints": self.endpoints,
            }
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
            os.replace(tmp, self.state_file)

    def add_process(self, record: process.ProcessRecord) -> process.ProcessRecord:
        with self._lock:
            if record.name in self.processes and process.is_alive(self.processes[record.name]):
                raise InfraError(f"{record.name} is already running in {self.root}", fix="run `down` first")
            self.processes[record.name] = record
            self.save()
        return record

    def set_endpoint(self, name: str, **values: Any) -> None:
        with self._lock:
            self.endpoints[name] = values
            self.save()

    def endpoint(self, name: str) -> dict[str, Any]:
        try:
            return self.endpoints[name]
        except KeyError:
            raise InfraError(
                f"no `{name}` in environment {self.root}", fix="run `fleetplane local up`"
            ) from None

    def dead_processes(self) -> list[process.ProcessRecord]:
        return [r for r in self.processes.values() if not process.is_alive(r)]

    def stop_process(self, name: str) -> None:
        with self._lock:
            record = self.processes.pop(name, None)
            if record:
                process.stop(record)
                self.save()

    def remove_endpoint(self, name: str) -> None:
        with self._lock:
            if self.endpoints.pop(name, None) is not None:
                self.save()

    def stop_processes(self, prefix: str) -> list[str]:
        """Stop every process whose name starts with ``prefix`` (newest first); returns problems."""
        problems: list[str] = []
        with self._lock:
            for name in reversed([n for n in self.processes if n.startswith(prefix)]):
                try:
                    process.stop(self.processes.pop(name))
                except InfraError as exc:
                    problems.append(str(exc))
            self.save()
        return problems

    def all_processes(self) -> list[process.ProcessRecord]:
        """The processes of this environment and of every environment inside it."""
        found = list(self.processes.values())
        for state in sorted(self.root.glob("*/state.json")) if self.root.exists() else []:
            found += Environment(state.parent).all_processes()
        return found

    def child(self, name: str) -> Environment:
        """An environment of its own inside this one (a component that records its own processes,
        like the provisioner's clusters); ``down`` of this one takes it down first."""
        return Environment(self.root / name)

    def _children_down(self, remove_files: bool) -> list[str]:
        problems: list[str] = []
        for state in sorted(self.root.glob("*/state.json")) if self.root.exists() else []:
            problems += Environment(state.parent).down(remove_files=remove_files)
        return problems

    def down(self, *, remove_files: bool = True) -> list[str]:
        """Stop every process (newest first, so clients go before their servers), those of child
        environments first; returns problems."""
        problems = self._children_down(remove_files)
        with self._lock:
            for name in reversed(list(self.processes)):
                try:
                    process.stop(self.processes[name])
                except InfraError as exc:
                    problems.append(str(exc))
            self.processes.clear()
            self.endpoints.clear()
            # An operator among those stopped (the provisioner) may have started its clusters
            # again in a child meanwhile, seeing them gone: those go too.
            problems += self._children_down(remove_files)
            if remove_files:
                with contextlib.suppress(FileNotFoundError):
                    shutil.rmtree(self.root)
            else:
                self.save()
        return problems
