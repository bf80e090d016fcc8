"""Settings of a meter read over Modbus TCP.

Kept apart from :mod:`controller.config` so the per-node meter settings
(:mod:`controller.meters.node_settings`) can extend it; ``controller.config``
re-exports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.meters.registers import RegisterMap


class MeterSettings(BaseModel):
    """The grid-connection meter, read over Modbus TCP.

    ``map`` names a built-in register map; ``map_file`` a YAML map of your own
    (same format as ``controller/meters/maps/``), which wins when both are set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1)] = "grid"
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    map: Annotated[str, Field(min_length=1)] = "sdm630"
    map_file: Annotated[str, Field(min_length=1)] | None = None
    poll_interval_s: Annotated[float, Field(ge=0.25, le=60)] = 1.0
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.5

    @model_validator(mode="after")
    def _check(self) -> Self:
        from controller.meters.registers import builtin_map_names, load_map_file

        if self.map_file is not None:
            try:
                load_map_file(Path(self.map_file))
            except (OSError, ValueError) as exc:
                raise ValueError(f"meter.map_file {self.map_file}: {exc}") from exc
        elif self.map not in builtin_map_names():
            known = ", ".join(builtin_map_names())
            raise ValueError(f"meter.map {self.map!r} is not a built-in map; known: {known}")
        return self

    def register_map(self) -> RegisterMap:
        """The register map to read with."""
        from controller.meters.registers import load_builtin_map, load_map_file

        if self.map_file is not None:
            return load_map_file(Path(self.map_file))
        return load_builtin_map(self.map)
