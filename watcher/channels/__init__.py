"""Channels: where alerts are delivered (console, JSON lines, Telegram, email, Apprise)."""
