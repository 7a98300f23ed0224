"""Every finding code Custody can raise, listed once.

A finding is data, not an exception: analysis records it and goes on. Each code is
stable (reports, tests and court exports refer to it), belongs to one rule of
`RULES.md`, one category and one default severity, and carries the English and Chinese
title a town official reads. `proves` says honestly what the signal can and cannot show.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    INTERRUPTION = "interruption"
    EDIT = "edit"
    DAMAGE = "damage"
    TIMING = "timing"
    PROVENANCE = "provenance"
    LABELLING = "labelling"
    DEADLINE = "deadline"
    SAFEGUARD = "safeguard"  # the archive's own protections: audit chain, ledger, WORM store
    COMPLIANCE = "compliance"  # a case's duties: steps recorded, exemptions, preservation


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FindingCode:
    code: str
    rule: str
    category: Category
    severity: Severity
    title_en: str
    title_zh: str
    proves: str


_C = Category
_S = Severity

CODES: dict[str, FindingCode] = {
    c.code: c
    for c in (
        # --- AV-9: interruptions -------------------------------------------------
        FindingCode(
            "GAP_IN_STREAM", "AV-9", _C.INTERRUPTION, _S.ERROR,
            "Interruption inside the recording", "录制中断",
            "Presentation times jump far beyond the stream's own packet spacing: recording "
            "stopped, or packets were removed without retiming. Cannot tell which.",
        ),
        FindingCode(
            "GAP_BETWEEN_FILES", "AV-9", _C.INTERRUPTION, _S.WARNING,
            "Interruption between files of one session", "同一执法过程的录像之间存在中断",
            "The next file of the same device (same case, within 10 minutes) starts later "
            "than the previous one ended. Times come from labels or the device clock.",
        ),
        FindingCode(
            "UNEXPLAINED_INTERRUPTION", "AV-9", _C.INTERRUPTION, _S.ERROR,
            "Interruption without a spoken explanation", "中断后未作语音说明",
            "In the 10 s after recording resumed a voice-activity detector (Silero VAD, after "
            "steady hum and tones are removed) hears less than 1 s of speech, or there is no "
            "audio. It detects a human voice, not what was said: an officer speaking about "
            "something else counts as an explanation.",
        ),
        FindingCode(
            "NO_SPEECH_AT_START", "AV-9", _C.INTERRUPTION, _S.INFO,
            "No speech at the start of the recording", "录像开头无语音说明",
            "In the first 10 s of a recording of a known device the voice-activity detector "
            "hears less than 1 s of speech, or there is no audio. Not a fault alone: where "
            "the file resumes a case's session after an interruption between files, the case "
            "check reports UNEXPLAINED_INTERRUPTION about the case from it.",
        ),
        # --- AV-9: edits ------------------------------------------------------------
        FindingCode(
            "TS_BACKWARDS", "AV-9", _C.EDIT, _S.ERROR,
            "Timestamps run backwards", "时间戳倒退",
            "Decode timestamps decrease: segments were joined or reordered.",
        ),
        FindingCode(
            "TS_REPEATED", "AV-9", _C.EDIT, _S.ERROR,
            "Timestamps repeat", "时间戳重复",
            "Two packets of one stream carry the same decode timestamp.",
        ),
        FindingCode(
            "DTS_AFTER_PTS", "AV-9", _C.EDIT, _S.WARNING,
            "Decode time after presentation time", "解码时间晚于显示时间",
            "A packet is decoded after it is due to be shown: a broken or rewritten index.",
        ),
        FindingCode(
            "SPLICE_IRREGULAR_DURATION", "AV-9", _C.EDIT, _S.ERROR,
            "Irregular packet spacing at a possible splice", "疑似拼接处帧间隔异常",
            "A regular stream has one odd packet spacing: typical of a stream-copy join or "
            "of whole GOPs removed and retimed. A re-encode leaves no such trace.",
        ),
        FindingCode(
            "TS_REWRITTEN", "AV-9", _C.EDIT, _S.ERROR,
            "Timestamps rewritten by a muxer", "时间戳经封装软件改写",
            "A run of packets is presented closer together than any capture clock spaces "
            "them (far under the stream's own frame spacing, or over 300 frames a second): "
            "software wrote those times, as a stream-copy join or cut does (FFmpeg's concat "
            "demuxer leaves packets one tick apart). Shows where, not what was removed.",
        ),
        FindingCode(
            "KEYFRAME_INTERVAL_BREAK", "AV-9", _C.EDIT, _S.WARNING,
            "Keyframe interval breaks", "关键帧间隔异常",
            "A regular keyframe interval is broken by a short group of pictures: typical "
            "of a join between two recordings.",
        ),
        FindingCode(
            "CODEC_PARAMS_CHANGED", "AV-9", _C.EDIT, _S.ERROR,
            "Codec parameters change mid-stream", "编码参数中途改变",
            "The stream's coding parameters or encoder signature change inside one file: "
            "footage from another recording may have been inserted.",
        ),
        FindingCode(
            "EDIT_LIST", "AV-9", _C.EDIT, _S.WARNING,
            "Edit list trims or shifts media", "编辑列表裁剪或平移了媒体",
            "The container tells players to skip or delay part of the stored media. Some "
            "phones write this on their own; editors and trimmers do too.",
        ),
        FindingCode(
            "EDIT_LIST_OFFSET", "AV-9", _C.TIMING, _S.INFO,
            "Edit list offsets the start of the media", "编辑列表偏移了媒体起点",
            "One edit list entry starts presentation a little into the stored media, or "
            "delays it, by no more than a device writes on its own (encoder delay, audio "
            "priming, sensor start-up; iPhones hide up to about half a second). Trimming "
            "tools write the same structure, so this records the amount but proves no edit; "
            "larger offsets, several pieces or a cut-off end are EDIT_LIST.",
        ),
        FindingCode(
            "HIDDEN_MEDIA", "AV-9", _C.EDIT, _S.WARNING,
            "File keeps media its edit list hides", "文件中保留了被编辑列表隐藏的音像内容",
            "Packets stored in the file are never shown: an edit list (or the container's "
            "discard marks) hides them, beyond what an encoder's delay explains (AAC "
            "priming, Opus pre-skip). A stream-copy trim leaves exactly this; the hidden "
            "packets are still in the file and can be examined. Phones hide up to about "
            "half a second of video on their own, so it is raised only when the audio hides "
            "recorded sound too; video hidden alone is EDIT_LIST_OFFSET or EDIT_LIST.",
        ),
        FindingCode(
            "DURATION_MISMATCH", "AV-9", _C.EDIT, _S.WARNING,
            "Container duration disagrees with the streams", "容器时长与媒体流时长不一致",
            "The declared duration differs from what the packets cover.",
        ),
        FindingCode(
            "EDITING_TOOL", "AV-9", _C.PROVENANCE, _S.WARNING,
            "Metadata shows an editing or re-muxing tool", "元数据显示经编辑或转封装软件处理",
            "Encoder or handler tags name software that edits or re-muxes video. Proves "
            "the file passed through that tool, not what it changed.",
        ),
        # --- AV-3 / AV-16: damage ----------------------------------------------------
        FindingCode(
            "MEDIA_UNREADABLE", "AV-3", _C.DAMAGE, _S.ERROR,
            "Media cannot be read", "音像资料无法读取",
            "The file looks like media but no demuxer can open it.",
        ),
        FindingCode(
            "MEDIA_TRUNCATED", "AV-3", _C.DAMAGE, _S.ERROR,
            "Media is truncated", "音像资料不完整（截断）",
            "The file ends before the media its index describes.",
        ),
        FindingCode(
            "MEDIA_CORRUPT", "AV-3", _C.DAMAGE, _S.ERROR,
            "Media is corrupt", "音像资料损坏",
            "The demuxer reported errors while reading packets.",
        ),
        # --- AV-8: timing -------------------------------------------------------------
        FindingCode(
            "AV_DRIFT", "AV-9", _C.TIMING, _S.WARNING,
            "Audio and video drift apart", "音视频不同步",
            "Audio and video cover different spans of time.",
        ),
        FindingCode(
            "CREATION_TIME_MISMATCH", "AV-8", _C.TIMING, _S.WARNING,
            "Recording time differs from the labelled time", "录制时间与标注时间不一致",
            "The creation time in the file is far from the labelled start time: wrong "
            "label, wrong device clock, or a file from another occasion.",
        ),
        # --- AV-10: devices --------------------------------------------------------------
        FindingCode(
            "DEVICE_UNKNOWN", "AV-10", _C.PROVENANCE, _S.WARNING,
            "Recorded on an unregistered device", "录制设备未登记",
            "The device serial (from labels or metadata) is not in the device registry, is "
            "retired, or the file names no device: it has no custodian (AV-10), and the "
            "footage may not come from agency equipment (AV-4).",
        ),
        # --- AUX-2/3: auxiliary staff never act alone -------------------------------------
        FindingCode(
            "AUXILIARY_ONLY", "AUX-2/3", _C.LABELLING, _S.ERROR,
            "Only auxiliary staff took part", "仅有辅助人员参与执法",
            "Every person labelled on the recording is registered as auxiliary staff: they "
            "have no independent enforcement power and must work under a certified "
            "officer. Proves what the labels say, not who was present.",
        ),
        # --- AV-12: labelling and deadline ---------------------------------------------
        FindingCode(
            "LABEL_MISSING", "AV-12", _C.LABELLING, _S.WARNING,
            "Recording has no labels", "录像未标注",
            "No labels row matched the file: case number, entity and officer are unknown.",
        ),
        FindingCode(
            "LABEL_INCOMPLETE", "AV-12", _C.LABELLING, _S.WARNING,
            "Labels are incomplete", "标注信息不完整",
            "A required label (case number, inspected entity, officer, time) is empty.",
        ),
        FindingCode(
            "LABEL_INVALID", "AV-12", _C.LABELLING, _S.WARNING,
            "Labels are invalid", "标注信息无效",
            "A label value could not be understood; the file was archived without it.",
        ),
        FindingCode(
            "NAME_REUSED", "AV-15", _C.PROVENANCE, _S.WARNING,
            "Same file name, different content", "同名文件内容不同",
            "A file with this name was archived before with other bytes: a second "
            "recording, or an altered copy of the first. Both are kept.",
        ),
        FindingCode(
            "INGEST_LATE", "AV-12", _C.DEADLINE, _S.ERROR,
            "Stored more than 24 hours after recording", "超过24小时未存储",
            "The file entered the archive more than 24 hours after its recording ended.",
        ),
        FindingCode(
            "RECORDING_TIME_UNKNOWN", "AV-12", _C.DEADLINE, _S.WARNING,
            "Recording time unknown", "录制时间不明",
            "Neither labels nor metadata give the recording time, so the 24-hour rule "
            "cannot be checked.",
        ),
        # --- AV-15: fixity -------------------------------------------------------------
        FindingCode(
            "FIXITY_MISMATCH", "AV-15", _C.DAMAGE, _S.ERROR,
            "Stored copy differs from the catalog", "存档副本与目录记录不一致",
            "A stored chunk's BLAKE3 differs from the one recorded at ingest.",
        ),
        FindingCode(
            "OBJECT_MISSING", "AV-16", _C.DAMAGE, _S.ERROR,
            "Stored copy is missing", "存档副本缺失",
            "The catalog names an object that the store cannot find.",
        ),
        # --- AV-15 / AV-16: the archive's own safeguards ------------------------------------
        FindingCode(
            "AUDIT_CHAIN_BROKEN", "AV-16", _C.SAFEGUARD, _S.ERROR,
            "Audit log was altered or is incomplete", "操作日志被改动或不完整",
            "A record of the hash-chained audit log no longer links to the one before it: a "
            "record was changed, deleted or moved, a sealed segment is missing from the "
            "store, or a crash cut the last record short. Names the first break only; "
            "records after the last seal can be cut off without a trace.",
        ),
        FindingCode(
            "LEDGER_CHAIN_BROKEN", "AV-15", _C.SAFEGUARD, _S.ERROR,
            "Store's retention ledger was altered", "存储保留期台账被改动",
            "A line of the local store's hash-chained ledger (retention dates and legal "
            "holds) no longer links to the line before it: that line or its predecessor "
            "was changed, removed or moved. Evidence of a change, not of who made it.",
        ),
        FindingCode(
            "CATALOG_PART_EDITED", "AV-16", _C.SAFEGUARD, _S.ERROR,
            "Catalog part was altered after its commit", "目录数据文件在提交后被改动",
            "A committed Parquet part of the catalog no longer has the size and SHA-256 "
            "that its commit recorded in the audit log: rows were changed, added or removed "
            "(one finding deleted is enough). Evidence of a change, not of who made it.",
        ),
        FindingCode(
            "CATALOG_PART_MISSING", "AV-16", _C.SAFEGUARD, _S.ERROR,
            "Catalog part is missing", "目录数据文件缺失",
            "A part that a commit recorded in the audit log is gone, or its commit was "
            "taken out of the catalog's commit list: the views no longer read its rows.",
        ),
        FindingCode(
            "CATALOG_PART_UNRECORDED", "AV-16", _C.SAFEGUARD, _S.ERROR,
            "Catalog part named by no recorded commit", "目录中有未经提交登记的数据文件",
            "A file among the catalog's parts that no commit recorded in the audit log "
            "names: put there by hand, or left by a writer that died before its commit. "
            "The views do not read it; someone should find out where it came from.",
        ),
        FindingCode(
            "CATALOG_COMMIT_UNRECORDED", "AV-16", _C.SAFEGUARD, _S.ERROR,
            "Catalog commit not in the audit log", "目录提交未记入操作日志",
            "The catalog's commit list names a batch that the audit log does not record, "
            "or records with other parts: the views read parts whose commit is not proven "
            "(also each batch of a catalog made before commits were recorded).",
        ),
        FindingCode(
            "CATALOG_COMMITS_BROKEN", "AV-16", _C.SAFEGUARD, _S.ERROR,
            "Catalog commit list was altered", "目录提交清单被改动",
            "A line of the local catalog's hash-chained commit list no longer links to the "
            "line before it: a commit was changed, removed or moved. Names the first break.",
        ),
        FindingCode(
            "STORE_SELFTEST_FAILED", "AV-15", _C.SAFEGUARD, _S.ERROR,
            "Store failed its write-once self-test", "存储库未通过防删改自检",
            "Against a fresh test object, the store accepted a delete, an overwrite or a "
            "shorter retention, or could not be checked: it may not protect originals "
            "from deletion or change. Proves what the store did to the test object only.",
        ),
        # --- cases (issue 12): AV-5/AV-ANNEX, AV-6, AV-12, AV-13 ----------------------------
        FindingCode(
            "CASE_UNKNOWN", "AV-12", _C.LABELLING, _S.WARNING,
            "Labelled case number names no known case", "标注的案号不存在",
            "The recording's case-number label matches no case opened in Custody (a typo, "
            "or a case not opened yet): the recording is not linked to any case.",
        ),
        FindingCode(
            "RECORDING_UNLINKED", "AV-12", _C.LABELLING, _S.WARNING,
            "Recording not linked to any case", "录像未关联案件",
            "N days (default 7) after it was stored, the recording is linked to no case. "
            "Proves the catalog's links, not whether the footage is evidence.",
        ),
        FindingCode(
            "STEP_NOT_RECORDED", "AV-5", _C.COMPLIANCE, _S.ERROR,
            "Required step has no recording", "应录制的执法环节没有录像",
            "A step the checklist (AV-ANNEX 事项清单) requires for the case's type has no "
            "linked recording and no acknowledged exemption. Proves the links, not what the "
            "footage shows.",
        ),
        FindingCode(
            "EXEMPTION_INCOMPLETE", "AV-6", _C.COMPLIANCE, _S.ERROR,
            "Exemption lacks its reason, basis or author", "不录制说明缺少理由、依据或记录人",
            "An AV-6 exemption record has no reason code, no written basis or no author.",
        ),
        FindingCode(
            "EXEMPTION_UNACKNOWLEDGED", "AV-6", _C.COMPLIANCE, _S.ERROR,
            "Exemption not acknowledged by the section chief", "不录制说明未经科室负责人确认",
            "An AV-6 exemption was recorded but no section chief (科室负责人) has "
            "acknowledged it.",
        ),
        FindingCode(
            "EXEMPTION_ACK_LATE", "AV-6", _C.COMPLIANCE, _S.WARNING,
            "Exemption acknowledged late", "不录制说明确认超时",
            "The section chief acknowledged the exemption more than the allowed number of "
            "days (default 3) after it was recorded.",
        ),
        FindingCode(
            "NOT_PERMANENT", "AV-13", _C.SAFEGUARD, _S.ERROR,
            "Case has an AV-13 event but a recording is not kept long-term",
            "案件有长期保存情形但录像未长期保存",
            "An objection, obstruction, review or litigation event was recorded for the case, "
            "yet a linked recording's current retention is not permanent with a legal hold "
            "(a store that refused, for example). Read from the catalog's retention events.",
        ),
        FindingCode(
            "DOCUMENT_TIME_MISMATCH", "AV-8", _C.TIMING, _S.WARNING,
            "Recording times differ from the document's", "录像起止时间与执法文书记载不一致",
            "The span of the recordings linked at a document's step starts or ends more than "
            "the tolerance (default 2 min) from the times the document states, after the "
            "device's estimated clock offset is taken out. Times come from labels or the "
            "device clock; cannot tell which of the two is wrong.",
        ),
        FindingCode(
            "DEVICE_CLOCK_OFFSET", "AV-8", _C.TIMING, _S.WARNING,
            "Device clock runs at a constant offset", "记录设备时钟存在固定偏差",
            "Against two or more linked documents, a device's recordings are off by the same "
            "amount beyond the tolerance: one clock problem (set the device's clock), not a "
            "mismatch per document. Estimated as the median of the differences.",
        ),
    )
}


def finding_code(code: str) -> FindingCode:
    """The registered code; a KeyError here is a programming error, not bad input."""
    return CODES[code]
