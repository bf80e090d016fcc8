"""The HIL runner: a scenario against the controller and simulated devices, and the CLI.

:func:`run_scenario` starts the rig (:class:`~hil.rig.SimRig`: meter,
controller in-process, chargers over loopback), drives the timeline,
samples the ground truth every 0.5 s, prints a progress line each second
(with the assertions failing so far), and returns a
:class:`~hil.results.ScenarioResult`; with a ``report_dir`` it writes
``report.json``, ``report.md`` and ``plot.png`` there.

:func:`hil_main` is ``headroom hil``::

    headroom hil run SCENARIO.yaml [--policy P] [--report DIR]
    headroom hil compare SCENARIO.yaml --policies a,b [--report DIR]

Both exit 1 when an assertion fails and 2 when the scenario is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from controller.errors import ConfigError
from controller.logs import configure_logging
from controller.service import SiteController
from hil.assertions import judge
from hil.kpis import SiteLimit
from hil.pace import Stay, increases_within_response, stay_offers
from hil.real_devices import RealDeviceMissing
from hil.recorder import SAMPLE_S, Recorder, status_line
from hil.results import REACTION_S, ScenarioResult, compute_kpis
from hil.rig import Plug, SimRig
from hil.scenario import Scenario, load_scenario
from hil.timeline import Action, expand
from hil.timescale import loop_scale, run_scaled
from policies import POLICIES

Out = Callable[[str], None]


def site_limit(scenario: Scenario) -> SiteLimit:
    """The limit the run is judged against."""
    site = scenario.site
    return SiteLimit(site.max_current_a, site.max_power_w, site.safety_margin_a, site.voltage_v)


def allowance_s(scenario: Scenario) -> float:
    """Time over the limit after a disturbance that the EVs' response delay explains."""
    if scenario.over_limit_allowance_s is not None:
        return scenario.over_limit_allowance_s
    # Real cars only (no EV models): ~5 s, the time a car has to follow a reduction.
    slowest = max((ev.max_delay_s for ev in scenario.devices.evs.values()), default=5.0)
    return slowest + REACTION_S


async def run_scenario(
    scenario: Scenario,
    policy: str | None = None,
    report_dir: Path | None = None,
    out: Out = print,
    serve: Callable[[SiteController], AbstractAsyncContextManager[object]] | None = None,
    state_dir: Path | None = None,
) -> ScenarioResult:
    """Run ``scenario`` (under ``policy`` if given); report into ``report_dir``.

    The run goes at the scenario's ``time_scale``: when the running event loop
    goes at another, the run gets a loop of its own at that scale, in a thread.
    ``serve`` is entered with the running controller for the drive (the demo's API);
    with ``state_dir`` the controller keeps its audit log and state store there.
    """
    if loop_scale() != scenario.time_scale:
        return await asyncio.to_thread(
            lambda: run_scaled(
                run_scenario(scenario, policy, report_dir, out, serve, state_dir),
                scenario.time_scale,
            )
        )
    rig = SimRig(scenario, policy, state_dir)
    recorder = Recorder(site_limit(scenario), SAMPLE_S)
    try:
        await rig.start()
        chosen = rig.controller.config.control.policy
        out(f"scenario {scenario.name} · policy {chosen} · {scenario.duration_s:g} s")
        async with contextlib.AsyncExitStack() as stack:
            if serve is not None:
                await stack.enter_async_context(serve(rig.controller))
            await _drive(rig, expand(scenario), recorder, scenario, out)
        plugs = [*rig.finished, *rig.plugs.values()]
        early = increases_within_response(_stays(rig, plugs))
        commands = rig.controller.dispatcher.sent
        controller: dict[str, object] = {
            "setpoint_commands": commands,
            "command_results": dict(rig.controller.dispatcher.results),
            "decisions": rig.controller.loop.decisions,
        }
    finally:
        await rig.stop()
    kpis = compute_kpis(
        recorder,
        plugs,
        commands,
        len(rig.settings),
        scenario.duration_s,
        allowance_s(scenario),
    )
    kpis["increases_within_response"] = early
    verdicts = judge(scenario.assertions, kpis)
    result = ScenarioResult(
        scenario.name,
        scenario.description,
        chosen,
        scenario.duration_s,
        all(v.passed for v in verdicts),
        kpis,
        verdicts,
        recorder.series(),
        controller,
    )
    if report_dir is not None:
        from hil.report import write_report

        result.report_files = await asyncio.to_thread(write_report, result, report_dir)
    return result


def _stays(rig: SimRig, plugs: list[Plug]) -> list[Stay]:
    """Each EV's stay with its charger's offers meanwhile, on the scenario clock."""
    stays = []
    for plug in plugs:
        cp = rig.charge_points[plug.charger_id]
        log = [(at - rig.started_at, c, a) for at, c, a in cp.offers]
        end = plug.departed_s if plug.departed_s is not None else float("inf")
        offers = stay_offers(log, plug.connector_id, plug.arrived_s, end)
        stays.append(Stay(plug.ev.response_delay_s, offers))
    return stays


async def _drive(
    rig: SimRig, actions: list[Action], recorder: Recorder, scenario: Scenario, out: Out
) -> None:
    """Run the timeline and sample every 0.5 s; charger actions run as tasks so sampling
    keeps its pace while a charger answers. No action task outlives the run."""
    tasks: set[asyncio.Task[None]] = set()
    try:
        await _timeline_loop(rig, deque(actions), tasks, recorder, scenario, out)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()  # still running only when the run itself was cancelled or failed
        await asyncio.gather(*tasks, return_exceptions=True)


