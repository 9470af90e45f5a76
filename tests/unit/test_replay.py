"""``streamproc replay``: alerts as JSON lines, bad lines reported by number, a true summary."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import orjson
import pytest

from streamproc.cli import main
from streamproc.dev.processes import streamproc_command


def write_events(path: Path, count: int, *, shift_at: int, bad_every: int = 0) -> int:
    """``count`` one-feature events over 4 models (a mean shift at ``shift_at``); returns the
    number of bad lines written among them."""
    rng = random.Random(1)
    bad = 0
    with path.open("wb") as out:
        for i in range(count):
            if bad_every and i % bad_every == bad_every - 1:
                out.write(b'{"model": "m0", "features": \n')
                bad += 1
                continue
            mean = 3.0 if i >= shift_at else 0.0
            event = {"model": f"m{i % 4}", "id": str(i), "features": {"x": rng.gauss(mean, 1)}}
            out.write(orjson.dumps(event) + b"\n")
    return bad


def test_replay_writes_alerts_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, alerts = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl"
    bad = write_events(events, 20_000, shift_at=10_000, bad_every=1000)
    with events.open("ab") as out:
        out.write(b"\n[1, 2]\n")
    assert main(["replay", str(events), "--out", str(alerts)]) == 0
    err = capsys.readouterr().err
    assert "line 1000: invalid_json:" in err
    assert "line 20002[0]: not_an_object:" in err
    assert f"lines: {20_000 + 1}" in err
    assert f"events: {20_000 - bad}" in err
    assert f"invalid_json: {bad}" in err
    written = [orjson.loads(line) for line in alerts.read_bytes().splitlines()]
    assert {a["stream"]["model"] for a in written} == {"m0", "m1", "m2", "m3"}
    # m3 lost 10 events to the bad lines, so its shift starts at its 2491st event.
    assert all(a["stream"]["kind"] == "value" and a["events_seen"] > 2490 for a in written)
    assert all(a["change"]["direction"] == "up" for a in written)
    firing = [a for a in written if a["status"] == "firing"]
    assert f"alerts: {len(firing)}" in err
    assert f"resolved: {len(written) - len(firing)}" in err, "resolutions are counted apart"


def test_replay_of_a_million_events_shows_progress_and_counts_them(tmp_path: Path) -> None:
    events, alerts = tmp_path / "events.jsonl", tmp_path / "alerts.jsonl"
    write_events(events, 1_000_000, shift_at=600_000)
    args = ["replay", str(events), "--progress", "--out", str(alerts)]
    done = subprocess.run(
        streamproc_command(*args),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert "replay: 100%" in done.stderr
    assert "events: 1000000" in done.stderr
    assert "rejections: 0" in done.stderr
    models = {orjson.loads(line)["stream"]["model"] for line in alerts.read_bytes().splitlines()}
    assert models == {"m0", "m1", "m2", "m3"}


def test_missing_events_file_names_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/nonexistent/events.jsonl"]) == 2
    assert "/nonexistent/events.jsonl" in capsys.readouterr().err
