"""The web page served by the daemon: stories, rule activity, feed health and a rule tester."""

from watcher.web.app import Backend, WebApp, WebServer

__all__ = ["Backend", "WebApp", "WebServer"]
