"""The Telegram command bot: commands, button presses, access control and admin messages.

Submodules are imported explicitly: ``app`` pulls in python-telegram-bot, which one-shot
commands do not need. The alert buttons' data lives in ``watcher.alerts.buttons``.
"""
