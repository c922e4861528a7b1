"""``save`` is atomic: a process killed with SIGKILL at any moment leaves the target
holding the complete old file or the complete new one, never anything else.

A child saves object A and object B alternately to one path, as fast as it can;
the parent kills it after a random delay spread over several save durations,
then checks the path. Saves use a fixed ``SOURCE_DATE_EPOCH``, so "complete"
can be checked byte for byte as well as by loading.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import modelsafe

from ._crafting import deep_equal
from ._payloads import kill_payload

REPO = Path(__file__).resolve().parent.parent
KILLS = 50
EPOCH = "1700000000"

_CHILD = """
import sys, time
import modelsafe
from tests._payloads import kill_payload

path, mode = sys.argv[1], sys.argv[2]
objs = [kill_payload("A"), kill_payload("B")]
if mode == "calibrate":
    for which, obj in zip("AB", objs):
        with open(f"{path}.{which}", "wb") as fh:
            fh.write(modelsafe.dumps(obj))
    start = time.perf_counter()
    for i in range(6):
        modelsafe.save(objs[i % 2], path)
    print((time.perf_counter() - start) / 6, flush=True)
    sys.exit(0)
print("ready", flush=True)
i = 1  # the parent put A in place: the first save writes B
while True:
    modelsafe.save(objs[i % 2], path)
    i += 1
"""


def _child(path: Path, mode: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), SOURCE_DATE_EPOCH=EPOCH)
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), mode],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_kill_during_save_leaves_old_or_new_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "model.msafe"
    calib = _child(target, "calibrate")
    out, _ = calib.communicate(timeout=120)
    assert calib.returncode == 0
    save_time = float(out.strip())
    expected = {w: Path(f"{target}.{w}").read_bytes() for w in "AB"}
    assert expected["A"] != expected["B"]
    objects = {w: kill_payload(w) for w in "AB"}

    rng = random.Random(20240611)
    seen = {"A": 0, "B": 0}
    leftovers = 0
    for _ in range(KILLS):
        target.write_bytes(expected["A"])
        with _child(target, "run") as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            # Spread the kills over the first few saves: before, inside and between them.
            time.sleep(rng.uniform(0, 4 * save_time))
            proc.send_signal(signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL

        data = target.read_bytes()
        which = [w for w, b in expected.items() if b == data]
        assert which, (
            f"after a kill the target holds {len(data)} bytes that are neither file A "
            f"({len(expected['A'])} bytes) nor file B"
        )
        got = modelsafe.load(target)
        assert deep_equal(got, objects[which[0]])
        seen[which[0]] += 1

        temps = list(tmp_path.glob(f".{target.name}.*.tmp"))
        leftovers += len(temps)
        for t in temps:
            t.unlink()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [target.name, f"{target.name}.A", f"{target.name}.B"]
        ), "the save left something other than its temporary file"

    with capsys.disabled():
        print(
            f"\n[atomic kill] {KILLS} kills, save takes {save_time * 1000:.0f} ms: target held "
            f"A {seen['A']}x, B {seen['B']}x; {leftovers} temporary file(s) left behind"
        )
    assert seen["A"] and seen["B"], f"the kills never caught both states: {seen}"
