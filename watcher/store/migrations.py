"""Numbered schema migrations; each is frozen once released and only ever appended to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from watcher.store.dialect import JSON_COLUMN


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


def _v2_feeds(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "feeds",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tags", JSON_COLUMN, nullable=False, server_default="[]"),
        sa.Column("interval", sa.Float, nullable=False, server_default="0"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("in_config", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("hint", sa.Float),
        sa.Column("next_poll_at", sa.DateTime),
        sa.Column("last_poll_at", sa.DateTime),
        sa.Column("last_success_at", sa.DateTime),
        sa.Column("last_new_item_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.DateTime),
        sa.Column("failing_since", sa.DateTime),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("warning", sa.Text),
        sa.Column("polls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("not_modified", sa.Integer, nullable=False, server_default="0"),
        sa.Column("entries_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reported", sa.Text),
    )
    sa.Table(
        "entries",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("guid", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("published", sa.DateTime),
        sa.Column("updated", sa.DateTime),
        sa.Column("fingerprint", sa.String(40), nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.Column("revisions", sa.Integer, nullable=False, server_default="0"),
        # "pending": waits for the article stage; "backfill": seen on a feed's first poll and
        # deliberately not processed; "done": processed.
        sa.Column("state", sa.String(16), nullable=False),
        sa.Index("ix_entries_state", "state"),
        sa.Index("ix_entries_feed", "feed_id", "first_seen"),
    )
    sa.Table(
        "entry_keys",
        md,
        sa.Column(
            "feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column(
            "entry_id",
            sa.Integer,
            sa.ForeignKey("entries.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
    )
    md.create_all(conn)


def _v3_alerts(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table("feeds", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("entries", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "articles",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False, unique=True),
        sa.Column("entry_id", sa.Integer, sa.ForeignKey("entries.id", ondelete="SET NULL")),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="SET NULL")),
        sa.Column("feed_name", sa.Text, nullable=False),
        sa.Column("feed_tags", JSON_COLUMN, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("fallback_reason", sa.Text, nullable=False),
        sa.Column("published", sa.DateTime),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("site_name", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime, nullable=False, index=True),
    )
    sa.Table(
        "stories",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("signature", JSON_COLUMN, nullable=False),
        sa.Column("rules", JSON_COLUMN, nullable=False),
    )
    sa.Table(
        "story_sources",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "story_id",
            sa.Integer,
            sa.ForeignKey("stories.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "article_id",
            sa.Integer,
            sa.ForeignKey("articles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "matches",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "article_id",
            sa.Integer,
            sa.ForeignKey("articles.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("story_id", sa.Integer, sa.ForeignKey("stories.id", ondelete="SET NULL")),
        sa.Column("rule", sa.Text, nullable=False, index=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("evidence", JSON_COLUMN, nullable=False),
        sa.Column("reasons", JSON_COLUMN, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    )
    sa.Table(
        "alerts",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("story_id", sa.Integer, sa.ForeignKey("stories.id", ondelete="SET NULL")),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("articles.id", ondelete="SET NULL")),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
        sa.Column("payload", JSON_COLUMN, nullable=False),
    )
    sa.Table(
        "deliveries",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "alert_id",
            sa.Integer,
            sa.ForeignKey("alerts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("not_before", sa.DateTime),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("remote_id", sa.Text),
        sa.Column("sent_at", sa.DateTime),
        sa.Index("ix_deliveries_queue", "destination", "state", "id"),
    )
    sa.Table(
        "destinations",
        md,
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("failing_since", sa.DateTime),
        sa.Column("last_success_at", sa.DateTime),
        sa.Column("reported", sa.Text),
    )
    sa.Table(
        "mutes",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.Text, nullable=False, index=True),
        sa.Column("until", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("by", sa.Text, nullable=False, server_default=""),
    )
    sa.Table(
        "feedback",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rule", sa.Text, nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    md.create_all(conn, tables=[t for t in md.sorted_tables if t.name not in {"feeds", "entries"}])


# Columns that hold JSON, per table: version 4 turns them into JSONB on PostgreSQL databases
# that versions 2 and 3 created with TEXT (SQLite keeps JSON as TEXT).
_JSON_COLUMNS = {
    "feeds": ["tags"],
    "articles": ["feed_tags"],
    "stories": ["signature", "rules"],
    "matches": ["evidence", "reasons"],
    "alerts": ["payload"],
}
# Tables whose rows replicas claim for a while: who holds a row, and until when.
_LEASED = ["feeds", "entries", "destinations"]


def _v4_replicas(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        _json_to_jsonb(conn)
    when = sa.DateTime().compile(dialect=conn.dialect)
    for table in _LEASED:
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN lease_owner TEXT"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN leased_until {when}"))
    md = sa.MetaData()
    sa.Table(
        "replicas",
        md,
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("seen_at", sa.DateTime, nullable=False, index=True),
        sa.Column("leader", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    md.create_all(conn)


def _json_to_jsonb(conn: Connection) -> None:
    inspector = sa.inspect(conn)
    for table, names in _JSON_COLUMNS.items():
        types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
        for name in names:
            if isinstance(types[name], sa.Text | sa.String):
                conn.execute(
                    sa.text(
                        f"ALTER TABLE {table} ALTER COLUMN {name} DROP DEFAULT, "
                        f"ALTER COLUMN {name} TYPE JSONB USING {name}::jsonb"
                    )
                )
    conn.execute(sa.text("ALTER TABLE feeds ALTER COLUMN tags SET DEFAULT '[]'::jsonb"))


def _v5_search(conn: Connection) -> None:
    """Full-text search over stored articles: FTS5 on SQLite, a GIN index on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        for statement in _SQLITE_SEARCH:
            conn.exec_driver_sql(statement)
    elif conn.dialect.name == "postgresql":
        # The expression must stay identical to watcher.store.views._pg_document.
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_articles_search ON articles USING GIN "
            "(to_tsvector('simple', title || ' ' || text))"
        )


# An external-content FTS5 table over articles(title, text), kept in sync by triggers so
# every insert path (and any later delete) updates it in the same transaction.
_SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE articles_fts USING fts5(title, text, content='articles', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); "
    "INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')",
)


def _v6_entry_categories(conn: Connection) -> None:
    """The feed item's categories/tags, for rule filters; NULL for entries stored before."""
    kind = JSON_COLUMN.compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE entries ADD COLUMN categories {kind}"))


MIGRATIONS: list[Migration] = [
    Migration(1, "meta and daemon runs", _v1_runs),
    Migration(2, "feeds, entries and entry identity keys", _v2_feeds),
    Migration(3, "articles, matches, stories, alerts and the delivery outbox", _v3_alerts),
    Migration(4, "replicas and leases; JSONB on PostgreSQL", _v4_replicas),
    Migration(5, "full-text search over articles", _v5_search),
    Migration(6, "entry categories", _v6_entry_categories),
]
