"""The S3 Object Lock store: configuration, the client adapter, the WORM store.
"""
