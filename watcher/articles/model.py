"""The Article record that extraction produces and rule matching consumes."""

from __future__ import annotations
