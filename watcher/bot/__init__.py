"""The Telegram bot: commands, alert buttons, access control and admin messages.

Submodules are imported explicitly: ``callbacks`` and ``explain`` stay light because the
outbox and worker processes import them, while ``app`` pulls in python-telegram-bot.
"""
