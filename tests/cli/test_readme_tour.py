"""The README's curl tour works as printed (issue 32): every command of it, run with real
curl against a real `youdai serve --demo`, answers 2xx, and the sample answers it shows
name fields the real answers have. The tour's variables are set as a reader sets them:
the keys from the demo's printout, the rest from the answer whose sample shows the value.
A command, variable or sample added to the README is covered without touching this file."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cli.test_demo import DemoServer
from tests.conftest import cli_env, free_port

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
#: Where the README's demo runs; the test's server is elsewhere.
README_BASE = "http://127.0.0.1:8080"
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>\S+)")
#: The status line curl -w prints after the answer.
_STATUS = "\n__status__ "
_WRITE_OUT = shlex.quote(_STATUS + "%{http_code}")


@dataclass
class Command:
    text: str
    sample: list[str] = field(default_factory=list)  # the answer the README shows


@dataclass
class Assignment:
    name: str
    value: str


def tour() -> tuple[str, list[Command | Assignment]]:
    """The demo printout the README shows, and its tour: commands (continuation lines
    joined) with the sample answers shown under them, and variable assignments."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A tour with curl", 1)[1].split("\n## ", 1)[0]
    printout = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    script = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert printout and script, "the tour's printout or its commands are missing"
    steps: list[Command | Assignment] = []
    lines = iter(script.group(1).splitlines())
    in_sample = False
    for line in lines:
        if line.startswith("curl "):
            while line.endswith("\\"):
                line = line[:-1] + next(lines).strip()
            steps.append(Command(line))
            in_sample = True
        elif line.startswith("# ") and in_sample and re.match(r"# ({|HTTP/| )", line):
            command = steps[-1]
            assert isinstance(command, Command)
            command.sample.append(line[2:])
        else:
            in_sample = False
            match = _ASSIGNMENT.match(line)
            if match:
                steps.append(Assignment(match["name"], match["value"]))
            else:
                assert not line or line.startswith("#"), f"a line the test cannot run: {line}"
    return printout.group(1), steps


def first_value(data: Any, key: str) -> Any:
    """The value of the first `key` in the answer, in document order."""
    stack = [data]
    while stack:
        item = stack.pop(0)
        if isinstance(item, dict):
            if key in item:
                return item[key]
            stack[:0] = list(item.values())
        elif isinstance(item, list):
            stack[:0] = item
    raise AssertionError(f"no {key!r} in the answer")


def keys_in(data: Any) -> set[str]:
    found: set[str] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.update(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@dataclass
class Answer:
    status: int
    json: Any


def run(command: str, variables: dict[str, str]) -> Answer:
    """One command of the tour in bash with real curl, the tour's variables set."""
    script = (
        "set -eu\n"
        + "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items())
        + f'curl() {{ command curl --max-time 30 -w {_WRITE_OUT} "$@"; }}\n'
        + command
        + "\n"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (command, done.stderr)
    output, _, status = done.stdout.rpartition(_STATUS)
    if output.startswith("HTTP/"):  # curl -i: the body follows the headers
        output = re.split(r"\r?\n\r?\n", output, maxsplit=1)[1]
    return Answer(int(status), json.loads(output) if output.strip() else None)


def value_from(
    name: str,
    abbreviation: str,
    printout: str,
    demo_printout: str,
    answered: list[tuple[Command, Answer]],
    base: str,
) -> str:
    """What a reader sets `name` to: the README's URL on the reader's port, a value of
    the demo's printout on the line the README shows it, or the field of an earlier
    answer whose sample shows it (the latest such answer)."""
    if abbreviation.startswith(README_BASE):
        return base + abbreviation[len(README_BASE) :]
    stem = abbreviation.rstrip("…")
    for command, answer in reversed(answered):
        match = re.search(r'"(\w+)":"' + re.escape(stem), "\n".join(command.sample))
        if match:
            return str(first_value(answer.json, match[1]))
    for line in printout.splitlines():
        if stem in line:
            label = line.split(stem, 1)[0].strip()
            real = re.search(rf"^\s*{re.escape(label)}\s+(\S+)", demo_printout, re.MULTILINE)
            assert real, f"the demo prints no {label!r} line"
            return real[1]
    raise AssertionError(f"{name}={abbreviation}: no sample answer or printout line shows it")


async def test_every_command_of_the_readme_tour_answers_2xx(
    tmp_path: Path, database_url: str
) -> None:
    printout, steps = tour()
    env = cli_env(YOUDAI_DATA_DIR=str(tmp_path / "data"), DATABASE_URL=database_url)
    server = DemoServer(env, free_port(), tmp_path / "demo.log")
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
        # The printout's first line is the one the README shows.
        assert printout.splitlines()[0] in server.printed, server.printed
        variables: dict[str, str] = {}
        answered: list[tuple[Command, Answer]] = []
        for step in steps:
            if isinstance(step, Assignment):
                variables[step.name] = value_from(
                    step.name, step.value, printout, server.printed, answered, server.base
                )
                continue
            answer = run(step.text, variables)
            assert 200 <= answer.status < 300, (step.text, answer.status, answer.json)
            sample = "\n".join(step.sample)
            status_line = re.match(r"HTTP/\S+ (\d{3})", sample)
            if status_line:
                assert answer.status == int(status_line[1]), (step.text, answer.status)
            shown = set(re.findall(r'"(\w+)":', sample))
            assert shown <= keys_in(answer.json), (step.text, shown - keys_in(answer.json))
            answered.append((step, answer))
        assert len(answered) >= 10, [command.text for command, _ in answered]
        assert sum(" -X POST " in command.text for command, _ in answered) >= 5
    finally:
        server.stop()
