"""up's supervisor: ready means the ready line and then the child's own check; a child that
cannot start as configured is not restarted."""

from __future__ import annotations

import io
import sys

from chat_events.supervisor import EXIT_CONFIG, Child, Supervisor

PY = sys.executable


def test_ready_waits_for_the_check_after_the_ready_line() -> None:
    answers = iter([False, False, True])
    asked: list[str | None] = []

    def check(child: Child) -> bool:
        asked.append(child.ready_line)
        return next(answers)

    child = Child("edge", [PY, "-c", "import time; print('x ready now', flush=True); time.sleep(60)"], {})
    child.ready_marker, child.ready_check = " ready now", check
    supervisor = Supervisor([child], out=io.StringIO(), grace_s=5)
    try:
        supervisor.start_all()
        assert supervisor.wait_ready(60)
        assert len(asked) == 3 and asked[0] is not None and "x ready now" in asked[0]
    finally:
        supervisor.stop_all()


def test_a_check_that_never_passes_is_not_ready() -> None:
    child = Child("edge", [PY, "-c", "import time; print('ready', flush=True); time.sleep(60)"], {}, "ready")
    child.ready_check = lambda _: False
    supervisor = Supervisor([child], out=io.StringIO(), grace_s=5)
    try:
        supervisor.start_all()
        assert not supervisor.wait_ready(1.0)
    finally:
        supervisor.stop_all()


def test_a_check_that_raises_counts_as_not_yet() -> None:
    calls: list[int] = []

    def check(_: Child) -> bool:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("not listening yet")
        return True

    child = Child("edge", [PY, "-c", "import time; print('ready', flush=True); time.sleep(60)"], {}, "ready")
    child.ready_check = check
    supervisor = Supervisor([child], out=io.StringIO(), grace_s=5)
    try:
        supervisor.start_all()
        assert supervisor.wait_ready(60) and len(calls) == 2
    finally:
        supervisor.stop_all()


def test_a_child_that_cannot_start_as_configured_is_not_restarted() -> None:
    out = io.StringIO()
    child = Child("edge", [PY, "-c", f"import sys; print('port in use', flush=True); sys.exit({EXIT_CONFIG})"], {})
    supervisor = Supervisor([child], out=out, grace_s=5)
    started: list[Child] = []
    try:
        supervisor.start_all()
        assert not supervisor.wait_ready(60)  # it exited: not ready, at once
        assert supervisor.supervise(on_restart=started.append) == 1
    finally:
        supervisor.stop_all()
    assert started == []
    assert "edge cannot start as configured" in out.getvalue() and "restarting" not in out.getvalue()


def test_a_crashing_child_is_still_restarted() -> None:
    out = io.StringIO()
    child = Child("worker", [PY, "-c", "import sys; sys.exit(1)"], {})
    supervisor = Supervisor([child], out=out, grace_s=5)
    restarted: list[Child] = []

    def on_restart(c: Child) -> None:
        restarted.append(c)
        supervisor.stopping.set()

    try:
        supervisor.start_all()
        assert supervisor.supervise(on_restart=on_restart) == 0
    finally:
        supervisor.stop_all()
    assert restarted == [child] and "worker exited with code 1; restarting" in out.getvalue()
