"""Feeds: polling RSS, Atom and JSON Feed politely, parsing them, and giving entries identity."""
