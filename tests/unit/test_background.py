"""Background processes (service.background): the bureau's heavy work runs where a till
never waits behind it, and what it sends back arrives whole."""

from __future__ import annotations

import contextlib
import os
import pickle
import platform
import re
from pathlib import Path

import pytest

from service.background import (
    AUTOGROUP_NICENESS,
    NICENESS,
    SLICE_NS,
    BackgroundPool,
    run_in_background,
)
from service.domain.holders import check_holders_csv
from service.domain.language import Keyed, Said
from service.pin_hashing import PinHashPool, hashes_for


def priority() -> dict[str, object]:
    """How the calling process is scheduled (runs in a background process)."""
    autogroup = Path("/proc/self/autogroup")
    return {
        "pid": os.getpid(),
        "policy": os.sched_getscheduler(0),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "session": os.getsid(0),
        "autogroup": autogroup.read_text() if autogroup.exists() else None,
        "slice": time_slice(),
    }


def time_slice() -> int | None:
    """The calling process's time slice in ns, where the kernel shows it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/sched").read_text().splitlines():
            if line.startswith("se.slice"):
                return int(line.split(":")[1])
    return None


def takes_a_slice_per_task() -> bool:
    """Linux 6.12 on: sched_setattr sets a SCHED_OTHER task's own time slice."""
    release = tuple(int(part) for part in re.findall(r"\d+", platform.release())[:2])
    return platform.system() == "Linux" and release >= (6, 12)


def autogroup_nice(line: str) -> int:
    return int(line.split("nice")[1])


async def test_hashing_processes_run_as_background_work() -> None:
    async with PinHashPool(2) as pool:
        seen = [await pool.run(priority) for _ in range(4)]
        assert await pool.hashes([("123456", None)]) != ["123456"]
    here = priority()
    for worker in seen:
        # The lowest share, not SCHED_IDLE (which a busy host would starve entirely).
        assert worker["policy"] == os.SCHED_OTHER
        assert worker["nice"] == min(19, here["nice"] + NICENESS)
        # A session (and so an autogroup) of its own, at the lowest autogroup priority.
        assert worker["session"] == worker["pid"] != here["session"]
        if worker["autogroup"] is not None:
            assert autogroup_nice(str(worker["autogroup"])) == AUTOGROUP_NICENESS
        # The shortest slice: a till's process that wakes waits at most that long.
        if takes_a_slice_per_task() and here["slice"] is not None:
            assert worker["slice"] == SLICE_NS
    assert here["policy"] == os.SCHED_OTHER, "the server itself keeps its priority"
    assert here["slice"] != SLICE_NS, "and its own slice"


async def test_run_in_background_runs_in_another_process_at_the_lowest_priority() -> None:
    seen = await run_in_background(priority)
    assert seen["pid"] != os.getpid()
    assert seen["nice"] == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)


async def test_a_bad_files_errors_come_back_from_a_background_process_in_both_languages() -> None:
    data = (
        b"card_number,category,display_name,region,valid_until,pin\r\n"
        b"YD-1,veteran,x,,2030-12-31,12\r\n"
    )
    check = await run_in_background(check_holders_csv, data)
    assert check == check_holders_csv(data)
    message = check.errors[0].message
    assert isinstance(message, Said)
    assert message.zh == check_holders_csv(data).errors[0].message.zh  # type: ignore[attr-defined]


def test_said_and_keyed_survive_pickling() -> None:
    said = pickle.loads(pickle.dumps(Said("must be 6–12 digits", "必须为 6–12 位数字")))
    assert (str(said), said.zh) == ("must be 6–12 digits", "必须为 6–12 位数字")
    keyed = pickle.loads(pickle.dumps(Keyed("Longer than 5.", "too_long", {"max": 5})))
    assert (str(keyed), keyed.key, keyed.params) == ("Longer than 5.", "too_long", {"max": 5})


async def test_a_pool_is_used_inside_async_with_only() -> None:
    with pytest.raises(AssertionError):
        BackgroundPool(1).run(hashes_for, [])
