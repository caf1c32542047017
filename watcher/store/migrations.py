"""Numbered schema migrations; each is frozen once released and only ever appended to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[Connection], None]


def _v1_runs(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "meta",
        md,
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    sa.Table(
        "runs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime),
        sa.Column("cycles", sa.Integer, nullable=False, server_default="0"),
    )
    md.create_all(conn)


MIGRATIONS: list[Migration] = [
    Migration(1, "meta and daemon runs", _v1_runs),
]
