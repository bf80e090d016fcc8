"""Reading a config file: YAML in, one or several validated sites out, and every
problem as one ``key.path: reason`` line (:class:`~controller.errors.ConfigError`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from controller.config.site import HeadroomConfig
from controller.errors import ConfigError


def _location(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


def format_errors(error: ValidationError) -> list[str]:
    """One line per problem: ``key.path: reason``."""
    lines = []
    for item in error.errors():
        loc = [p for p in item["loc"] if isinstance(p, int | str)]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/configuration.md)"
        lines.append(f"{_location(loc)}: {message}")
    return lines


def parse_config(data: Any, source: str = "<config>") -> HeadroomConfig:
    """Validate already-parsed YAML; raises ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys to values"])
    try:
        return HeadroomConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_errors(exc)) from exc


def load_config(path: str | Path) -> HeadroomConfig:
    """Read and validate a one-site YAML config file; raises ConfigError listing every problem."""
    return parse_config(_read_yaml(path), str(path))


def parse_sites(data: Any, source: str = "<config>") -> list[HeadroomConfig]:
    """One site, or several under ``sites:``, each validated; errors name ``sites[i].key``."""
    if not (isinstance(data, dict) and "sites" in data):
        return [parse_config(data, source)]
    extra = sorted(set(data) - {"sites"})
    sites = data["sites"]
    problems = [f"{key}: unknown key beside sites (each site carries its own)" for key in extra]
    if not isinstance(sites, list) or not sites:
        raise ConfigError(source, [*problems, "sites: expected a non-empty list of site configs"])
    configs: list[HeadroomConfig] = []
    for i, item in enumerate(sites):
        try:
            configs.append(parse_config(item, source))
        except ConfigError as exc:
            problems += [f"sites[{i}].{p}" for p in exc.problems]
    problems += _clashes(configs)
    if problems:
        raise ConfigError(source, problems)
    return configs


def _clashes(configs: list[HeadroomConfig]) -> list[str]:
    """Sites in one process must differ in id and in the ports they listen on."""
    problems = []
    seen: dict[object, int] = {}
    for i, c in enumerate(configs):
        keys: list[tuple[str, object]] = [("site.id", c.site.id)]
        if c.ocpp.port:
            keys.append(("ocpp.port", c.ocpp.port))
        if c.metrics is not None and c.metrics.port:
            keys.append(("metrics.port", c.metrics.port))
        for name, value in keys:
            if (name, value) in seen:
                problems.append(
                    f"sites[{i}].{name}: {value} is also used by sites[{seen[name, value]}]"
                )
            seen.setdefault((name, value), i)
    return problems


def load_sites(path: str | Path) -> list[HeadroomConfig]:
    """Read and validate a config file of one site or several; ConfigError lists every problem."""
    return parse_sites(_read_yaml(path), str(path))


def _read_yaml(path: str | Path) -> Any:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}not valid YAML: {problem}"]) from exc
    return data
