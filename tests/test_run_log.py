"""The run log that counts job executions across processes reads what workers wrote, even
while they write and when one was killed mid-record."""

from __future__ import annotations

from tests.run_log import record, runs


def test_a_record_cut_short_or_still_being_written_is_not_read(record_dir, monkeypatch):
    monkeypatch.setenv("SKYLINE_TEST_RECORD_DIR", str(record_dir))
    record("slow_start", n=1)
    with open(record_dir / "runs.log", "a") as log:
        log.write('\n{"kind": "slow_start", "pid": 1, "t": 1.0, "n')  # its writer was killed
    record("slow_start", n=2)
    with open(record_dir / "runs.log", "a") as log:
        log.write('\n{"kind": "slow_start", "pid": 2, "t": 2.0, "n": 3}')  # no newline yet

    assert [r["n"] for r in runs(record_dir, "slow_start")] == [1, 2]
