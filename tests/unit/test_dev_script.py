"""dev.py, the README's two commands: `serve` installs only what serving needs (a fresh
clone's demo is up quickly), `test` and `install` add the test extra."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, list[str]]:
    """dev.py loaded as a module, with a venv in tmp_path and pip calls recorded."""
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "STAMP", tmp_path / ".youdai-installed")
    installs: list[str] = []
    monkeypatch.setattr(module, "ensure_venv", lambda: None)
    monkeypatch.setattr(module.subprocess, "check_call", lambda argv: installs.append(argv[-1]))
    monkeypatch.setattr(module.os, "execv", lambda *args: None)
    monkeypatch.setattr(module.os, "chdir", lambda *args: None)
    monkeypatch.setattr(sys, "argv", ["dev.py"])
    return module, installs


def test_serve_installs_the_service_without_the_test_extra(dev) -> None:
    module, installs = dev
    module.main(["serve", "--demo"])
    assert installs == [str(ROOT)]
    module.main(["serve"])
    assert installs == [str(ROOT)], "installed again though nothing changed"


def test_test_adds_the_test_extra_once_and_serve_keeps_it(dev) -> None:
    module, installs = dev
    module.main(["serve"])
    module.main(["test", "-q"])
    module.main(["test", "-q"])
    module.main(["serve"])
    assert installs == [str(ROOT), f"{ROOT}[test]"]


def test_install_installs_everything(dev) -> None:
    module, installs = dev
    assert module.main(["install"]) == 0
    assert installs == [f"{ROOT}[test]"]


def test_serve_is_development_so_sigterm_does_not_wait(
    dev, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = dev
    monkeypatch.delenv("YOUDAI_SHUTDOWN_DELAY", raising=False)
    module.main(["serve"])
    assert module.os.environ["YOUDAI_SHUTDOWN_DELAY"] == "0"
