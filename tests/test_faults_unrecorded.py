"""Fault suite: a message delivered while the store was read-only is recorded at a graceful
stop once the store can be written, so the next start does not send it again."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from test_alerts_outbox import MADRID, TG, Outbox, outbox  # noqa: F401  (the fixture)

from watcher.alerts.outbox import Sender
from watcher.errors import StoreError

pytestmark = pytest.mark.fault


def _immutable(paths: list[Path], on: bool) -> bool:
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(
        ["chattr", "+i" if on else "-i", *map(str, paths)], capture_output=True, check=False
    )
    return done.returncode == 0


async def test_a_send_unrecorded_while_read_only_is_recorded_at_stop(
    outbox: Outbox,  # noqa: F811
    tmp_path: Path,
) -> None:
    await outbox.alert([TG])
    frozen = [tmp_path, tmp_path / "watcher.db", tmp_path / "watcher.db-wal"]
    if not _immutable(frozen, on=True):
        pytest.skip("chattr +i is not allowed here (needs root on a file system that has it)")
    try:
        with pytest.raises(StoreError):
            await outbox.drain()  # delivered, but the store refuses to record it
    finally:
        _immutable(frozen, on=False)
    assert len(outbox.bot.sent()) == 1
    assert await outbox.sender.record_unrecorded() == []  # the graceful stop's step
    restarted = Sender(
        outbox.db,
        {"telegram": outbox.sender._channels["telegram"]},  # the same channel, a new sender
        clock=outbox.clock,
        tz=MADRID,
        retry_cap=1800.0,
        rng=random.Random(1),
    )
    await restarted.drain()
    assert len(outbox.bot.sent()) == 1  # not sent again
    assert await outbox.states(TG) == ["sent"]
