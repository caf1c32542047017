"""Alerts: composing explained summaries and keeping them in a durable outbox."""
