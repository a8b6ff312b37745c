"""A leader elector on a ``coordination.k8s.io/v1`` Lease, over ``kubeio.rest``.

``LeaderElector.run(lead)`` waits until this replica holds the Lease (watching it meanwhile, so
a renewal counts from when it was written and a release is seen at once), runs ``lead()`` while
it renews the Lease every retry period, and ends it in one of two ways:

- ``lead()`` ends (the operator stopped, or failed): its work is over, so the Lease is released
  (no holder, a 1 s duration) and a standby that sees the release takes it at once;
- the Lease cannot be renewed for the renew deadline, counted from the start of the last renewal
  that succeeded, or another replica holds it: ``on_lost`` is called at once, before anything
  else runs (the operators end the process there), then ``lead()`` is cancelled and
  ``LeadershipLost`` raised. A standby takes over only a full lease duration after it last saw the
  Lease change, so the leader has stopped by then.

The decisions are ``kubeio.lease``'s. The elector has its own client, whose few connections never
queue behind the operator's own requests, and its own short retries: a renewal that hangs is cut
at the deadline. A leader renews on a thread and event loop of its own, with a client of its own
(as client-go renews on a goroutine of its own): handlers that hold the operator's loop, a pass
over thousands of targets, delay neither a renewal nor the cut at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from kubeio import watch
from kubeio.errors import ClusterError, ConflictError, KubeError, NotFoundError
from kubeio.lease import (
    Decision,
    LeaderElection,
    Move,
    Record,
    Sighting,
    decide,
    lease_object,
    next_record,
    observe,
    released,
    standby_wait,
)
from kubeio.rest import JsonObject, KubeRest, RetrySettings

log = logging.getLogger(__name__)

LOST_EXIT_CODE = 1


@dataclasses.dataclass(frozen=True)
class Election:
    """Which Lease an operator's replicas compete for, and the kubeconfig they reach it with (None:
    the pod's service account)."""

    lease: LeaderElection
    kubeconfig: str | None = None


class LeadershipLost(Exception):
    """This replica stopped leading before its work ended."""


def retry_settings(settings: LeaderElection) -> RetrySettings:
    """The elector's client: a failed request is tried again within one retry period (the loops try
    again after that), and a reply may take up to the renew deadline."""
    return RetrySettings(
        budget=settings.retry_period,
        max_backoff=settings.retry_period / 2,
        connect_timeout=settings.renew_deadline,
        read_timeout=settings.renew_deadline,
        # a standby's watch holds one; its reads and writes, or the leader's renewals, another
        max_connections=4,
    )


