"""The personnel and device registry, the permission table's enforcement (Authority), the
public roster.
"""
