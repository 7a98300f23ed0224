"""The retention engine: tiers that only go up, applied to the store and appended to the
catalog.
"""
