"""AV-5 activity types: the enforcement steps that must be recorded.

Held as data so a label file can name them in English or Chinese.
"""

from __future__ import annotations

from types import MappingProxyType

ACTIVITY_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {
        "random_inspection": "随机抽查",
        "onsite_inspection": "现场检查",
        "complaint_handling": "处理投诉、举报现场执法",
        "investigation": "调查取证",
        "evidence_preservation": "先行登记保存证据",
        "document_service": "执法文书送达",
        "hearing": "听证",
        "other": "其他应当同步录音录像的执法活动",
    }
)

_BY_ZH = {zh: en for en, zh in ACTIVITY_TYPES.items()}


def normalise_activity(value: str) -> str:
    """The English code for an activity given in English or Chinese; ValueError if unknown."""
    v = value.strip()
    if v in ACTIVITY_TYPES:
        return v
    if v in _BY_ZH:
        return _BY_ZH[v]
    raise ValueError(
        f"unknown activity type {value!r}; expected one of {', '.join(ACTIVITY_TYPES)}"
    )
