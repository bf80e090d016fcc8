"""The 2.0.1 reports and notifications a station sends around boot: acknowledged and logged.

None of them changes what the loop decides; each gets its answer at once,
so a station never retries or gives up on us, and the operator finds them
in the log.
"""

from __future__ import annotations

from typing import Any

import structlog
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from controller.ocpp.handlers201 import on201


class StationNotices:
    """Handlers mixed into the 2.0.1 connection beside :class:`StationMessages`."""

    _log: structlog.typing.FilteringBoundLogger

    @on201(Action.notify_report)
    def _on_notify_report(self, request_id: int, seq_no: int, **_: Any) -> call_result.NotifyReport:
        """Acknowledge a device-model report (we ask for single variables instead)."""
        self._log.info("notify_report", request_id=request_id, seq_no=seq_no)
        return call_result.NotifyReport()

    @on201(Action.notify_event)
    def _on_notify_event(self, **_: Any) -> call_result.NotifyEvent:
        """Acknowledge a device-model event."""
        return call_result.NotifyEvent()

    @on201(Action.security_event_notification)
    def _on_security_event(self, type: str, **_: Any) -> call_result.SecurityEventNotification:
        """Acknowledge; security events are the operator's business, logged for them."""
        self._log.info("security_event", type=str(type))
        return call_result.SecurityEventNotification()

    @on201(Action.log_status_notification)
    def _on_log_status(self, status: str, **_: Any) -> call_result.LogStatusNotification:
        """Acknowledge; logged for the operator."""
        self._log.info("log_status", status=str(status))
        return call_result.LogStatusNotification()

    @on201(Action.firmware_status_notification)
    def _on_firmware_status(self, status: str, **_: Any) -> call_result.FirmwareStatusNotification:
        """Acknowledge; a firmware update is the operator's business, logged for them."""
        self._log.info("firmware_status", status=str(status))
        return call_result.FirmwareStatusNotification()

    @on201(Action.data_transfer)
    def _on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        """No vendor extensions here: the spec's answer for a vendor we do not know."""
        self._log.info("data_transfer_ignored", vendor_id=vendor_id)
        return call_result.DataTransfer(status="UnknownVendorId")
