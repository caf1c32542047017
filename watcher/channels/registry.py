"""Builds the channels the config asks for, keyed by destination kind."""

from __future__ import annotations

import os
from pathlib import Path

from watcher.channels.apprise import AppriseChannel
from watcher.channels.base import Channel
from watcher.channels.console import ALERTS_FILE, ConsoleChannel, JsonlChannel
from watcher.channels.email import EmailChannel
from watcher.channels.telegram import TOKEN_ENV, TelegramChannel
from watcher.config import Config


def build_channels(config: Config) -> dict[str, Channel]:
    """Every channel that is configured; raises ConfigError for a half-configured one."""
    channels: dict[str, Channel] = {
        "console": ConsoleChannel(),
        "jsonl": JsonlChannel(config.data_dir / ALERTS_FILE),
    }
    if config.telegram.chats or config.telegram.token_file or _env_token():
        channels["telegram"] = TelegramChannel.from_config(config)
    if config.email.host:
        channels["email"] = EmailChannel.from_config(config)
    if config.apprise.config_file:
        base = config.source.parent if config.source else Path.cwd()
        channels["apprise"] = AppriseChannel((base / config.apprise.config_file).resolve())
    return channels


def _env_token() -> bool:
    return bool(os.environ.get(TOKEN_ENV))
