"""The S3 Object Lock store: `config` (S3Config, TransferSettings), `client` (the boto3
client and the one translation of its errors), `store` (the WORM store: locked puts,
BLAKE3-checked multipart, head, retention, holds), `objects` (the catalog's named objects).
"""
