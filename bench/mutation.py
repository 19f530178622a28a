"""Mutation testing of the pure domain: mutmut over service/domain with the unit tests.

    .venv/bin/python bench/mutation.py [--max-children 2] [--no-run]

mutmut (configured in pyproject.toml, [tool.mutmut]) copies service/ and schemas/ to
./mutants, mutates service/domain there and runs, for each mutant, the unit tests that
reach the mutated function (none of them needs PostgreSQL). This prints the mutants
total, killed, survived, timed out and reached by no test, the kill rate, and the
surviving mutants per module (`.venv/bin/mutmut show NAME` prints one's diff).

Kill rate = (killed + timeout) / (total − skipped): a mutant reached by no test counts
as not killed, like a survivor. The second rate leaves out the prose mutants — those
whose only change is to a string literal with a space in it (an error's detail, a
message), or that replace such a literal by None or drop it as an argument: they change
what a person reads, never a code, key, format or decision, and the tests do not pin
prose. Goal: ≥ 90 %.
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "bench" / "out" / "mutmut.log"
GOAL = 0.90
NOT_KILLED = ("survived", "no tests", "suspicious", "segfault", "not checked")
_LITERAL = re.compile(r"""[rbuf]*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", re.IGNORECASE)


def run_mutmut(max_children: int) -> float:
    """Run `mutmut run` in the repository root (its output to bench/out/mutmut.log)."""
    mutmut = Path(sys.executable).with_name("mutmut")
    LOG.parent.mkdir(exist_ok=True)
    # mutmut keeps a mutant's result while its function is unchanged, even when the tests
    # changed: a survivor a new test kills would still be counted. Start from nothing.
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    started = time.monotonic()
    with LOG.open("w") as log:
        done = subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"mutmut run exited with {done.returncode}; see {LOG}")
    return time.monotonic() - started


def results() -> dict[str, tuple[str, Path]]:
    """Every mutant's name → (status, source path), read from mutants/."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    found: dict[str, tuple[str, Path]] = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in data.exit_code_by_key.items():
            found[name] = (status_by_exit_code[exit_code], path)
    return found


def is_prose(diff: str) -> bool:
    """Whether a mutant's diff changes only a prose literal (see the module docstring)."""
    lines = diff.splitlines()
    removed = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    if len(removed) != 1 or len(added) != 1:
        return False
    before, after = removed[0], added[0]
    prose = [m for m in _LITERAL.finditer(before) if " " in m.group(1)]
    if not prose:
        return False
    blank = _LITERAL.sub(lambda m: '"S"' if " " in m.group(1) else m.group(0), before)
    if blank == _LITERAL.sub(lambda m: '"S"' if " " in m.group(1) else m.group(0), after):
        return True
    for literal in prose:
        head, tail = before[: literal.start()], before[literal.end() :]
        if after in (head + "None" + tail, head.rstrip(", ") + tail, head + tail.lstrip(", ")):
            return True
        if after == re.sub(r",\s*$", ", ", head) + tail.lstrip(", "):
            return True
    return False


def module_of(name: str) -> str:
    return name.split(".x", 1)[0].rsplit("__mutmut_", 1)[0]


def rate(counts: Counter[str]) -> tuple[int, float]:
    tested = sum(counts.values()) - counts["skipped"]
    killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    return tested, (killed / tested if tested else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-children", type=int, default=2, help="mutmut's processes")
    parser.add_argument("--no-run", action="store_true", help="report the last run only")
    args = parser.parse_args()

    os.chdir(ROOT)
    if not args.no_run:
        seconds = run_mutmut(args.max_children)
        print(f"mutmut run --max-children {args.max_children}: {seconds:.0f} s")
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    found = results()
    if not found:
        raise SystemExit("no mutants in mutants/: run without --no-run first")
    counts = Counter(status for status, _ in found.values())
    prose = {
        name for name, (_, path) in found.items() if is_prose(get_diff_for_mutant(name, path=path))
    }
    counts_not_prose = Counter(status for name, (status, _) in found.items() if name not in prose)

    total = sum(counts.values())
    print(f"mutants    {total:5d}")
    for status in ("killed", "timeout", "survived", "no tests", "skipped", "suspicious"):
        print(f"{status:<10} {counts[status]:5d}")
    for other in sorted(set(counts) - {"killed", "timeout", "survived", "no tests", "skipped"}):
        if other != "suspicious":
            print(f"{other:<10} {counts[other]:5d}")
    tested, kill_rate = rate(counts)
    print(
        f"kill rate  {kill_rate:6.1%}  (killed + timeout) / (total − skipped) = "
        f"{counts['killed'] + counts['timeout']}/{tested}; goal ≥ {GOAL:.0%}"
    )
    tested_np, kill_rate_np = rate(counts_not_prose)
    print(
        f"           {kill_rate_np:6.1%}  the same without the {len(prose)} prose mutants "
        f"(only a string literal with a space changed) = "
        f"{counts_not_prose['killed'] + counts_not_prose['timeout']}/{tested_np}"
    )

    left: dict[str, list[str]] = defaultdict(list)
    for name, (status, _) in sorted(found.items()):
        if status in NOT_KILLED and name not in prose:
            left[module_of(name)].append(f"{name.rsplit('.', 1)[1]} ({status})")
    prose_left = Counter(module_of(n) for n in prose if found[n][0] in NOT_KILLED)
    print("\nnot killed, prose left out (mutmut show NAME):")
    for module, names in sorted(left.items()):
        print(f"  {module} ({len(names)}, and {prose_left[module]} prose)")
        for name in names:
            print(f"    {name}")
    for module in sorted(set(prose_left) - set(left)):
        print(f"  {module} (0, and {prose_left[module]} prose)")


if __name__ == "__main__":
    main()
