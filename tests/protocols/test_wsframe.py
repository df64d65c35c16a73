"""Server text frames encoded once for every client read back as the same single message with
wsproto's own frame parser, at every length encoding."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from gatewayd.web.wsframe import SharedText, text_frame


def parse(data: bytes):
    reader = FrameProtocol(client=True, extensions=[])
    reader.receive_bytes(data)
    return list(reader.received_frames())


@pytest.mark.parametrize("text", ["", "x" * 125, "x" * 126, "x" * 65535, "x" * 65536, "é" * 100, "é" * 40_000])
def test_one_final_text_frame_at_every_length_encoding(text):
    (frame,) = parse(text_frame(text))
    assert frame.opcode is Opcode.TEXT
    assert frame.frame_finished and frame.message_finished
    assert frame.payload == text


def test_frames_written_back_to_back_stay_separate_messages():
    texts = ['{"Seq":1}', "x" * 300, '{"Seq":3}']
    frames = parse(b"".join(text_frame(t) for t in texts))
    assert [f.payload for f in frames] == texts


def test_shared_text_encodes_once():
    shared = SharedText('{"a":1}')
    assert shared.frame is shared.frame
    assert shared.frame == text_frame('{"a":1}')
