"""DuckDB views over the committed catalog: the analyst's API.

Base views (one per record table) read every committed Parquet part of that table.
Derived views answer the questions of RULES.md AV-12 (classify by inspected entity,
officer and time of use) and of the night operator (what came in late, what was found).
"""

from __future__ import annotations

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
}
