"""The demo (`python -m pipeline.demo`) and the synthetic media it writes; may import av.
"""
