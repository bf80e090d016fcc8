"""The state store keeps what it is given across a reopen, by kind and key."""

from datetime import UTC, datetime
from pathlib import Path

from controller.store import StateStore

AT = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def test_values_survive_a_reopen_and_kinds_do_not_mix(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.put("settings", "site", {"max_current_a": 80.0}, AT)
    store.put("settings", "site", {"max_current_a": 63.0}, AT)
    store.put("belief", "cp-1/1", {"phases": [0]}, AT)
    store.close()

    store = StateStore(path)
    assert store.get("settings", "site") == {"max_current_a": 63.0}
    assert store.items("belief") == {"cp-1/1": {"phases": [0]}}
    assert store.get("belief", "site") is None
    store.delete("belief", "cp-1/1")
    assert store.items("belief") == {}
    store.close()
