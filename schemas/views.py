"""DuckDB views over the committed catalog: the analyst's API.

Base views (one per record table) read every committed Parquet part of that table.
Derived views answer the questions of RULES.md AV-12 (classify by inspected entity,
officer and time of use) and of the night operator (what came in late, what was found).
"""

from __future__ import annotations

from schemas.cases import load_checklist


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _epoch_s(col: str) -> str:
    """Whole seconds since the epoch of a TIMESTAMPTZ, rounded down: what DuckDB's
    date_diff('second', ...) subtracts, computed on its microseconds (date_diff and interval
    arithmetic on TIMESTAMPTZ go through the ICU calendar, about 1 us a row)."""
    return (f"((epoch_us({col}) - CASE WHEN epoch_us({col}) < 0 THEN 999999 ELSE 0 END)"
            " // 1000000)")


def _us_between(a: str, b: str) -> str:
    """Microseconds from `a` to `b` (date_diff('microsecond', a, b), without ICU)."""
    return f"(epoch_us({b}) - epoch_us({a}))"


FOLD_COLUMNS = ("case_number", "event", "at_utc", "recording_blake3", "step")  # it reads


def case_links_fold(events: str) -> str:
    """Each (case, recording) pair's link state over the case events `events` names (a
    view or table): its latest event and when, the step of its latest link that names one
    and when, and its latest link. Folding a fold's rows again with more events (the same
    maxima) gives the fold of all of them, which is how `case_links_current` merges a
    compaction's fold (schemas.records.CaseLinkFoldRecord) with later events."""
    return f"""
        SELECT case_number, recording_blake3,
               arg_max(event, at_utc) AS last_event, max(at_utc) AS last_at_utc,
               arg_max(step, at_utc) FILTER (WHERE event = 'linked' AND step IS NOT NULL)
                   AS step,
               max(at_utc) FILTER (WHERE event = 'linked' AND step IS NOT NULL)
                   AS step_at_utc,
               max(at_utc) FILTER (WHERE event = 'linked') AS linked_at_utc
        FROM {events}
        WHERE event IN ('linked', 'unlinked') AND recording_blake3 IS NOT NULL
        GROUP BY case_number, recording_blake3"""


def _checklist_sql() -> str:
    """The AV-ANNEX checklist (schemas/checklist.toml) as a VALUES list: the view follows
    the file the town edits, each time the views are made."""
    rows = [
        f"({i}, {_quote(s.case_type)}, {_quote(s.step)}, {_quote(s.step_en)}, "
        f"{_quote(s.unit)}, [{', '.join(_quote(a) for a in s.activities)}]::VARCHAR[], "
        f"{'true' if s.optional else 'false'})"
        for i, s in enumerate(load_checklist())
    ]
    return ("SELECT * FROM (VALUES " + ", ".join(rows) + ") "
            "AS t(ord, case_type, step, step_en, unit, activities, optional)")


# AV-9 across files, shared by case_session_gaps and check_av9_sessions: the recordings
# ingest heard no speech at the start of, ...
_UNSPOKEN = """unspoken AS (SELECT recording_blake3, min(detail) AS detail FROM findings
                             WHERE code = 'NO_SPEECH_AT_START' GROUP BY 1)"""
# ... an interruption between two recordings in a row (more than 2 s, at most 10 min) ...
_GAP = "p.gap_us > 2000000 AND p.gap_us <= 600000000"


def _session_pairs(narrowed: str) -> str:
    """... and the CTE `pairs`: each linked recording of a known device and time span
    after the one before it in its session (case and device; by start, then end, then
    hash), with the gap between them (`gap_us`); `narrowed`: a join after
    `FROM case_recordings` that keeps only some sessions."""
    return f"""pairs AS (
            SELECT *, {_us_between("before_end_utc", "after_start_utc")} AS gap_us FROM (
                SELECT case_number, device_id, lag(recording_blake3) OVER w AS before_blake3,
                       lag(file_name) OVER w AS before_file,
                       lag(recorded_end_utc) OVER w AS before_end_utc,
                       recording_blake3 AS after_blake3, file_name AS after_file,
                       recorded_start_utc AS after_start_utc
                FROM case_recordings {narrowed}
                WHERE device_id IS NOT NULL AND device_id <> ''
                  AND recorded_start_utc IS NOT NULL AND recorded_end_utc IS NOT NULL
                WINDOW w AS (PARTITION BY case_number, device_id
                             ORDER BY recorded_start_utc, recorded_end_utc, recording_blake3))
            WHERE before_blake3 IS NOT NULL)"""