class LeaderElector:
    def __init__(self, rest: KubeRest, settings: LeaderElection, *, release_on_stop: bool = True) -> None:
        self.rest = rest
        self.settings = settings
        #: give the Lease up when ``lead()`` ends (False: standbys wait for it to expire)
        self.release_on_stop = release_on_stop
        self._sighting: Sighting | None = None
        self._version = ""
        self._reported_holder: str | None = None
        #: set when the watch sees the Lease change
        self._changed = asyncio.Event()
        #: whether ``lead()`` may be running
        self.leading = False
        #: when (``time.monotonic``, the event loop's clock) the leader must have renewed by, or
        #: stop; None while not leading
        self.deadline: float | None = None

    @property
    def holder(self) -> str:
        """The holder as last seen ("" when none, or none seen yet)."""
        return self._sighting.record.holder if self._sighting else ""

    async def run(
        self,
        lead: Callable[[], Coroutine[Any, Any, None]],
        *,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        """Lead with ``lead()`` once elected (see the module's doc); ``on_lost(reason)`` is called
        the moment the Lease is lost, on the renewals' thread, before ``lead()`` is cancelled."""
        await self.acquire()
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()

        def renewals_ended(reason: str) -> None:
            self._stop_leading()
            log.error("%s: stopped leading: %s", self.settings.describe(), reason)
            if on_lost is not None:
                on_lost(reason)
            loop.call_soon_threadsafe(_settle, lost, reason)

        renewals = _Renewals(self, renewals_ended)
        renewals.start()
        leading = asyncio.create_task(lead(), name=f"lead {self.settings.describe()}")
        try:
            await asyncio.wait((lost, leading), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # stopped from outside: the work stops first, then the Lease is given up
            await _cancelled(leading)
            await self._end_term(renewals)
            raise
        if lost.done():
            await _cancelled(leading)
            await renewals.stop()
            raise LeadershipLost(lost.result())
        await self._end_term(renewals)
        leading.result()

    async def _end_term(self, renewals: _Renewals) -> None:
        await renewals.stop()
        self._stop_leading()
        if self.release_on_stop:
            await self.release()

    def _stop_leading(self) -> None:
        self.leading = False
        self.deadline = None

    async def acquire(self) -> None:
        """Return once this replica holds the Lease. Meanwhile the Lease is watched, so a renewal is
        seen when it is written (the lease duration counts from there, not from the next try) and
        a release is acted on at once; tries every retry period keep going if the watch breaks."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        log.info("%s: trying to lead as %s", settings.describe(), settings.identity)
        watching = asyncio.create_task(self._watch(), name=f"watch {settings.describe()}")
        try:
            while True:
                self._changed.clear()
                started = loop.time()
                try:
                    async with asyncio.timeout(settings.renew_deadline):
                        decision = await self._try(self.rest)
                except (KubeError, TimeoutError) as exc:
                    log.warning("%s: could not read or write it: %s%s", settings.describe(), exc, _hint(exc))
                    decision = Decision(Move.WAIT, until=loop.time() + settings.retry_period)
                if decision.move is not Move.WAIT:
                    self.leading = True
                    self.deadline = started + settings.renew_deadline
                    transitions = self._sighting.record.transitions if self._sighting else 0
                    log.info(
                        "%s: leading as %s (%s, %d transitions)",
                        settings.describe(),
                        settings.identity,
                        decision.move.value,
                        transitions,
                    )
                    return
                self._report_holder()
                wait = standby_wait(decision, loop.time(), settings.retry_period, random.random())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
        finally:
            await _cancelled(watching)

    async def _watch(self) -> None:
        def seen(lease: JsonObject) -> None:
            self._sighting = observe(
                self._sighting, Record.from_lease(lease), asyncio.get_running_loop().time()
            )
            self._changed.set()

        def listed(items: Sequence[JsonObject]) -> None:
            for lease in items:
                seen(lease)

        def changed(kind: str, lease: JsonObject) -> None:
            if kind == "DELETED":
                self._changed.set()
            else:
                seen(lease)

        def failed(exc: Exception) -> None:
            # Refused is worth saying (standbys then only poll); a dropped stream is not.
            if isinstance(exc, ClusterError) and exc.status in (401, 403):
                log.warning("%s: cannot watch it: %s%s", self.settings.describe(), exc, _hint(exc))

        await watch.follow(
            self.rest,
            self.settings.collection,
            listed,
            changed,
            field_selector=f"metadata.name={self.settings.name}",
            timeout_seconds=300,
            pause=self.settings.retry_period,
            on_error=failed,
        )

    async def keep_renewing(self, rest: KubeRest) -> str:
        """Renew through ``rest`` every retry period until the Lease is lost; return why it was."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        while True:
            await asyncio.sleep(settings.retry_period)
            assert self.deadline is not None
            try:
                async with asyncio.timeout_at(self.deadline):
                    while True:
                        started = loop.time()
                        try:
                            decision = await self._try(rest)
                        except NotFoundError:
                            return "the lease was deleted"
                        except KubeError as exc:
                            log.warning("%s: renewal failed: %s%s", settings.describe(), exc, _hint(exc))
                        else:
                            if decision.move is not Move.RENEW:
                                return f"{self.holder or 'nobody'} holds it now"
                            self.deadline = started + settings.renew_deadline
                            break
                        await asyncio.sleep(settings.retry_period)
            except TimeoutError:
                return f"not renewed within the renew deadline ({settings.renew_deadline:g}s)"

    async def _try(self, rest: KubeRest) -> Decision:
        """One try to acquire or renew. A leader first writes on the version it last wrote (one
        request); otherwise, or when that version is gone, the Lease is read and decided on."""
        settings = self.settings
        if self.leading and self._sighting is not None and self._version:
            record = next_record(Move.RENEW, self._sighting.record, settings)
            try:
                self._wrote(await self._put(rest, record), record)
                return Decision(Move.RENEW)
            except ConflictError:
                pass  # someone else wrote it: read what they wrote
        try:
            lease: JsonObject | None = await rest.request("GET", settings.path)
        except NotFoundError:
            lease = None
        now = asyncio.get_running_loop().time()
        if lease is None:
            if self.leading:
                raise NotFoundError(f"{settings.describe()} is gone")
            self._sighting, self._version = None, ""
        else:
            self._version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
            self._sighting = observe(self._sighting, Record.from_lease(lease), now)
        decision = decide(self._sighting, settings.identity, now)
        if self.leading and decision.move is not Move.RENEW:
            return decision
        if decision.move is Move.WAIT:
            return decision
        current = self._sighting.record if self._sighting else None
        record = next_record(decision.move, current, settings)
        try:
            if decision.move is Move.CREATE:
                reply = await rest.request("POST", settings.collection, body=lease_object(settings, record))
            else:
                reply = await self._put(rest, record)
        except ConflictError:
            # another candidate wrote first: read again at once
            return Decision(Move.WAIT, until=now)
        self._wrote(reply, record)
        return decision

    async def _put(self, rest: KubeRest, record: Record) -> JsonObject:
        body = lease_object(self.settings, record, self._version)
        return await rest.request("PUT", self.settings.path, body=body)

    def _wrote(self, reply: JsonObject, record: Record) -> None:
        self._version = str((reply.get("metadata") or {}).get("resourceVersion") or "")
        self._sighting = Sighting(record, asyncio.get_running_loop().time())

    async def release(self) -> None:
        """Give the Lease up if this replica holds it, so a standby takes it at its next try."""
        if self._sighting is None or self._sighting.record.holder != self.settings.identity:
            return
        record = released(self._sighting.record)
        try:
            async with asyncio.timeout(self.settings.renew_deadline):
                try:
                    self._wrote(await self._put(self.rest, record), record)
                except ConflictError:
                    # A renewal cancelled in flight may have landed after the version we hold:
                    # release on the Lease as it is now, if it is still ours.
                    lease = await self.rest.request("GET", self.settings.path)
                    if Record.from_lease(lease).holder != self.settings.identity:
                        return
                    self._version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
                    self._wrote(await self._put(self.rest, record), record)
        except (KubeError, TimeoutError) as exc:
            log.warning(
                "%s: could not release it (standbys take over when it expires): %s",
                self.settings.describe(),
                exc,
            )
            return
        log.info("%s: released", self.settings.describe())

    def _report_holder(self) -> None:
        if self.holder != self._reported_holder:
            self._reported_holder = self.holder
            log.info("%s: held by %s; standing by", self.settings.describe(), self.holder or "nobody")


async def _cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended, whatever it ends with."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _settle(future: asyncio.Future[str], reason: str) -> None:
    if not future.done():
        future.set_result(reason)


class _Renewals:
    """A leader's renewals (``LeaderElector.keep_renewing``) on a thread with an event loop and a
    client of their own; ``ended(reason)`` is called on that thread when the Lease is lost."""

    def __init__(self, elector: LeaderElector, ended: Callable[[str], None]) -> None:
        self.elector = elector
        self.ended = ended
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(),), name=f"renew {elector.settings.describe()}", daemon=True
        )
        self._running = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        self._thread.start()
        self._running.wait()

    async def _main(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._running.set()
        rest = KubeRest(self.elector.rest.creds, self.elector.rest.retry)
        try:
            reason = await self.elector.keep_renewing(rest)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # any end of the renewals is a loss of the Lease
            reason = f"the renewal failed: {exc!r}"
        finally:
            await rest.close()
        self.ended(reason)

    async def stop(self) -> None:
        """Stop renewing (a no-op once they ended) and wait until the thread is done."""
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._task.cancel)
        await asyncio.to_thread(self._thread.join)


def _hint(exc: BaseException) -> str:
    if isinstance(exc, ClusterError) and exc.status == 403:
        return (
            " (the account needs create, and get, update, list and watch of this name, on "
            "leases.coordination.k8s.io in this namespace)"
        )
    return ""


def exit_now(reason: str) -> None:
    """End this process at once, without cleanup: a leader that lost its Lease must not run one more
    handler, and the cleanup is handlers' code too. Kubernetes restarts it, as a standby."""
    log.critical("leadership lost (%s): exiting now, to restart as a standby", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(LOST_EXIT_CODE)
