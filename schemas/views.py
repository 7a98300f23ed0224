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
               r.file_name, r.case_number, r.inspected_entity, r.officer_ids,
               r.recorded_start_utc, f.recording_blake3, f.run_id, f.found_at_utc
        FROM findings f LEFT JOIN recordings r ON r.blake3 = f.recording_blake3
    """,
    "findings_summary": """
        SELECT code, rule, category, severity, any_value(title_en) AS title_en,
               any_value(title_zh) AS title_zh, count(*) AS findings,
               count(DISTINCT recording_blake3) AS recordings
        FROM findings GROUP BY ALL ORDER BY findings DESC
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
