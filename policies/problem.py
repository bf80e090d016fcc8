"""The allocation problem and its answer, as plain frozen data.

This module owns the vocabulary every policy speaks. It holds no I/O, no
clock and no asyncio: the control loop builds an :class:`AllocationProblem`
from a frozen snapshot of the site, a policy turns it into an
:class:`Allocation`, and the dispatcher turns that into commands.

Electrical model (see docs/architecture.md):

* The control variable is the current in amperes per phase that one
  connector may draw; a session draws that current on each of its phases.
* Limits form a tree of :class:`LimitNode` (site → groups → chargers).
  A node may carry a per-phase current limit (every phase) and/or a total
  power limit. Power is derived as nominal voltage × the sum of the phase
  currents (unity power factor: the conservative reading for a fuse).
* ``base_load_a`` is the measured non-controllable load on a node, per site
  phase, already excluding every session below it. It is measured, never
  assumed zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

PHASES = 3
"""Site phases L1, L2, L3 are indexed 0, 1, 2 everywhere."""

IEC_61851_MIN_CURRENT_A = 6.0
"""The lowest AC current a charger can signal: below it the EV stops charging."""

CURRENT_STEP_A = 0.1
"""OCPP 1.6 limits are multiples of 0.1; policies floor to it so sums never round up."""

DEFAULT_MIN_RUN_S = DEFAULT_MIN_PAUSE_S = 300.0
"""5 minutes: a car that charges in turns neither flaps nor starves, and each pause is
long enough that the next car can show what it draws."""


@dataclass(frozen=True, slots=True)
class LimitNode:
    """One node of the limit tree: the site, a feeder, a panel or a charger.

    ``max_current_a`` holds on every phase; ``max_power_w`` on the sum of the
    phases. ``margin_a`` is kept free on every phase (and ``margin_a`` × voltage
    × phases on the power limit). ``parent`` is ``None`` only for the root.
    """

    id: str
    parent: str | None = None
    max_current_a: float | None = None
    max_power_w: float | None = None
    margin_a: float = 0.0
    base_load_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    label: str = ""

    def name(self) -> str:
        """The label used in explanations, e.g. ``site`` or ``feeder-a``."""
        return self.label or self.id


@dataclass(frozen=True, slots=True)
class SessionDemand:
    """A connector with a car that wants current.

    ``phases`` are the site phases the car draws on (after the charger's
    phase rotation): ``(0, 1, 2)`` for a three-phase car, ``(1,)`` for a
    single-phase car on site L2. ``max_current_a`` is already the lowest of
    charger, cable and what the EV has shown it can take. ``weight`` is the
    priority: a session with twice the weight gets twice the share.

    ``running_for_s`` / ``paused_for_s`` say how long the session has been
    charging (given at least its minimum) or paused (given 0 A) without a
    break, as the caller measured it; ``None`` when unknown (a session
    with neither counts as just paused). They only decide who pauses among
    sessions of equal weight when not every minimum fits (see
    :mod:`policies.pausing`); set the one that applies.

    ``departure_s`` (seconds from now until the car leaves) and ``energy_wh``
    (the energy it still needs by then) are read by ``deadline`` only, and
    only when both are given; the other policies ignore them.

    ``held_a`` is the current the session holds now (the last setpoint its
    charger accepted; ``None`` or 0 when it holds none). Only ``deadline``
    reads it: a plan that takes current away from a car that holds it pays a
    small cost, so ties resolve toward the present and equal cars do not swap
    from one tick to the next.
    """

    connector_id: str
    node: str
    phases: tuple[int, ...] = (0, 1, 2)
    max_current_a: float = 32.0
    min_current_a: float = IEC_61851_MIN_CURRENT_A
    weight: float = 1.0
    running_for_s: float | None = None
    paused_for_s: float | None = None
    departure_s: float | None = None
    energy_wh: float | None = None
    held_a: float | None = None


DEFAULT_SLOT_S = 900.0
"""15 minutes: the slot of a horizon plan, and the billing period of a demand peak."""

DEFAULT_SLOTS = 96
"""24 h of 15-minute slots."""


@dataclass(frozen=True, slots=True)
class Horizon:
    """How ``deadline`` plans ahead; the other policies ignore it.

    ``now_s`` is the wall-clock UNIX time at the start of slot 0 (data, not a
    clock read: the policy stays pure). ``prices`` is the energy price of each
    slot from now (any currency per kWh; slots past the end take the last
    price; empty: no prices). ``peak_cap_w`` caps the site's total power in
    every slot (the 15-minute peak), base load included. ``base_forecast_a``
    is the root node's base load per site phase for slot ``k`` (entry ``k``);
    slot 0 always takes the measured ``base_load_a`` (now is measured, not
    forecast), and slots past the end of the forecast hold the measured value.
    """

    slot_s: float = DEFAULT_SLOT_S
    slots: int = DEFAULT_SLOTS
    now_s: float = 0.0
    prices: tuple[float, ...] = ()
    peak_cap_w: float | None = None
    base_forecast_a: tuple[tuple[float, float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class AllocationProblem:
    """Everything a policy may look at: the limit tree and the sessions.

    ``nodes`` lists the root first and every parent before its children.
    ``min_run_s`` / ``min_pause_s``: a session is not paused to let another
    run before it has charged this long, nor resumed before it has waited
    this long, when the sessions say how long (5 minutes by default).
    ``horizon`` holds the settings of the ``deadline`` plan (:class:`Horizon`).
    """

    nodes: tuple[LimitNode, ...]
    sessions: tuple[SessionDemand, ...]
    voltage_v: float = 230.0
    min_run_s: float = DEFAULT_MIN_RUN_S
    min_pause_s: float = DEFAULT_MIN_PAUSE_S
    horizon: Horizon = Horizon()

    def node_map(self) -> dict[str, LimitNode]:
        """Nodes by id."""
        return {node.id: node for node in self.nodes}

    def ancestors(self, node_id: str) -> list[LimitNode]:
        """The node itself and every node above it, nearest first."""
        nodes = self.node_map()
        chain: list[LimitNode] = []
        current: str | None = node_id
        while current is not None:
            node = nodes[current]
            chain.append(node)
            current = node.parent
        return chain


@dataclass(frozen=True, slots=True)
class ConnectorAllocation:
    """The current one connector may draw per phase, and why.

    ``reason`` names the constraint that bound it, e.g. ``site L2``,
    ``feeder-a power``, ``session max`` or
    ``paused: minimum not available, priority 1``.
    """

    connector_id: str
    current_a: float
    reason: str


class ConnectorTable(Mapping[str, ConnectorAllocation]):
    """A read-only mapping of allocation entries stored as columns.

    A policy answers thousands of connectors per tick, and building one frozen
    entry per connector costs more than solving. The table keeps the columns
    (ids, currents, a function that words row ``i``'s reason) and builds an
    entry the first time it is read, once. It compares equal to a dict with
    the same entries. ``ids`` must be unique.
    """

    __slots__ = ("_built", "_current_a", "_ids", "_index", "_reason")

    def __init__(
        self, ids: tuple[str, ...], current_a: list[float], reason: Callable[[int], str]
    ) -> None:
        self._ids = ids
        self._current_a = current_a
        self._reason = reason
        self._index: dict[str, int] | None = None
        self._built: dict[str, ConnectorAllocation] = {}

    def _rows(self) -> dict[str, int]:
        if self._index is None:
            self._index = {key: i for i, key in enumerate(self._ids)}
        return self._index

    def __getitem__(self, key: str) -> ConnectorAllocation:
        entry = self._built.get(key)
        if entry is None:
            row = self._rows()[key]
            entry = ConnectorAllocation(key, self._current_a[row], self._reason(row))
            self._built[key] = entry
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._rows()

    @property
    def ids(self) -> tuple[str, ...]:
        """The connector ids, in the order of the columns."""
        return self._ids

    def current_list(self) -> list[float]:
        """The currents, in the order of :attr:`ids` (a copy)."""
        return list(self._current_a)

    def currents_a(self) -> dict[str, float]:
        """Current by connector id, without building the entries."""
        return dict(zip(self._ids, self._current_a, strict=True))

    def rows(self) -> Iterator[tuple[str, float, str]]:
        """(id, current, reason) of every row, in column order, without building the entries
        (an entry already built gives its own reason: the same words)."""
        built, reason = self._built, self._reason
        for row, (key, current_a) in enumerate(zip(self._ids, self._current_a, strict=True)):
            entry = built.get(key)
            yield key, current_a, entry.reason if entry is not None else reason(row)

    def __repr__(self) -> str:
        return f"ConnectorTable({dict(self.items())!r})"


@dataclass(frozen=True, slots=True)
class Unserved:
    """A session the plan cannot give the energy it needs by its departure.

    ``short_wh`` is what it will lack at ``departure_s`` (seconds from now)
    out of ``energy_wh`` needed.
    """

    connector_id: str
    short_wh: float
    energy_wh: float
    departure_s: float


@dataclass(frozen=True, slots=True)
class Allocation:
    """A policy's answer: one entry per session of the problem.

    ``connectors`` is any mapping from connector id to entry: a plain dict, or
    the :class:`ConnectorTable` the policies return. ``unserved`` lists the
    sessions a horizon plan cannot serve in time (``deadline`` only).
    """

    connectors: Mapping[str, ConnectorAllocation] = field(default_factory=dict)
    unserved: tuple[Unserved, ...] = ()

    def rows(self) -> Iterator[tuple[str, float, str]]:
        """(connector id, current, reason) of every entry; read from the columns when the
        answer is a :class:`ConnectorTable` (a thousand entries cost more than the solve)."""
        connectors = self.connectors
        if isinstance(connectors, ConnectorTable):
            return connectors.rows()
        return ((key, e.current_a, e.reason) for key, e in connectors.items())

    def current_a(self, connector_id: str) -> float:
        """The current given to a connector (0 if it has none)."""
        entry = self.connectors.get(connector_id)
        return entry.current_a if entry else 0.0

    def currents_a(self) -> dict[str, float]:
        """Every connector's current by id (fast for a :class:`ConnectorTable`)."""
        if isinstance(self.connectors, ConnectorTable):
            return self.connectors.currents_a()
        return {key: entry.current_a for key, entry in self.connectors.items()}
