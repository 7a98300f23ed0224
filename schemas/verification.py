"""The one result of every verification: fixity, the audit chain, the ledger, the self-test,
the catalog, a court-export package (`custody verify PACKAGE`, the receiver's check).

A verification checks `checked` things (objects, audit records, ledger lines, self-test
checks, catalog parts) of one `target` and records every failure as a `Finding` with a
stable code (`FIXITY_MISMATCH`, `OBJECT_MISSING`, `AUDIT_CHAIN_BROKEN`, `LEDGER_CHAIN_BROKEN`,
`STORE_SELFTEST_FAILED`, `CATALOG_PART_*`, `CATALOG_COMMIT*`), each naming its own
subject. `ok` means no finding. So a report, an exit code, an audit record or a court
export's making record reads every kind the same way; what only one kind knows (the audit
chain's first break, the self-test's passed checks) stays on that kind's own report beside
its `verification`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.media import Finding, Subject

KINDS: tuple[str, ...] = (
    "fixity", "audit_chain", "ledger", "store_selftest", "catalog", "package",
)


@dataclass(frozen=True, slots=True)
class Verification:
    """`checked` things of `target` were verified; every failure is one of `findings`.

    `note` says what a pass does and does not prove (tamper-evident or tamper-proof)."""

    kind: str
    target: Subject
    checked: int
    findings: tuple[Finding, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown verification kind {self.kind!r}")
        if self.checked < 0:
            raise ValueError(f"checked must not be negative, not {self.checked}")

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        """One line: what was verified and how it came out."""
        what = f"{self.kind} of {self.target.kind} {self.target.id or ''}".rstrip()
        if self.ok:
            return f"{what}: OK, {self.checked} checked"
        return f"{what}: FAILED, {self.checked} checked, {len(self.findings)} findings"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": {"kind": self.target.kind, "id": self.target.id},
            "checked": self.checked,
            "ok": self.ok,
            "note": self.note,
            "findings": [
                {"code": f.code, "rule": f.rule, "severity": f.severity,
                 "title_en": f.title_en, "title_zh": f.title_zh,
                 "subject": {"kind": f.subject.kind, "id": f.subject.id},
                 "detail": f.detail}
                for f in self.findings
            ],
        }
