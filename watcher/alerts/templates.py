"""Per-rule message templates: Jinja2 in a sandbox, found by rule name in [alerts] templates_dir."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from watcher.alerts.compose import Extras, render
from watcher.config import config_path
from watcher.errors import ConfigError
from watcher.rules.reload import Stamp, files_stamp

SUFFIX = ".html.j2"


class Templates:
    """The compiled templates of one folder, keyed by rule name (file ``<rule>.html.j2``).

    Templates render Telegram-flavoured HTML with autoescaping on, in Jinja2's sandbox: a
    template can read the alert it is given and nothing else of the process.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(folder)) if folder else None,
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._compiled: dict[str, jinja2.Template] = {}

    @classmethod
    def load(cls, folder: Path | None) -> Templates:
        """Compile every template in ``folder``; ConfigError naming each broken file and line."""
        templates = cls(folder)
        if folder is None:
            return templates
        if not folder.is_dir():
            raise ConfigError(f"alerts.templates_dir: {folder} is not a folder")
        problems = []
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                templates._compiled[path.name.removesuffix(SUFFIX)] = templates._env.get_template(
                    path.name
                )
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"{path}:{exc.lineno}: template error: {exc.message}")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: cannot read template: {exc}")
        if problems:
            raise ConfigError(problems)
        return templates

    def names(self) -> list[str]:
        return sorted(self._compiled)

    def for_rules(self, rules: list[str]) -> str | None:
        """The template of the first rule (by score) that has one, else None (built-in)."""
        return next((rule for rule in rules if rule in self._compiled), None)

    def render(self, rule: str, context: Mapping[str, Any]) -> str:
        """The template of ``rule`` rendered; ConfigError naming the file and line on failure."""
        template = self._compiled[rule]
        try:
            return template.render(context).strip()
        except jinja2.TemplateError as exc:
            raise ConfigError(self._where(rule, exc) + f"template error: {exc}") from None
        except Exception as exc:  # a template's own arithmetic or filters may raise anything
            where = self._where(rule, exc)
            raise ConfigError(f"{where}template failed: {type(exc).__name__}: {exc}") from None

    def _where(self, rule: str, exc: BaseException) -> str:
        """``file:line: `` of the template line that raised (Jinja2 rewrites tracebacks so
        their frames point into the template)."""
        path = str(Path(self.folder or ".") / f"{rule}{SUFFIX}")
        lines = [
            f.lineno
            for f in traceback.extract_tb(exc.__traceback__)
            if f.filename and Path(f.filename).name == Path(path).name
        ]
        return f"{path}:{lines[-1]}: " if lines else f"{path}: "


class TemplatesSource:
    """The templates in force: reloaded when a template file changes (compiled and a sample
    alert rendered, as `watcher check` does); an edit that fails keeps the previous ones."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.templates = Templates(folder)
        self._stamp: Stamp | None = None
        # What the start-up templates get wrong on a sample alert, ``file:line: message``.
        self.problems: list[str] = []

    def load(self) -> Templates:
        """Load at start-up; raises ConfigError naming each file and line that does not
        compile. A template that compiles but fails on the sample alert is kept (its alerts
        go out in the built-in layout, a daemon that runs today still starts) and named in
        ``problems``, for the daemon to say at once rather than at the first alert."""
        self._stamp = self._current_stamp()
        self.templates = Templates.load(self.folder)
        self.problems = sample_problems(self.templates)
        return self.templates

    def reload(self) -> ConfigError | None:
        """Load again if a template was added, edited or removed; on a problem keep the
        previous templates and return it (once per edit, not at every check)."""
        stamp = self._current_stamp()
        if self.folder is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            templates = Templates.load(self.folder)
        except ConfigError as exc:
            return exc
        problems = sample_problems(templates)
        if problems:
            return ConfigError(problems)
        self.templates = templates
        return None

    def _current_stamp(self) -> Stamp | None:
        if self.folder is None:
            return None
        return files_stamp(self.folder, lambda path: path.name.endswith(SUFFIX))


def templates_folder(value: str, config_source: Path | None) -> Path | None:
    """The folder [alerts] templates_dir names, relative to the config's folder; None if ""."""
    return config_path(value, config_source)


# A made-up alert that every template is rendered with by `watcher check`.
_SAMPLE: dict[str, Any] = {
    "title": "Sample alert: talks resume",
    "url": "https://news.example/sample",
    "source": "Example News",
    "published": "2026-01-05T12:00:00+00:00",
    "language": "en",
    "text_source": "page",
    "quotes": [{"text": "Envoys met in Geneva on Monday.", "marks": [[0, 6]]}],
    "rules": [
        {
            "name": "sample",
            "score": 6.0,
            "threshold": 5.0,
            "terms": [{"term": "envoys", "kind": "actor", "count": 1, "matched": "Envoys"}],
        }
    ],
    "priority": "normal",
}


def check_templates(folder: Path | None) -> list[str]:
    """Every problem with the templates in ``folder``: syntax, and errors when rendering a
    sample alert (an unknown variable, a failing filter), each as ``file:line: message``."""
    try:
        templates = Templates.load(folder)
    except ConfigError as exc:
        return exc.problems
    return sample_problems(templates)


def sample_problems(templates: Templates) -> list[str]:
    """Errors of compiled ``templates`` when rendering a sample alert, ``file:line: message``."""
    problems: list[str] = []
    # A new alert (no other sources, no headline) and a story's update (both): a template
    # reading sources[0] passed the check and then failed on every new alert.
    updated = Extras(sources=(("Other News", "https://other.example/a"),), headline="Update")
    for name in templates.names():
        for extras in (Extras(), updated):
            try:
                render(
                    _SAMPLE,
                    tz=ZoneInfo("UTC"),
                    extras=extras,
                    template=partial(templates.render, name),
                )
            except ConfigError as exc:
                problems += exc.problems
                break
    return problems
