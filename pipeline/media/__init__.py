"""Media files -> ProbeResult: content sniffing, pure container parsers (ISO BMFF, EXIF) and
the PyAV probe, the only module that imports av.
"""
