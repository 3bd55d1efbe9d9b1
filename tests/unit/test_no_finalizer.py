"""No Kopf handler of the operator requires a finalizer, so a guard never blocks its own
deletion or its namespace's (handlers._no_finalizer; e2e: test_namespace_deletion.py).
Reads Kopf's registry, a private structure: a Kopf upgrade that changes it fails here."""

import asyncio
import dataclasses

import kopf

import releaseguard.handlers as handlers


def test_the_guard_daemon_requires_no_finalizer():
    registry = kopf.get_default_registry()
    daemons = [h for h in registry._spawning.get_all_handlers() if h.fn is handlers.guard_daemon]

    assert len(daemons) == 1
    assert daemons[0].requires_finalizer is False


def test_no_handler_requires_a_finalizer():
    registry = kopf.get_default_registry()
    handlers_ = [
        *registry._spawning.get_all_handlers(),
        *registry._changing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
    ]

    assert handlers_
    assert [h.id for h in handlers_ if getattr(h, "requires_finalizer", None)] == []


def test_kopf_adds_a_finalizer_for_a_daemon_by_default():
    """The reason for _no_finalizer: without it, Kopf's daemon handler requires one."""
    registry = kopf.OperatorRegistry()

    @kopf.daemon("example.com", "v1", "things", registry=registry)
    async def daemon(**_: object) -> None:
        pass

    (handler,) = registry._spawning.get_all_handlers()
    assert handler.requires_finalizer is True
    assert dataclasses.is_dataclass(handler)


class NeverStopped:
    """Kopf's DaemonStopped as _pause uses it: wait(seconds) returns after `seconds`."""

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def test_a_deleted_guards_daemon_wakes_at_once():
    async def scenario() -> float:
        deleted = handlers._DELETED.setdefault("uid-1", asyncio.Event())
        loop = asyncio.get_running_loop()
        started = loop.time()
        pause = asyncio.create_task(handlers._pause(NeverStopped(), deleted, 30))
        await handlers._notice_deletion(type="MODIFIED", uid="uid-1")
        await asyncio.sleep(0.05)
        assert not pause.done()
        await handlers._notice_deletion(type="DELETED", uid="uid-1")
        await asyncio.wait_for(pause, timeout=5)
        handlers._DELETED.pop("uid-1", None)
        return loop.time() - started

    assert asyncio.run(scenario()) < 1


def test_a_pause_lasts_its_time_when_nothing_happens():
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await handlers._pause(NeverStopped(), asyncio.Event(), 0.2)
        return loop.time() - started

    assert 0.19 <= asyncio.run(scenario()) < 1
