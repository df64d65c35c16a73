"""The daemon process's garbage-collector settings (gatewayd/gctune.py)."""

import gc

import pytest
import trio

from gatewayd import gctune


def test_start_up_objects_are_frozen_and_young_collections_come_far_less_often():
    before = gc.get_threshold()
    try:
        gctune.tune_for_daemon()
        assert gc.get_threshold() == gctune.THRESHOLDS
        assert gctune.THRESHOLDS[0] > 10 * before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_full_collections_run_on_a_schedule(autojump_clock):
    full_collections = []

    def seen(phase, info):
        if phase == "start" and info["generation"] == 2:
            full_collections.append(round(trio.current_time()))

    gc.callbacks.append(seen)
    try:
        with trio.move_on_after(250):
            await gctune.collect_periodically(100)
    finally:
        gc.callbacks.remove(seen)
    assert {100, 200} <= set(full_collections)


def test_freed_large_blocks_go_back_to_the_kernel_on_glibc():
    import platform

    from gatewayd.gctune import return_large_blocks

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator setting is glibc's")
    assert return_large_blocks() is True
