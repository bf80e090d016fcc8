"""The ``headroom`` command: run the service, the demo, or check a config file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from controller.config import HeadroomConfig, load_sites
from controller.errors import ConfigError
from controller.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headroom", description="Load management controller for EV charging sites."
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the controller for the site(s) in a config file")
    run.add_argument("--config", required=True, help="the site's YAML config")
    run.add_argument("--console-logs", action="store_true", help="readable logs instead of JSON")

    demo = sub.add_parser("demo", help="a simulated site and the controller, in one process")
    demo.add_argument("--chargers", type=int, default=10, help="simulated chargers (default 10)")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    demo.add_argument("--report", help="write the run's KPIs as JSON to this file")
    demo.add_argument("--seed", type=int, default=1, help="random seed for the EVs")
    demo.add_argument("--log-json", action="store_true", help="controller logs as JSON on stderr")
    demo.add_argument(
        "--api-port", type=int, default=8080, help="dashboard and API port (default 8080)"
    )
    demo.add_argument("--no-api", action="store_true", help="serve no dashboard or API")
    demo.add_argument(
        "--state-dir",
        help="keep the audit log and operator settings here (default: a temporary directory)",
    )

    solve = sub.add_parser(
        "solve", help="solve an allocation problem (JSON) with a policy and explain it"
    )
    solve.add_argument("solve_args", nargs=argparse.REMAINDER, help="PROBLEM.json [--policy NAME]")

    hil = sub.add_parser(
        "hil",
        help="run HIL scenarios: hil run SCENARIO.yaml [--policy P] [--report DIR], "
        "hil compare SCENARIO.yaml --policies a,b [--report DIR]",
    )
    hil.add_argument("hil_args", nargs=argparse.REMAINDER, help="see `headroom hil run --help`")

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("file")

    hashing = sub.add_parser(
        "hash-password", help="hash a charger's OCPP password for its password_hash key"
    )
    hashing.add_argument(
        "--generate", action="store_true", help="make a new random password and print both"
    )

    audit = sub.add_parser(
        "audit", help="print or export the audit log of decisions, commands and operator changes"
    )
    source = audit.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", help="the audit database file")
    source.add_argument("--config", help="the site config (its audit.path is read)")
    audit.add_argument("--site", help="with --config of several sites: which one")
    audit.add_argument("--since", help="ISO time, e.g. 2026-11-21T18:00")
    audit.add_argument("--until", help="ISO time (exclusive)")
    audit.add_argument("--charger", help="only this charger's commands")
    audit.add_argument("--kind", choices=["all", "decisions", "commands", "changes"], default="all")
    audit.add_argument("--format", choices=["table", "csv", "json"], default="table")
    return parser


def _check_config(path: str) -> int:
    try:
        sites = load_sites(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("OK" if len(sites) == 1 else f"OK ({len(sites)} sites)")
    return 0


async def _run_until_signalled(service: Coroutine[Any, Any, None]) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(service)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _run(path: str, console_logs: bool, level: str) -> int:
    try:
        sites = load_sites(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return 1
    configure_logging(level, json_lines=not console_logs)
    try:
        asyncio.run(_run_until_signalled(_serve_sites(sites)))
    except ValueError as exc:  # a malformed HEADROOM_API_TOKENS
        print(f"headroom run: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve_sites(sites: list[HeadroomConfig]) -> None:
    """The sites, and the API over them when a site config has ``api:`` (the first one's)."""
    from controller.api.server import ApiServer, tokens_for
    from controller.deployment import run_sites
    from controller.service import SiteController

    settings = next((c.api for c in sites if c.api is not None), None)
    if settings is None:
        await run_sites(sites)
        return
    running: dict[str, SiteController] = {}

    def factory(config: HeadroomConfig) -> SiteController:
        running[config.site.id] = SiteController(config)  # a restarted site replaces its entry
        return running[config.site.id]

    server = ApiServer(settings, running, tokens_for(settings))
    await server.start()
    try:
        await run_sites(sites, factory)
    finally:
        await server.stop()


def _demo(args: argparse.Namespace) -> int:
    from hil.demo import run_demo

    if args.chargers < 1 or args.duration <= 0:
        print("demo: --chargers must be ≥ 1 and --duration > 0", file=sys.stderr)
        return 2
    configure_logging(
        "warning" if args.log_level == "info" else args.log_level, json_lines=args.log_json
    )
    api_port = None if args.no_api else args.api_port
    if api_port is not None:
        from controller.api.auth import ENV_VAR, parse_env_tokens

        try:
            parse_env_tokens(os.environ.get(ENV_VAR, ""))
        except ValueError as exc:
            print(f"headroom demo: {exc}", file=sys.stderr)
            return 1
    demo = run_demo(
        args.chargers,
        args.duration,
        args.report,
        args.seed,
        out=print,
        api_port=api_port,
        state_dir=args.state_dir,
    )
    report = asyncio.run(demo)
    keys = (
        "limit_kw",
        "peak_site_kw",
        "seconds_over_limit",
        "seconds_over_limit_unexplained",
        "delivered_kwh",
        "available_kwh",
        "utilization",
        "setpoint_commands",
    )
    print(json.dumps({k: report[k] for k in keys}))
    if args.report:
        print(f"report written to {args.report}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from controller.audit import AuditQuery, format_records, read_audit

    path = args.db
    if path is None:
        try:
            sites = load_sites(args.config)
        except ConfigError as exc:
            print("\n".join(f"{exc.source}: {p}" for p in exc.problems), file=sys.stderr)
            return 1
        config = next((c for c in sites if args.site in (None, c.site.id)), None)
        if config is None:
            print(f"{args.config}: no site {args.site!r}", file=sys.stderr)
            return 1
        if config.audit is None:
            print(f"{args.config}: no audit section: nothing is recorded", file=sys.stderr)
            return 1
        path = config.audit.path
    if not Path(path).exists():
        print(f"audit: no database at {path}", file=sys.stderr)
        return 1
    query = AuditQuery(args.since, args.until, args.charger, args.kind)
    sys.stdout.write(format_records(list(read_audit(path, query)), args.format))
    return 0


def _hash_password(generate: bool) -> int:
    from controller.ocpp.auth import hash_password, new_password

    if generate:
        plain = new_password()
        print(f"password: {plain}")
    elif sys.stdin.isatty():
        plain = getpass.getpass("charger password (16–40 characters): ")
    else:
        plain = sys.stdin.readline().rstrip("\n")
    try:
        print(f"password_hash: {hash_password(plain)}")
    except ValueError as exc:
        print(f"hash-password: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``headroom`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.file)
    if args.command == "run":
        return _run(args.config, args.console_logs, args.log_level)
    if args.command == "demo":
        return _demo(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "hash-password":
        return _hash_password(args.generate)
    if args.command == "solve":
        from policies.solve_cli import solve_main

        return solve_main(list(args.solve_args))
    if args.command == "hil":
        from hil.runner import hil_main

        hil_args = list(args.hil_args)
        if args.log_level != "info":  # `headroom --log-level debug hil run ...`, as for demo
            hil_args = ["--log-level", args.log_level, *hil_args]
        return hil_main(hil_args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
