"""TwoStageSignals on a real loop with real signals (SIGUSR1/SIGUSR2, harmless to pytest)."""

from __future__ import annotations

import asyncio
import os
import signal

from waiting import until

from engine.signals import TwoStageSignals

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


def _kill(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)


async def test_first_then_again_on_the_loop_and_handlers_put_back() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    calls: list[tuple[str, signal.Signals]] = []
    signals = TwoStageSignals(SIGNALS)
    assert signals.install(lambda s: calls.append(("first", s)), lambda s: calls.append(("again", s)))
    _kill(signal.SIGUSR1)
    await until(lambda: len(calls) == 1, "the first signal")
    _kill(signal.SIGUSR2)
    _kill(signal.SIGUSR1)
    await until(lambda: len(calls) == 3, "two more")
    assert calls == [("first", signal.SIGUSR1), ("again", signal.SIGUSR2), ("again", signal.SIGUSR1)]
    assert signals.count == 3 and signals.installed
    signals.remove()
    assert not signals.installed
    assert signal.getsignal(signal.SIGUSR1) == before  # what an embedded pool needs


async def test_signals_caught_early_are_replayed_in_order_and_recorded_after() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    signals = TwoStageSignals(SIGNALS).catch_early()
    try:
        _kill(signal.SIGUSR2)  # no loop handler yet: recorded, not the default (which kills)
        _kill(signal.SIGUSR1)
        assert signals.count == 2 and signals.received == []
        calls: list[tuple[str, signal.Signals]] = []
        signals.install(lambda s: calls.append(("first", s)), lambda s: calls.append(("again", s)))
        await until(lambda: len(calls) == 2, "the replay")
        assert calls == [("first", signal.SIGUSR2), ("again", signal.SIGUSR1)]
        signals.remove()
        _kill(signal.SIGUSR1)  # after the loop: recorded again, harmless
        await asyncio.sleep(0)
        assert signals.count == 3 and len(calls) == 2
    finally:
        signals.restore()
    assert signal.getsignal(signal.SIGUSR1) == before


async def test_install_off_the_main_thread_says_no() -> None:
    signals = TwoStageSignals(SIGNALS)

    def off_thread() -> bool:
        loop = asyncio.new_event_loop()
        try:
            return signals.install(print, print, loop=loop)
        finally:
            loop.close()

    assert await asyncio.to_thread(off_thread) is False
    assert not signals.installed
