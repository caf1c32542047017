"""The delivery stage: the send loop, failing destinations, digests and the delivery log."""

from __future__ import annotations

import asyncio
import contextlib
from zoneinfo import ZoneInfo

from watcher.alerts.compose import plural
from watcher.alerts.outbox import Sender, SendResult
from watcher.alerts.plan import last_digest_time, next_digest_time, quiet_until
from watcher.clock import Clock
from watcher.config import Config
from watcher.errors import StoreError
from watcher.pipeline.reports import Report, StoreTrouble, log
from watcher.store.runner import StoreRunner

SEND_INTERVAL = 1.0
# A destination failing this many times in a row is reported to the admins.
DESTINATION_FAILURES = 3


class DeliveryStage:
    def __init__(
        self,
        config: Config,
        db: StoreRunner,
        *,
        clock: Clock,
        tz: ZoneInfo,
        sender: Sender,
        trouble: StoreTrouble,
        report: Report,
    ) -> None:
        self._config = config
        self._db = db
        self._clock = clock
        self._tz = tz
        self._sender = sender
        self._trouble = trouble
        self._report = report
        self._wanted = asyncio.Event()
        self._stopping = False

    def want(self) -> None:
        """Something was queued: drain the outbox now rather than at the next second."""
        self._wanted.set()

    def stop_sending(self) -> None:
        """At a stop: the round under way ends once its sends are recorded, and no other
        starts. Cancelling it instead could lose the record of a message Telegram has just
        taken, which the next start would then send again."""
        self._stopping = True
        self._sender.stop()
        self._wanted.set()

    async def send_loop(self) -> None:
        """Drain the outbox whenever something is queued, and every second for retries,
        until stop_sending."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), SEND_INTERVAL)
            self._wanted.clear()
            if self._stopping:  # stop_sending wakes it
                return
            try:
                await self.send_round()
            except StoreError as exc:
                self._trouble.failed("delivery rounds stopped; the outbox keeps every alert", exc)
            except Exception:
                log.exception("delivery round failed; the outbox keeps every alert")

    async def send_round(self) -> None:
        """Send what is due, then report destinations that fail, or that work again."""
        result = await self._sender.drain()
        self._trouble.recovered()
        await self._log_sent(result)
        if result.failed or result.retrying:
            await self._check_destinations(permanent=result.failed > 0)
        for name in result.recovered:  # reported failing, by any replica or an earlier run
            log.info("destination %s works again", name)
            await self._report(f"Destination {name} works again: its queued alerts go out")

    async def drain(self) -> None:
        """`run --once`: deliver everything queued, and log it."""
        await self._log_sent(await self._sender.drain())

    async def _check_destinations(self, *, permanent: bool) -> None:
        """Report destinations failing DESTINATION_FAILURES times in a row, or for good;
        a delivery that succeeds clears the report (Store.delivery_sent)."""
        for row in await self._db(self._db.store.destination_rows):
            failures = row["failures"]
            if row["reported"] or row["failing_since"] is None:
                continue
            if permanent or failures >= DESTINATION_FAILURES:
                tries = plural(failures, "attempt")
                problem = f"failing ({tries} in a row): {row['last_error']}"
                log.warning("destination %s is %s", row["name"], problem)
                await self._db(self._db.store.mark_destination_reported, row["name"], problem)
                await self._report(f"Destination {row['name']} is {problem}")

    async def send_digests(self) -> None:
        now = self._clock.now()
        for destination in await self._db(self._db.store.digest_destinations):
            window = self._config.destinations.get(destination)
            quiet = (window.quiet_hours if window else "") or self._config.alerts.quiet_hours
            held = quiet_until(quiet, now, self._tz)  # a digest is never critical
            count = await self._db(self._db.store.queue_digest, destination, now, held)
            log.info("digest of %s queued for %s", plural(count, "alert"), destination)
        self._wanted.set()

    async def send_missed_digests(self) -> None:
        """Send the digest of a digest time that passed with alerts held and no digest made
        (watcher was not running then, or `run --once` ran after it): they would otherwise
        wait a whole day for the next one."""
        due = last_digest_time(self._config.alerts.digest_at, self._clock.now(), self._tz)
        if due is None:
            return
        oldest = await self._db(self._db.store.oldest_digest_held)
        if oldest is None or oldest >= due:
            return
        log.info(
            "the digest of %s was not sent (watcher was not running then): sending it now",
            due.isoformat(timespec="minutes"),
        )
        await self.send_digests()

    def next_digest(self) -> str:
        return next_digest_time(
            self._config.alerts.digest_at, self._clock.now(), self._tz
        ).isoformat()

    async def _log_sent(self, result: SendResult) -> None:
        if not (result.sent or result.failed):
            return
        # The queue, not just this round's heads: messages behind a failing or held one.
        try:
            depth = await self._db(self._db.store.outbox_depth)
        except StoreError:
            depth = {}  # the round itself is recorded; only the count is missing
        queued = sum(depth.values())
        where = ", ".join(f"{n} for {d}" for d, n in sorted(depth.items()))
        log.info(
            "delivered %s (%d failed for good; %d still queued%s)",
            plural(result.sent, "message"),
            result.failed,
            queued,
            f": {where}" if where else "",
        )

    async def drain_local(self, grace: float) -> None:
        """At a stop: the alerts queued for the console and alerts.jsonl are written."""
        try:
            result = await asyncio.wait_for(self._sender.drain_local(), grace)
        except TimeoutError:
            log.warning("alerts for the console not written in time; they are at the next start")
            return
        except StoreError as exc:
            log.warning("alerts for the console not written at the stop: %s", exc)
            return
        if result.sent:
            log.info("at the stop: %s written to the local sinks", plural(result.sent, "alert"))

    async def record_unrecorded_sends(self, grace: float) -> None:
        """Sends delivered while the store refused to record them are recorded now, if the
        store works again, so the next start does not send them twice."""
        try:
            left = await asyncio.wait_for(self._sender.record_unrecorded(), grace)
        except TimeoutError:
            log.error("delivered messages not recorded in time; a restart may send them again")
            return
        if left:
            log.error(
                "outbox jobs %s were delivered but could not be recorded; they will be sent "
                "again after a restart",
                ", ".join(map(str, left)),
            )