async def _timeline_loop(
    rig: SimRig,
    pending: deque[Action],
    tasks: set[asyncio.Task[None]],
    recorder: Recorder,
    scenario: Scenario,
    out: Out,
) -> None:
    next_print = next_judge = 0.0
    # Long runs judge less often, and fast ones at most once a real second: judging is CPU
    # the controller's decisions would otherwise wait for, N times longer in scenario time.
    judge_every_s = max(1.0, scenario.duration_s / 300, scenario.time_scale)
    failing: list[str] = []
    while (t := rig.elapsed_s()) < scenario.duration_s:
        while pending and pending[0].at_s <= t:
            action = pending.popleft()
            recorder.event(t, action.label, disturbance=not action.charger_id)
            if action.kind == "limit":  # the manager's change: the run is judged by it from now
                recorder.change_limit(t, rig.change_limit(action.limit_a, action.limit_kw))
                continue
            tasks.add(asyncio.create_task(_act(rig, action, recorder)))
        sample = recorder.take(rig)
        if t >= next_judge:
            next_judge += judge_every_s
            failing = _failing(recorder, scenario, rig)
        if t >= next_print:
            next_print += 1.0
            out(status_line(sample, recorder.in_force, failing))
        await asyncio.sleep(max(0.0, recorder.dt_s - (rig.elapsed_s() - t)))


async def _act(rig: SimRig, action: Action, recorder: Recorder) -> None:
    """One charger action; it disturbs the site once it is done (a session has started)."""
    try:
        await rig.run(action)
    except Exception as exc:  # a failed action is a finding of the run, not a crash
        recorder.event(rig.elapsed_s(), f"{action.label} FAILED: {exc!r}", disturbance=False)
        return
    if action.charger_id:  # a site-wide action disturbed the site when it was noted
        recorder.disturbances.append(rig.elapsed_s())


def _failing(recorder: Recorder, scenario: Scenario, rig: SimRig) -> list[str]:
    """The assertions that would fail if the run ended now."""
    if not scenario.assertions:
        return []
    plugs = [*rig.finished, *rig.plugs.values()]
    elapsed_s = max(rig.elapsed_s(), recorder.dt_s)
    commands = rig.controller.dispatcher.sent
    kpis = compute_kpis(
        recorder, plugs, commands, len(rig.settings), elapsed_s, allowance_s(scenario)
    )
    # Added at the end of a run too; missing, its assertion showed as failing all along.
    kpis["increases_within_response"] = increases_within_response(_stays(rig, plugs))
    return [v.kpi for v in judge(scenario.assertions, kpis) if not v.passed]


# --- the CLI ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headroom hil", description="Run HIL scenarios.")
    parser.add_argument("--log-level", default="warning", help="controller logs (stderr)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario; exit 1 if an assertion fails")
    run.add_argument("scenario", type=Path)
    run.add_argument("--policy", help="override the scenario's policy")
    run.add_argument("--report", type=Path, help="write report.json, report.md, plot.png here")
    compare = sub.add_parser("compare", help="run a scenario under several policies")
    compare.add_argument("scenario", type=Path)
    compare.add_argument("--policies", required=True, help="comma-separated, e.g. a,b")
    compare.add_argument("--report", type=Path, help="one folder per policy, and compare.md")
    return parser


def _load(path: Path) -> Scenario | None:
    try:
        return load_scenario(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _print_verdict(result: ScenarioResult) -> None:
    for v in result.assertions:
        mark = "PASS" if v.passed else "FAIL"
        print(f"  {mark}  {v.text}  (measured {v.actual})")
    print(f"{result.scenario} [{result.policy}]: {'PASSED' if result.passed else 'FAILED'}")
    for name, path in result.report_files.items():
        print(f"  {name}: {path}")


async def _compare(scenario: Scenario, policies: list[str], report: Path | None) -> int:
    from hil.report import compare_table, write_compare

    results = []
    for policy in policies:
        folder = report / policy if report is not None else None
        results.append(await run_scenario(scenario, policy, folder))
        _print_verdict(results[-1])
    print(compare_table(results))
    if report is not None:
        await asyncio.to_thread(write_compare, results, report)
    return 0 if all(r.passed for r in results) else 1


def hil_main(argv: Sequence[str]) -> int:
    """``headroom hil run|compare``: 0 when every assertion passed, 1 if one failed, 2 on a
    bad scenario or bad arguments."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse exits on --help and on errors
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    configure_logging(args.log_level, json_lines=False)
    scenario = _load(args.scenario)
    if scenario is None:
        return 2
    wanted = args.policies.split(",") if args.command == "compare" else [args.policy]
    unknown = [p for p in wanted if p is not None and p.strip() not in POLICIES]
    if unknown:
        known = ", ".join(sorted(POLICIES))
        print(f"unknown policy {', '.join(unknown)}; known: {known}", file=sys.stderr)
        return 2
    if args.command == "compare":
        policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        with contextlib.suppress(KeyboardInterrupt):
            return run_scaled(_compare(scenario, policies, args.report), scenario.time_scale)
        return 130
    with contextlib.suppress(KeyboardInterrupt):
        try:
            result = run_scaled(
                run_scenario(scenario, args.policy, args.report), scenario.time_scale
            )
        except RealDeviceMissing as exc:
            print(f"{args.scenario}: {exc}", file=sys.stderr)
            return 2
        _print_verdict(result)
        return 0 if result.passed else 1
    return 130


if __name__ == "__main__":
    sys.exit(hil_main(sys.argv[1:]))
