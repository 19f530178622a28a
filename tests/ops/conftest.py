"""The image, built once per test session for every module of tests/ops."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from tests.ops import image


def skip_or_fail(reason: str) -> None:
    if os.environ.get("YOUDAI_REQUIRE_OPS_TOOLS") == "1":
        pytest.fail(f"{reason} (YOUDAI_REQUIRE_OPS_TOOLS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def built() -> str:
    missing = image.missing_tools()
    if missing:
        skip_or_fail(f"no {', '.join(missing)} on this machine: the image is not built")
    try:
        print(image.ensure_base_image())
    except RuntimeError as error:
        skip_or_fail(str(error))
    # One tag per checkout: work trees side by side on one machine never run each other's.
    tag = f"localhost/youdai:test-{hashlib.sha256(str(image.ROOT).encode()).hexdigest()[:8]}"
    started = time.monotonic()
    done = image.build(tag)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    print(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag
