"""Court export: requests and approvals (AV-14, AV-15).
"""
