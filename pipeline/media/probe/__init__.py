"""The PyAV adapter: the only package that imports av (besides the demo's media writer).

`demux` turns one file into per-stream packet timelines and its own claims (`probe`);
`audio` decodes audio after a resume for the voice check. PyAV objects never leave it.
"""

from pipeline.media.probe.audio import AudioLevels, audio_levels
from pipeline.media.probe.demux import probe

__all__ = ["AudioLevels", "audio_levels", "probe"]
