"""Hot reload of the rule files, the blocklist and the alert templates; a rejected edit
keeps the previous one."""

from __future__ import annotations

import asyncio

from watcher.alerts.blocklist import BlocklistSource
from watcher.alerts.templates import TemplatesSource
from watcher.pipeline.reports import Report, log
from watcher.rules.reload import RulesSource


class Reloader:
    def __init__(
        self,
        rules: RulesSource,
        blocklist: BlocklistSource,
        templates: TemplatesSource,
        report: Report,
    ) -> None:
        self._rules = rules
        self._blocklist = blocklist
        self._templates = templates
        self._report = report

    async def reload(self) -> None:
        """Pick up edited rule files; an invalid edit is logged and the old rules stay."""
        before = self._rules.rules
        error = await asyncio.to_thread(self._rules.reload)
        if error is not None:
            await self._refused(
                error.problems,
                "rules not reloaded, previous rules stay active",
                "Rule files rejected; the previous rules stay active",
            )
        elif self._rules.rules is not before or self._rules.fixed:
            names = ", ".join(self._rules.rules.names())
            count = len(self._rules.rules.rules)
            if self._rules.rules is before:  # the rejected file was removed or undone
                log.info("rule files valid again; active rules unchanged: %d (%s)", count, names)
            else:
                log.info("rules reloaded: %d rules (%s)", count, names)
                for warning in self._rules.warnings:
                    log.warning("%s", warning)
        await self._reload_blocklist()
        await self._reload_templates()

    async def _reload_blocklist(self) -> None:
        before = self._blocklist.blocklist
        error = await asyncio.to_thread(self._blocklist.reload)
        if error is not None:
            await self._refused(
                error.problems,
                "blocklist not reloaded, the previous one stays active",
                "Blocklist rejected; the previous one stays active",
            )
        elif self._blocklist.blocklist is not before:
            log.info("blocklist reloaded: %d entries", len(self._blocklist.blocklist))
            for warning in self._blocklist.blocklist.warnings:
                log.warning("blocklist: %s", warning)

    async def _reload_templates(self) -> None:
        before = self._templates.templates
        error = await asyncio.to_thread(self._templates.reload)
        if error is not None:
            await self._refused(
                error.problems,
                "templates not reloaded, the previous ones stay active",
                "Alert templates rejected; the previous ones stay active",
            )
        elif self._templates.templates is not before:
            names = ", ".join(self._templates.templates.names()) or "none: built-in layout"
            log.info("templates reloaded: %s", names)

    async def _refused(self, problems: list[str], logged: str, reported: str) -> None:
        """An edit refused: each problem logged, and all of them in one admin report."""
        for problem in problems:
            log.error("%s: %s", logged, problem)
        await self._report(f"{reported}:\n" + "\n".join(problems))
