"""Identifiers that only have to be unique (`echo_stream.ids`)."""

from __future__ import annotations

import os
import re

from echo_stream.ids import hex_id
from echo_stream.ops.record import new_request_id, valid_request_id


def test_ids_have_their_shape_and_do_not_repeat() -> None:
    ids = {hex_id("chatcmpl-", 29) for _ in range(100_000)}
    assert len(ids) == 100_000
    assert all(re.fullmatch(r"chatcmpl-[0-9a-f]{29}", i) for i in list(ids)[:100])
    request_id = new_request_id()
    assert re.fullmatch(r"req_[0-9a-f]{24}", request_id) and valid_request_id(request_id)


def test_a_forked_worker_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out
        os.write(write, " ".join(hex_id("x") for _ in range(5)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = set(os.read(read, 4096).decode().split())
    parent = {hex_id("x") for _ in range(5)}
    os.close(read)
    os.close(write)
    assert len(child) == 5 and not child & parent
