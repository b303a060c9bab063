"""results/ retention: the oldest full_suite_* runs go, nothing else is touched."""

from __future__ import annotations

from wsrig.retention import prune_runs, runs_to_prune


def test_keeps_newest_runs_only():
    """With keep=2 the two newest timestamps stay; other folder names are never candidates."""
    names = ["full_suite_20260101_000003", "full_suite_20260101_000001", "selftest_20250101_000000",
             "adhoc", "full_suite_20260101_000002"]  # fmt: skip
    assert runs_to_prune(names, 2) == ["full_suite_20260101_000001"]


def test_keep_zero_keeps_everything_and_latest_is_protected():
    """keep < 1 prunes nothing; the folder 'latest' points at is never removed."""
    names = [f"full_suite_20260101_00000{i}" for i in range(5)]
    assert runs_to_prune(names, 0) == []
    assert "full_suite_20260101_000000" not in runs_to_prune(names, 1, {"full_suite_20260101_000000"})


def test_prune_runs_on_disk(tmp_path):
    """Folders are removed on disk; the latest symlink and other folders survive."""
    for i in range(4):
        (tmp_path / f"full_suite_20260101_00000{i}").mkdir()
    (tmp_path / "selftest_x").mkdir()
    (tmp_path / "latest").symlink_to("full_suite_20260101_000000")
    removed = [p.name for p in prune_runs(tmp_path, 2)]
    assert removed == ["full_suite_20260101_000001"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["full_suite_20260101_000000", "full_suite_20260101_000002", "full_suite_20260101_000003",
                    "latest", "selftest_x"]  # fmt: skip
