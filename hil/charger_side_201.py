"""The station's end of a simulated OCPP 2.0.1 connection: it answers the CSMS's CALLs.

The 2.0.1 twin of :mod:`hil.charger_side`: the library's 2.0.1 ChargePoint
with the same quirky receive path (late or no answers to commands), handing
SetChargingProfile, ClearChargingProfile, GetVariables and SetVariables to
the owner (:class:`~hil.charge_point_201.SimulatedStation`).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from ocpp.charge_point import snake_to_camel_case
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.client import ClientConnection

from controller.ocpp.handlers201 import on201
from hil.charger_side import QuirkyReceiver
from hil.quirks import Quirks


class StationOwner(Protocol):
    """What the station side needs from the simulated station it serves."""

    charger_id: str
    quirks: Quirks

    def set_profile_201(self, evse_id: int, profile: dict[str, Any]) -> str:
        """SetChargingProfile (camelCase profile): the status to answer."""
        ...

    def clear_profiles(self, **criteria: Any) -> str:
        """ClearChargingProfile: the status to answer."""
        ...

    def variables(self) -> dict[str, str]:
        """``Component.Variable`` → value, as GetVariables reports them."""
        ...

    def composite_schedule(
        self, connector_id: int, duration_s: int, unit: str | None
    ) -> tuple[str, str, list[dict[str, Any]]] | None:
        """GetCompositeSchedule: (start, unit, camelCase periods), or None to refuse."""
        ...


def _wire(data: Any) -> Any:
    """Nested keys back to camelCase, Decimals to floats: the payload as it was sent."""
    return json.loads(json.dumps(snake_to_camel_case(data), default=float))


class StationSide(QuirkyReceiver, ChargePoint):  # type: ignore[misc]  # the library is untyped
    """The library's 2.0.1 ChargePoint, answering the CSMS's CALLs for its owner."""

    def __init__(self, owner: StationOwner, connection: ClientConnection, timeout_s: float):
        super().__init__(owner.charger_id, connection, response_timeout=timeout_s)
        self._init_quirks(owner)
        self.variables_set: list[tuple[str, str, str]] = []

    @on201(Action.set_charging_profile)
    def _on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        """Store the profile if the spec (and the quirks) allow it on this EVSE."""
        status = self._owner.set_profile_201(evse_id, _wire(charging_profile))
        return call_result.SetChargingProfile(status=status)

    @on201(Action.get_composite_schedule)
    def _on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        """The composite schedule of the profiles the station holds, or Rejected."""
        answer = self._owner.composite_schedule(evse_id, duration, charging_rate_unit)
        if answer is None:
            return call_result.GetCompositeSchedule(
                status="Rejected", status_info={"reasonCode": "NotSupported"}
            )
        start, unit, periods = answer
        schedule = {
            "evseId": evse_id,
            "duration": duration,
            "scheduleStart": start,
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods,
        }
        return call_result.GetCompositeSchedule(status="Accepted", schedule=schedule)

    @on201(Action.clear_charging_profile)
    def _on_clear_charging_profile(
        self, charging_profile_id: int | None = None, **_: Any
    ) -> call_result.ClearChargingProfile:
        """Remove the profile with that id (criteria beyond the id are not simulated)."""
        return call_result.ClearChargingProfile(
            status=self._owner.clear_profiles(id=charging_profile_id)
        )

    @on201(Action.get_variables)
    def _on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.GetVariables:
        """Report the variables asked for; unknown ones as ``UnknownVariable``."""
        known = self._owner.variables()
        results = []
        for entry in _wire(get_variable_data):
            name = f"{entry['component']['name']}.{entry['variable']['name']}"
            result = {"component": entry["component"], "variable": entry["variable"]}
            if name in known:
                result |= {"attributeStatus": "Accepted", "attributeValue": known[name]}
            else:
                result["attributeStatus"] = "UnknownVariable"
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on201(Action.set_variables)
    def _on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.SetVariables:
        """Take the sampled-data settings (recorded); refuse anything else."""
        results = []
        for entry in _wire(set_variable_data):
            component, variable = entry["component"]["name"], entry["variable"]["name"]
            ok = component == "SampledDataCtrlr"
            if ok:
                self.variables_set.append((component, variable, str(entry["attributeValue"])))
            results.append(
                {
                    "attributeStatus": "Accepted" if ok else "Rejected",
                    "component": entry["component"],
                    "variable": entry["variable"],
                }
            )
        return call_result.SetVariables(set_variable_result=results)
