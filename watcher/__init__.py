"""watcher: news monitoring and alerting daemon (feeds -> articles -> rules -> stories -> alerts)."""

__version__ = "0.1.0"
