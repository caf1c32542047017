"""The Apprise channel: Slack, Discord, Matrix, ntfy and dozens more through one dependency."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from watcher.channels.base import Delivered, OutgoingMessage
from watcher.channels.spec import ChannelSpec
from watcher.config import Config
from watcher.errors import ConfigError, DeliveryError


class AppriseChannel:
    """Sends to the services tagged ``TAG`` in an Apprise config file ("apprise:TAG")."""

    name = "apprise"

    def __init__(self, config_file: Path) -> None:
        try:
            import apprise  # noqa: PLC0415 - an optional dependency
        except ImportError:
            raise ConfigError(
                f"apprise.config_file is set ({config_file}) but Apprise is not installed; "
                "pip install 'watcher[apprise]'"
            ) from None
        if not config_file.is_file():
            raise ConfigError(f"apprise.config_file: {config_file} does not exist")
        # Apprise logs the full service URLs, secrets included, at debug level.
        logging.getLogger("apprise").setLevel(logging.ERROR)
        self._apprise: Any = apprise.Apprise()
        config = apprise.AppriseConfig()
        config.add(str(config_file))
        self._apprise.add(config)
        self._html = apprise.NotifyFormat.HTML

    async def send(self, destination: str, message: OutgoingMessage) -> Delivered:
        ok = await asyncio.to_thread(self._notify, destination, message)
        if ok is None:
            raise DeliveryError(
                f"apprise: no service has tag {destination!r} in the config file", permanent=True
            )
        if not ok:
            raise DeliveryError(f"apprise: a service tagged {destination!r} refused the message")
        return Delivered(None)

    def _notify(self, tag: str, message: OutgoingMessage) -> bool | None:
        body = message.html.replace("\n", "<br>\n")
        result: bool | None = self._apprise.notify(
            title=message.subject, body=body, body_format=self._html, tag=tag
        )
        return result

    async def aclose(self) -> None:
        pass


def _build(config: Config) -> AppriseChannel:
    base = config.source.parent if config.source else Path.cwd()
    return AppriseChannel((base / Path(config.apprise.config_file).expanduser()).resolve())


SPEC = ChannelSpec(
    kind="apprise",
    configured=lambda config: bool(config.apprise.config_file),
    build=_build,
    accepts=lambda tag: bool(tag.strip()),
    example="apprise:TAG (a tag in [apprise] config_file)",
)
