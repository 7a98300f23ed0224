"""Tests only: an Authority that acts as whoever each call names.

The library binds an `Authority` to the one person `acting` resolved (issue 10), so a test
that checks the permission table for many people on one registry rebinds before each call.
`AnyoneAuthority` does that by re-running `acting(staff_id, caller=PERSONAL)`: a personal
installation's caller, whose `--as` is taken as given (README "Deployment and identity").
The decisions, refusals and audit records are the real Authority's; nothing in `pipeline`
can construct one.
"""

from __future__ import annotations

import os

from pipeline.people.identity import Caller, OsAccount
from pipeline.people.permissions import Authority

PERSONAL = Caller(OsAccount(os.getuid(), "test"), None, personal=True,
                  why="tests: a personal installation")


class AnyoneAuthority(Authority):
    """Each check acts as the staff ID it names (tests of the permission table)."""

    def _require_bound(self, actor_id: str, action: str, object_id: str) -> None:
        if actor_id != self.bound:
            self.acting(actor_id, caller=PERSONAL)
        super()._require_bound(actor_id, action, object_id)


def anyone(auth: Authority) -> AnyoneAuthority:
    """The same registry and audit log, acting as whoever each call names."""
    return AnyoneAuthority(auth.registry, auth.audit)


def bound(auth: Authority, staff_id: str) -> Authority:
    """`auth` bound to `staff_id` as a personal installation's caller (one person acts)."""
    auth.acting(staff_id, caller=PERSONAL)
    return auth
