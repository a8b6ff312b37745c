"""From a bundle's raw manifests to what will be written: each manifest parsed, resolved to its
resource, matched with its manifestConfig, and checked against the work's executor. A manifest that
fails any step becomes a failed outcome, with its identity as far as it is known."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro.agent import executor
from maestro.agent.applier import ManifestOutcome
from maestro.agent.backend import Backend
from maestro.agent.errors import AgentError, ManifestError
from maestro.agent.manifests import (
    DeleteOption,
    ManifestConfig,
    ManifestMeta,
    ParsedManifest,
    UpdateStrategy,
    find_config,
    parse_manifest,
    split_api_version,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """One manifest that will be written (or, for ReadOnly, read): identified, parsed, with its strategy."""

    meta: ManifestMeta
    manifest: ParsedManifest
    strategy: UpdateStrategy


async def plan_manifests(
    backend: Backend,
    raw_manifests: Sequence[Any],
    configs: Sequence[ManifestConfig],
    default: UpdateStrategy,
) -> tuple[list[Plan], list[ManifestOutcome]]:
    """Parse and resolve every manifest; a failure is an outcome (its meta as far as known). A
    manifest whose config names no update strategy gets ``default``."""
    plans: list[Plan] = []
    failures: list[ManifestOutcome] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for ordinal, raw in enumerate(raw_manifests):
        try:
            parsed = parse_manifest(ordinal, raw)
        except ManifestError as exc:
            failures.append(ManifestOutcome(_partial_meta(ordinal, raw), False, str(exc)))
            continue
        try:
            rtype = await backend.resolve(parsed.group, parsed.version, parsed.kind)
        except AgentError as exc:
            failures.append(ManifestOutcome(parsed.meta(), False, f"{parsed.meta().describe()}: {exc}"))
            continue
        meta = parsed.meta(rtype.resource, namespaced=rtype.namespaced)
        if rtype.namespaced and not parsed.namespace:
            message = (
                f"{meta.describe()}: metadata.namespace is required for the namespaced kind {parsed.kind}"
            )
            failures.append(ManifestOutcome(dataclasses.replace(meta, resource=""), False, message))
            continue
        if meta.key in seen:
            message = f"{meta.describe()}: the same object as manifest {seen[meta.key]}"
            failures.append(ManifestOutcome(meta, False, message))
            continue
        seen[meta.key] = ordinal
        config = find_config(configs, meta)
        if config is not None and config.error:
            # Identified (so what it names is kept), but not written with a config we cannot read.
            failures.append(ManifestOutcome(meta, False, f"{meta.describe()}: {config.error}"))
            continue
        strategy = config.strategy if config is not None and config.strategy else default
        plans.append(Plan(meta, parsed, strategy))
    return plans, failures


async def authorized(
    backend: Backend, plans: list[Plan], work_executor: executor.Executor, delete_option: DeleteOption | None
) -> tuple[list[Plan], list[ManifestOutcome]]:
    """The plans the executor may have written, and a failed outcome for each other one."""
    allowed: list[Plan] = []
    refused: list[ManifestOutcome] = []
    for plan in plans:
        ref = plan.meta.ref
        # Unknown orphaning (a bad deleteOption) counts as owned: delete must be allowed too.
        owned = delete_option is None or not delete_option.orphans(ref)
        try:
            reason = await executor.refusal(
                backend.review,
                work_executor,
                ref,
                executor.verbs(plan.strategy.type, owned),
                plan.manifest.body,
            )
        except AgentError as exc:
            reason = f"could not check the executor's permissions: {exc}"
        if reason is None:
            allowed.append(plan)
        else:
            outcome = ManifestOutcome(plan.meta, False, f"{plan.meta.describe()}: {reason}")
            refused.append(dataclasses.replace(outcome, strategy=plan.strategy.type))
    return allowed, refused


def _partial_meta(ordinal: int, raw: Any) -> ManifestMeta:
    if not isinstance(raw, Mapping):
        return ManifestMeta(ordinal, "", "", "", "", "", "")
    group, version = (
        split_api_version(raw["apiVersion"]) if isinstance(raw.get("apiVersion"), str) else ("", "")
    )
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    return ManifestMeta(
        ordinal,
        group,
        version,
        str(raw.get("kind") or ""),
        "",
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
    )
