"""The worker's event loop: uvloop unless ``worker.uvloop`` turns it off."""

from __future__ import annotations

import asyncio

import uvloop

from streamproc.settings import load_settings
from streamproc.worker import event_loop_policy


def test_the_worker_runs_on_uvloop_unless_turned_off() -> None:
    assert isinstance(event_loop_policy(load_settings(environ={})), uvloop.EventLoopPolicy)
    off = load_settings(environ={"STREAMPROC_WORKER_UVLOOP": "false"})
    assert type(event_loop_policy(off)) is asyncio.DefaultEventLoopPolicy
