"""Pure analysis of probe results: ProbeResult -> findings, and sessions across files. No I/O.

`timing.analyse` runs every per-file check: `timing` (gaps, splices, decode order,
keyframe cadence, audio/video drift), `spacing` (runs of packets closer than any capture
clock), `container` (edit lists, the media they hide, declared duration), `provenance`
(editing-tool tags, encoder signatures, parameter sets), `damage`; `voice` is the AV-9
check after a resume and `sessions` the gaps between files. `models` says how each
container family makes its timestamps; `timeline` and `tolerances` are what they share.
"""
