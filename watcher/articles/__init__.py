"""Articles: fetching each new entry's page and extracting its text, with a fallback to the feed."""

from watcher.types import Article, ArticleSource

__all__ = ["Article", "ArticleSource"]
