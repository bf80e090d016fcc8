"""Operator changes at run time: checked, persisted, audited, applied to the running site.

:class:`OperatorControl` holds a site's :class:`~controller.overrides.OperatorSettings`.
A change is checked against the YAML config (the physical ceiling), stored in
the state store (kind ``settings``), written to the audit log with who made it
and the values before and after, and applied with ``SiteController.reconfigure``
so the next decision (at once) uses it. On start the stored settings are
applied again, so a change survives a restart. Schedules are re-evaluated
every ``RECHECK_S``; the loop is reconfigured only when the effective config
changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import ValidationError

from controller.audit import AuditLog
from controller.clock import Clock
from controller.config import HeadroomConfig
from controller.overrides import (
    OperatorSettings,
    Problem,
    ScheduleEntry,
    active_schedules,
    check_settings,
    effective_config,
)
from controller.store import StateStore

log = structlog.get_logger(__name__)

RECHECK_S = 15.0
"""How often schedules are re-evaluated: a window opens at most this late (well within a minute)."""
STORE_KIND = "settings"


class SettingsRejected(ValueError):
    """The settings cannot apply; ``problems`` names each field and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))


class PreconditionFailed(Exception):
    """If-Match named another version of the settings than the current one."""

    def __init__(self, current_etag: str) -> None:
        self.current_etag = current_etag
        super().__init__(f"the settings changed meanwhile; their ETag is now {current_etag}")


class OperatorControl:
    """One site's operator settings and the effective config derived from them."""

    def __init__(
        self,
        base: HeadroomConfig,
        clock: Clock,
        apply: Callable[[HeadroomConfig], None],
        store: StateStore | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.base = base
        self._clock = clock
        self._apply = apply
        self._store = store
        self._audit = audit
        self.settings = OperatorSettings()
        self.effective = base
        self._built_from: tuple[OperatorSettings, list[ScheduleEntry]] = (self.settings, [])
        """The settings and active schedules ``effective`` was built from."""
        self.problem = ""
        """Why stored settings could not be applied on start (empty when they were)."""

    @property
    def site_id(self) -> str:
        return self.base.site.id

    def load(self) -> None:
        """Apply the settings stored before a restart, if they still fit the config."""
        stored = self._store.get(STORE_KIND, self.site_id) if self._store else None
        if stored is None:
            return
        try:
            settings = OperatorSettings.model_validate(stored)
        except ValidationError as exc:
            self.problem = f"stored settings are unreadable: {exc.error_count()} problem(s)"
            log.error("operator settings not restored", site=self.site_id, problem=self.problem)
            return
        problems = check_settings(self.base, settings)
        if problems:
            # The YAML changed under them (a lower rating, a charger removed): keep the config.
            self.problem = "; ".join(f"{p.field}: {p.reason}" for p in problems)
            log.error("operator settings not restored", site=self.site_id, problem=self.problem)
            return
        self.settings = settings
        self.refresh()
        log.info("operator settings restored", site=self.site_id)

    def update(
        self,
        settings: OperatorSettings,
        who: str,
        if_match: str | None = None,
        resource: str = "settings",
    ) -> None:
        """Check, persist, audit (as a change of ``resource``) and apply new settings; raises
        on a refusal or a stale ETag."""
        if if_match is not None and if_match.strip() not in (self.settings.etag(), "*"):
            raise PreconditionFailed(self.settings.etag())
        problems = check_settings(self.base, settings)
        if problems:
            raise SettingsRejected(problems)
        before = self.settings
        now = self._clock.now()
        if self._store is not None:
            self._store.put(STORE_KIND, self.site_id, settings.model_dump(mode="json"), now)
        self.settings = settings
        self.record(who, resource, before.model_dump(mode="json"), settings.model_dump(mode="json"))
        log.info("operator settings changed", site=self.site_id, who=who)
        self.refresh(force=True)

    def record(self, who: str, resource: str, before: Any, after: Any) -> None:
        """Write one change to the audit log (if the site has one)."""
        if self._audit is not None:
            self._audit.record_change(who, resource, before, after, self._clock.now())

    def refresh(self, force: bool = False) -> None:
        """Recompute the effective config for now; reconfigure the site if it changed.

        Built again only when the settings or the active schedules changed: at depot scale
        the build (every charger dumped and validated) takes ~20 ms of the event loop, a
        stall a reaction to an over-limit reading would wait behind every ``RECHECK_S``.
        """
        now = self._clock.now()
        built_from = (self.settings, active_schedules(self.settings, now))
        if not force and built_from == self._built_from:
            return
        effective = effective_config(self.base, self.settings, now)
        self._built_from = built_from
        if force or effective != self.effective:
            self.effective = effective
            self._apply(effective)

    async def run(self) -> None:
        """Re-evaluate schedules until cancelled."""
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                self.refresh()
            except ValidationError:  # check_settings proved every case valid; log, never die
                log.exception("effective config invalid; keeping the last one", site=self.site_id)
