"""Which setpoints go out, in which order: decreases first, increases past a deadband, renewals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.dispatch import ChangeKind, Held, plan_changes
from controller.targets import Target


def target(charger: str, limit_a: float, tx: int = 1) -> Target:
    """A target on connector 1 of ``charger``."""
    return Target(charger, 1, tx, limit_a, "test")


def plan(targets: dict[str, Target], held: dict[str, Held], now: float = 100.0) -> list:
    """plan_changes with the defaults the tests share: fail-safe 6 A, deadband 1 A, renew 60 s."""
    return plan_changes(targets, held, now, failsafe_a=6.0, deadband_a=1.0, renew_after_s=60.0)


def test_decreases_come_before_increases() -> None:
    """Invariant 5: a charger that must give up current is told before another may take it."""
    targets = {"a/1": target("a", 20.0), "b/1": target("b", 10.0)}
    held = {"a/1": Held(10.0, 90.0, 1), "b/1": Held(20.0, 90.0, 1)}
    changes = plan(targets, held)
    assert [(c.key, c.kind) for c in changes] == [
        ("b/1", ChangeKind.DECREASE),
        ("a/1", ChangeKind.INCREASE),
    ]


def test_small_decreases_always_go_out_small_increases_do_not() -> None:
    """The deadband suppresses small increases only: every decrease is needed to hold the limit."""
    targets = {"a/1": target("a", 9.7), "b/1": target("b", 10.3)}
    held = {"a/1": Held(10.0, 90.0, 1), "b/1": Held(10.0, 90.0, 1)}
    assert [c.key for c in plan(targets, held)] == ["a/1"]


def test_resume_from_pause_is_sent_even_below_deadband() -> None:
    """A paused session (0 A) that may charge again is told so."""
    changes = plan({"a/1": target("a", 6.0)}, {"a/1": Held(0.0, 90.0, 1)})
    assert [c.kind for c in changes] == [ChangeKind.INCREASE]


def test_first_setpoint_is_compared_with_the_failsafe() -> None:
    """A new session runs on its 6 A default: 4 A is a decrease, 6.5 A installs the lease."""
    assert plan({"a/1": target("a", 4.0)}, {})[0].kind is ChangeKind.DECREASE
    [renew] = plan({"a/1": target("a", 6.5)}, {})
    assert renew.kind is ChangeKind.RENEW
    assert renew.target.limit_a == 6.5


def test_lease_is_renewed_at_half_time() -> None:
    """Invariant 3: a held setpoint is sent again before its lease runs out."""
    held = {"a/1": Held(16.0, 30.0, 1)}
    assert plan({"a/1": target("a", 16.2)}, held, now=80.0) == []
    [renew] = plan({"a/1": target("a", 16.2)}, held, now=95.0)
    assert renew.kind is ChangeKind.RENEW
    assert renew.target.limit_a == 16.0


def test_new_transaction_forgets_the_old_setpoint() -> None:
    """A setpoint held for an earlier transaction says nothing about the new one."""
    changes = plan({"a/1": target("a", 4.0, tx=2)}, {"a/1": Held(4.0, 99.0, 1)})
    assert [c.kind for c in changes] == [ChangeKind.DECREASE]
    assert changes[0].old_a == 6.0


limits = st.integers(min_value=0, max_value=320).map(lambda tenths: tenths / 10)  # 0.1 A steps


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefgh"), st.tuples(limits, limits), max_size=8))
def test_plan_order_and_completeness(pairs: dict[str, tuple[float, float]]) -> None:
    """Every decrease is planned, all before any increase; no increase is within the deadband."""
    targets = {f"{k}/1": target(k, new) for k, (new, _) in pairs.items()}
    held = {f"{k}/1": Held(old, 99.0, 1) for k, (_, old) in pairs.items()}
    changes = plan(targets, held)
    kinds = [c.kind for c in changes]
    first_increase = (
        kinds.index(ChangeKind.INCREASE) if ChangeKind.INCREASE in kinds else len(kinds)
    )
    assert ChangeKind.DECREASE not in kinds[first_increase:]
    decreases = {c.key for c in changes if c.kind is ChangeKind.DECREASE}
    assert decreases == {f"{k}/1" for k, (new, old) in pairs.items() if new < old}
    for c in changes:
        if c.kind is ChangeKind.INCREASE:
            assert c.target.limit_a > c.old_a + 1.0 or c.old_a == 0.0


def test_resume_from_pause_does_not_wait_for_the_increase_interval() -> None:
    """A paused car is resumed at once (long pauses lose cars), other increases wait."""
    held = {
        "a/1": Held(0.0, 99.0, 1, changed_at=98.0, increased_at=98.0),
        "b/1": Held(8.0, 99.0, 1, 98.0, 98.0),
    }
    targets = {"a/1": target("a", 10.0), "b/1": target("b", 12.0)}
    changes = plan_changes(targets, held, 100.0, 6.0, 0.5, 60.0, min_increase_interval_s=5.0)
    assert [(c.key, c.kind) for c in changes] == [("a/1", ChangeKind.INCREASE)]
