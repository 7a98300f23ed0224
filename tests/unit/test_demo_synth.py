"""pipeline.demo.synth keeps its public names after the stream-copy edits moved to edits.py."""

from __future__ import annotations

from pipeline.demo import edits, synth


def test_the_edits_are_still_called_as_synth_functions() -> None:
    assert synth.drop_packets is edits.drop_packets
    assert synth.drop_and_retime is edits.drop_and_retime
    assert synth.splice is edits.splice
    assert set(synth.__all__) >= {"drop_and_retime", "drop_packets", "splice", "write_long"}