DERIVED_VIEWS: dict[str, str] = {
    # One row per officer per recording (AV-12: classified by officer).
    "recordings_by_officer": """
        SELECT unnest(officer_ids) AS officer_id, r.* EXCLUDE (officer_ids)
        FROM recordings r
    """,
    # AV-12: classified by inspected entity and by time of use.
    "recordings_by_entity": """
        SELECT coalesce(inspected_entity, '(unlabelled)') AS inspected_entity,
               count(*) AS recordings,
               min(recorded_start_utc) AS first_recorded_utc,
               max(recorded_end_utc) AS last_recorded_utc,
               sum(duration_seconds) AS total_seconds,
               list(DISTINCT case_number) FILTER (WHERE case_number IS NOT NULL) AS cases
        FROM recordings GROUP BY 1
    """,
    "recordings_by_day": """
        SELECT CAST(recorded_start_utc AS DATE) AS recorded_day, count(*) AS recordings,
               sum(size_bytes) AS size_bytes, sum(duration_seconds) AS total_seconds
        FROM recordings GROUP BY 1
    """,
    # Findings joined to the labels a reader needs to act on them.
    "findings_detail": """
        SELECT f.code, f.rule, f.category, f.severity, f.title_en, f.title_zh,
               f.stream_index, f.pts, f.at_seconds, f.detail, f.source_path,
               f.source_path_bytes, r.file_name, r.file_name_bytes, r.case_number,
               r.inspected_entity, r.officer_ids,
               r.recorded_start_utc, f.recording_blake3, f.run_id, f.found_at_utc
        FROM findings f LEFT JOIN recordings r ON r.blake3 = f.recording_blake3
    """,
    "findings_summary": """
        SELECT code, rule, category, severity, any_value(title_en) AS title_en,
               any_value(title_zh) AS title_zh, count(*) AS findings,
               count(DISTINCT recording_blake3) AS recordings
        FROM findings GROUP BY ALL ORDER BY findings DESC
    """,
    # AV-11/AV-13: each recording's current retention. Tiers only go up and retain-until
    # only grows, so the current values are the maxima over its events (and ingest's
    # first retain-until); the legal hold is the latest event's.
    "retention_current": """
        SELECT r.blake3, r.file_name, r.case_number, r.store_key,
               coalesce(e.tier, 'one_year') AS tier,
               greatest(r.retain_until_utc,
                        coalesce(e.retain_until_utc, r.retain_until_utc)) AS retain_until_utc,
               coalesce(e.legal_hold, false) AS legal_hold,
               e.trigger, e.changed_by, e.changed_at_utc
        FROM recordings r
        LEFT JOIN (
            SELECT recording_blake3,
                   max_by(tier, CASE tier WHEN 'permanent' THEN 2 WHEN 'case' THEN 1
                                ELSE 0 END) AS tier,
                   max(retain_until_utc) AS retain_until_utc,
                   arg_max(legal_hold, at_utc) AS legal_hold,
                   arg_max(trigger, at_utc) FILTER (WHERE trigger IS NOT NULL) AS trigger,
                   arg_max(actor, at_utc) AS changed_by,
                   max(at_utc) AS changed_at_utc
            FROM retention_events GROUP BY recording_blake3
        ) e ON e.recording_blake3 = r.blake3
    """,
    "late_ingests": """
        SELECT r.file_name, r.case_number, r.officer_ids, r.recorded_end_utc,
               r.ingested_at_utc,
               date_diff('minute', r.recorded_end_utc, r.ingested_at_utc) / 60.0 AS hours_late
        FROM recordings r
        WHERE r.recorded_end_utc IS NOT NULL
          AND r.ingested_at_utc > r.recorded_end_utc + INTERVAL 24 HOUR
    """,
    # --- cases (issue 12) ---------------------------------------------------------------
    # Each case's current state, folded from its appended events (pipeline.rules.cases).
    "cases_current": """
        SELECT case_number,
               arg_max(case_type, at_utc) FILTER (WHERE event = 'opened') AS case_type,
               arg_max(inspected_entity, at_utc) FILTER (WHERE event = 'opened')
                   AS inspected_entity,
               arg_max(section, at_utc) FILTER (WHERE event = 'opened') AS section,
               arg_max(officer_ids, at_utc) FILTER (WHERE event = 'opened') AS officer_ids,
               min(at_utc) FILTER (WHERE event = 'opened') AS opened_at_utc,
               min(at_utc) FILTER (WHERE event = 'closed') AS closed_at_utc,
               CASE WHEN count(*) FILTER (WHERE event = 'closed') > 0 THEN 'closed'
                    WHEN count(*) FILTER (WHERE event = 'opened') > 0 THEN 'open'
                    ELSE 'unknown' END AS status,
               min(retain_until_utc) FILTER (WHERE event = 'closed') AS retain_until_utc,
               count(*) FILTER (WHERE event = 'trigger') > 0 AS permanent,
               coalesce(list(DISTINCT kind) FILTER (WHERE event = 'trigger'), [])
                   AS triggers,
               count(*) FILTER (WHERE event = 'document') AS documents,
               count(*) FILTER (WHERE event = 'exempted') AS exemptions
        FROM case_events GROUP BY case_number
    """,
    # The recordings each case links now: the latest link/unlink event of each pair. The
    # pairs the last compaction folded (case_links_folded) and no later event touches are
    # read as folded; the others are folded again with the events after it
    # (case_events_unfolded: every case event when there is no fold). The same rows as
    # grouping every link event of the catalog, without grouping a year's 600,000 pairs.
    "case_links_current": f"""
        WITH later AS MATERIALIZED ({case_links_fold("case_events_unfolded")}),
        merged AS (
            SELECT case_number, recording_blake3,
                   arg_max(last_event, last_at_utc) AS last_event,
                   arg_max(step, step_at_utc) FILTER (WHERE step IS NOT NULL) AS step,
                   max(linked_at_utc) AS linked_at_utc
            FROM (SELECT * FROM case_links_folded
                  SEMI JOIN later USING (case_number, recording_blake3)
                  UNION ALL BY NAME
                  SELECT * FROM later)
            GROUP BY case_number, recording_blake3)
        SELECT case_number, recording_blake3, step, linked_at_utc
        FROM case_links_folded ANTI JOIN later USING (case_number, recording_blake3)
        WHERE last_event = 'linked'
        UNION ALL
        SELECT case_number, recording_blake3, step, linked_at_utc FROM merged
        WHERE last_event = 'linked'
    """,
    "case_documents": """
        SELECT case_number, item_id AS document_id, kind, step, start_utc, end_utc,
               file_blake3, store_key, actor_id, at_utc
        FROM case_events WHERE event = 'document'
    """,
    # AV-6: each exemption with its acknowledgement (the first one counts).
    "case_exemptions": f"""
        SELECT e.case_number, e.item_id AS exemption_id, e.step, e.kind AS reason,
               e.text AS basis, e.author_id, e.at_utc AS exempted_at_utc,
               a.acked_at_utc, a.acked_by,
               ({_epoch_s("a.acked_at_utc")} - {_epoch_s("e.at_utc")}) / 86400.0 AS ack_days
        FROM case_events e
        LEFT JOIN (SELECT case_number, item_id, min(at_utc) AS acked_at_utc,
                          arg_min(actor_id, at_utc) AS acked_by
                   FROM case_events WHERE event = 'acknowledged' GROUP BY ALL) a
          ON a.case_number = e.case_number AND a.item_id = e.item_id
        WHERE e.event = 'exempted'
    """,
    "case_checklist": _checklist_sql(),
    # What the case checks and the report read of each recording: one narrow projection,
    # so that each reads only these columns of the recordings' Parquet. A report reads them
    # where it needs them (a temporary table of a year's million rows cost 3-4x reading
    # these columns: 1baead2).
    "recording_facts": """
        SELECT blake3, file_name, case_number, officer_ids, device_id, activity_type,
               recorded_start_utc, recorded_end_utc, ingested_at_utc
        FROM recordings
    """,
    # The step of its case type a recording counts for when its link names none: the first
    # (in checklist order) whose AV-5 activities include the recording's activity label.
    "case_checklist_activities": """
        SELECT case_type, activity, arg_min(step, ord) AS step
        FROM (SELECT case_type, step, ord, unnest(activities) AS activity
              FROM case_checklist)
        GROUP BY case_type, activity
    """,
    # Each recording a case links now, with the step it counts for (the link's, else by
    # its activity: pipeline.rules.cases.step_of) and the recording's facts the checks
    # read (NULL when the catalog has no such recording). The checks below read this one
    # join of links and recordings; a report makes it once.
    "case_recordings": """
        SELECT l.case_number, l.recording_blake3, coalesce(l.step, a.step) AS step,
               r.blake3 IS NOT NULL AS in_catalog, r.file_name, r.device_id, r.officer_ids,
               r.recorded_start_utc, r.recorded_end_utc
        FROM case_links_current l
        JOIN cases_current c USING (case_number)
        LEFT JOIN recording_facts r ON r.blake3 = l.recording_blake3
        LEFT JOIN case_checklist_activities a
          ON a.case_type = c.case_type AND a.activity = r.activity_type
    """,
    # AV-5/AV-ANNEX: each required step of each case, and what covers it (NULL: nothing;
    # the same answer as pipeline.rules.cases.av5_coverage). An optional step (a hearing)
    # is listed once the case has a link, document or exemption at it.
    "check_av5_coverage": """
        WITH steps AS (
            SELECT c.case_number, c.case_type, k.step, k.step_en, k.ord, k.optional
            FROM cases_current c JOIN case_checklist k ON k.case_type = c.case_type),
        linked AS (SELECT DISTINCT case_number, step FROM case_recordings
                   WHERE step IS NOT NULL),
        acked AS (SELECT DISTINCT case_number, step FROM case_exemptions
                  WHERE step IS NOT NULL AND acked_at_utc IS NOT NULL),
        present AS (SELECT DISTINCT case_number, step FROM case_events
                    WHERE event IN ('document', 'exempted') AND step IS NOT NULL)
        SELECT s.case_number, s.case_type, s.step, s.step_en,
               CASE WHEN l.step IS NOT NULL THEN 'recording'
                    WHEN a.step IS NOT NULL THEN 'exemption' END AS covered_by
        FROM steps s
        LEFT JOIN linked l ON l.case_number = s.case_number AND l.step = s.step
        LEFT JOIN acked a ON a.case_number = s.case_number AND a.step = s.step
        LEFT JOIN present p ON p.case_number = s.case_number AND p.step = s.step
        WHERE NOT s.optional OR l.step IS NOT NULL OR p.step IS NOT NULL
        ORDER BY s.case_number, s.ord
    """,
    # AV-6 with the default limit (3 days; pipeline.rules.cases.av6_exemptions takes any).
    "check_av6_exemptions": """
        SELECT *, acked_at_utc IS NULL AS unacknowledged,
               coalesce(ack_days > 3, false) AS ack_late,
               coalesce(trim(reason), '') = '' OR coalesce(trim(basis), '') = ''
                   OR coalesce(trim(author_id), '') = '' AS incomplete
        FROM case_exemptions
    """,
    # AV-13: recordings of a case with an AV-13 event that are not permanent and held
    # (their retention as retention_current gives it, folded for these recordings only).
    # The links come from case_recordings, which knows each one's recording already (a
    # report has it stored: no pass over the million recordings for a few thousand links).
    "check_av13_permanent": """
        WITH l AS (
            SELECT l.case_number, l.recording_blake3, l.file_name, l.in_catalog
            FROM case_recordings l JOIN cases_current c USING (case_number)
            WHERE c.permanent),
        e AS (
            SELECT recording_blake3,
                   max_by(tier, CASE tier WHEN 'permanent' THEN 2 WHEN 'case' THEN 1
                                ELSE 0 END) AS tier,
                   arg_max(legal_hold, at_utc) AS legal_hold
            FROM retention_events
            WHERE recording_blake3 IN (SELECT recording_blake3 FROM l)
            GROUP BY recording_blake3)
        SELECT l.case_number, l.recording_blake3, l.file_name,
               CASE WHEN l.in_catalog THEN coalesce(e.tier, 'one_year') END AS tier,
               CASE WHEN l.in_catalog THEN coalesce(e.legal_hold, false) END AS legal_hold
        FROM l
        LEFT JOIN e ON e.recording_blake3 = l.recording_blake3
        WHERE NOT (coalesce(e.tier, '') = 'permanent' AND coalesce(e.legal_hold, false)
                   AND l.in_catalog)
    """,
    # AV-12: recordings linked to no case, with the days since they were stored (the
    # check's default limit is 7 days: WHERE days_since_ingest > 7), and their officers
    # and recorded start (whose they are, and when, for a report).
    "check_av12_unlinked": f"""
        SELECT r.blake3, r.file_name, r.case_number AS labelled_case, r.ingested_at_utc,
               ({_epoch_s("now()")} - {_epoch_s("r.ingested_at_utc")}) / 86400.0
                   AS days_since_ingest, r.officer_ids, r.recorded_start_utc
        FROM recording_facts r
        WHERE r.blake3 NOT IN (SELECT recording_blake3 FROM case_links_current)
    """,
    # AV-8: each document against the span of each device's recordings at its step, with
    # the device's clock offset (the median of its differences, over two or more documents,
    # beyond the default tolerance of 2 min) taken out; `mismatch` is
    # DOCUMENT_TIME_MISMATCH (pipeline.rules.documents.av8_documents gives the same).
    "check_av8_documents": f"""
        WITH recs AS (
            SELECT case_number, step, recorded_start_utc AS s,
                   coalesce(recorded_end_utc, recorded_start_utc) AS e,
                   coalesce(nullif(device_id, ''), '(unknown device)') AS device
            FROM case_recordings
            WHERE recorded_start_utc IS NOT NULL),
        spans AS (
            SELECT d.case_number, d.document_id, x.device, d.start_utc, d.end_utc,
                   min(x.s) AS recorded_start_utc, max(x.e) AS recorded_end_utc
            FROM case_documents d
            JOIN recs x ON x.case_number = d.case_number AND x.step = d.step
            WHERE d.start_utc IS NOT NULL OR d.end_utc IS NOT NULL
            GROUP BY d.case_number, d.document_id, x.device, d.start_utc, d.end_utc),
        pairs AS (
            SELECT *,
                   {_us_between("start_utc", "recorded_start_utc")} / 1e6 AS start_delta_s,
                   {_us_between("end_utc", "recorded_end_utc")} / 1e6 AS end_delta_s
            FROM spans),
        offsets AS (
            SELECT device, median(delta) AS median_s,
                   count(DISTINCT (case_number, document_id)) AS documents
            FROM (SELECT device, case_number, document_id,
                         unnest([start_delta_s, end_delta_s]) AS delta FROM pairs)
            WHERE delta IS NOT NULL GROUP BY device),
        fixed AS (
            SELECT p.*, CASE WHEN o.documents >= 2 AND p.device <> '(unknown device)'
                              AND abs(o.median_s) > 120 THEN o.median_s ELSE 0 END
                            AS device_offset_s
            FROM pairs p LEFT JOIN offsets o USING (device))
        SELECT *, start_delta_s - device_offset_s AS start_residual_s,
               end_delta_s - device_offset_s AS end_residual_s,
               coalesce(abs(start_delta_s - device_offset_s) > 120, false)
                   OR coalesce(abs(end_delta_s - device_offset_s) > 120, false) AS mismatch
        FROM fixed
    """,
    # AV-8: devices whose clock runs at a constant offset (DEVICE_CLOCK_OFFSET).
    "check_av8_clock_offsets": """
        SELECT device, any_value(device_offset_s) AS offset_s,
               count(DISTINCT (case_number, document_id)) AS documents
        FROM check_av8_documents WHERE device_offset_s <> 0 GROUP BY device
    """,
    # AUX-2/3: a case step whose recordings name only auxiliary staff (quiet while the
    # personnel registry is empty; pipeline.rules.cases.aux3_steps gives the same).
    "check_aux3_steps": """
        WITH kinds AS (
            SELECT staff_id, arg_max(kind, seq) AS kind FROM staff_events GROUP BY staff_id),
        people AS MATERIALIZED (
            SELECT p.case_number, p.step, p.staff_id,
                   coalesce(k.kind, '') = 'auxiliary' AS auxiliary
            FROM (SELECT case_number, step, unnest(officer_ids) AS staff_id
                  FROM case_recordings
                  WHERE in_catalog AND step IS NOT NULL
                    AND (SELECT count(*) FROM kinds) > 0) p
            LEFT JOIN kinds k USING (staff_id)),
        only_auxiliary AS (
            SELECT case_number, step FROM people GROUP BY case_number, step
            HAVING bool_and(auxiliary))
        SELECT p.case_number, p.step, list(DISTINCT p.staff_id ORDER BY p.staff_id) AS staff
        FROM people p SEMI JOIN only_auxiliary o
          ON o.case_number = p.case_number AND o.step = p.step
        GROUP BY p.case_number, p.step
    """,
    # Every finding ingest stored about the recordings a case links (AV-9 interruptions
    # inside a file, AV-12 late storage, ...), with the case's section and the recording's
    # officers: per case and officer (GROUP BY case_number, unnest(officer_ids)).
    "case_findings": """
        SELECT l.case_number, l.step, c.section, r.file_name, r.officer_ids,
               r.device_id, r.recorded_start_utc, r.recorded_end_utc, r.ingested_at_utc, f.*
        FROM case_links_current l
        JOIN cases_current c USING (case_number)
        JOIN findings f ON f.recording_blake3 = l.recording_blake3
        LEFT JOIN recordings r ON r.blake3 = l.recording_blake3
    """,
    # AV-12 per case and officer: each late-stored recording a case links, one row per
    # labelled officer (an unlabelled recording: officer_id NULL).
    "case_late_ingests": f"""
        SELECT case_number, section,
               unnest(CASE WHEN len(officer_ids) > 0 THEN officer_ids
                           ELSE [NULL::VARCHAR] END) AS officer_id,
               file_name, recording_blake3, recorded_end_utc, ingested_at_utc,
               ({_epoch_s("ingested_at_utc")} - {_epoch_s("recorded_end_utc")}) / 3600.0
                   AS hours_late
        FROM case_findings WHERE code = 'INGEST_LATE'
    """,
    # AV-9 across files: each case's sessions (its linked recordings of one device, in the
    # order they started, then ended) and every interruption between two in a row: the
    # second starts more than 2 s and at most 10 min after the first ended (the defaults of
    # analysis.sessions). `explained`: ingest heard speech at the second's start (no
    # NO_SPEECH_AT_START). pipeline.rules.cases.case_session_gaps gives the same. The
    # names of the files either side come with the window (a link is one recording: no
    # second pass over the 600,000 links of a year to find them).
    "case_session_gaps": f"""
        WITH {_UNSPOKEN}, {_session_pairs("")}
        SELECT p.case_number, p.device_id, p.before_blake3, p.before_file,
               p.before_end_utc, p.after_blake3, p.after_file,
               p.after_start_utc, p.gap_us / 1e6 AS gap_seconds,
               u.detail AS start_unspoken, u.detail IS NULL AS explained
        FROM pairs p
        LEFT JOIN unspoken u ON u.recording_blake3 = p.after_blake3
        WHERE {_GAP}
    """,
    # AV-9 across files: the unexplained ones, as findings (UNEXPLAINED_INTERRUPTION about
    # the case; pipeline.rules.cases.av9_sessions gives the same). Read by reports through
    # its `code` column. The rows of case_session_gaps whose later file opened without
    # speech, found by windowing only the sessions (case and device) that have such a
    # file: a session whose every file opened with speech has no unexplained
    # interruption, and a year's window over all 600,000 links was 0.35 s of a report.
    "check_av9_sessions": f"""
        WITH {_UNSPOKEN},
        sessions AS (SELECT DISTINCT r.case_number, r.device_id FROM case_recordings r
                     SEMI JOIN unspoken u ON u.recording_blake3 = r.recording_blake3),
        {_session_pairs("SEMI JOIN sessions USING (case_number, device_id)")}
        SELECT 'UNEXPLAINED_INTERRUPTION' AS code, 'AV-9' AS rule, 'case' AS subject_kind,
               p.case_number AS subject_id, p.case_number, p.after_blake3 AS recording_blake3,
               p.after_start_utc AS at_utc, p.device_id, p.before_blake3, p.before_file,
               p.before_end_utc, p.after_blake3, p.after_file, p.after_start_utc,
               p.gap_us / 1e6 AS gap_seconds, u.detail AS start_unspoken
        FROM pairs p JOIN unspoken u ON u.recording_blake3 = p.after_blake3
        WHERE {_GAP}
    """,
}
