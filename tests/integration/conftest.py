"""Fixtures of the integration suites: the worker engine a worker suite runs on."""

from __future__ import annotations

import os

import pytest

WORKER_ENGINES = [e.strip() for e in os.environ.get("CHAT_TEST_WORKER_ENGINES", "native,faust").split(",") if e.strip()]
"""The engines the worker suites run on (``CHAT_WORKER_ENGINE``); ``CHAT_TEST_WORKER_ENGINES=native``
runs only the default one."""


@pytest.fixture(scope="module", params=WORKER_ENGINES)
def worker_engine(request: pytest.FixtureRequest) -> str:
    """``native`` or ``faust``: pass it as ``worker_engine=`` to the settings of the workers."""
    return str(request.param)
