"""Ratios of issue 2's acceptance from benchmark medians; also a small CLI over JSON.

    pytest benchmarks --benchmark-only --benchmark-json=.cache/bench/last.json
    python benchmarks/ratios.py .cache/bench/last.json

Targets: ingest <= 1.2 x the durable copy alone, and ingest <= 0.7 x the three peers
(ffprobe packet dump, b3sum, durable copy) run one after another (sum of their medians).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping

INGEST = "test_ingest"
COPY = "test_peer_durable_copy"
FFPROBE = "test_peer_ffprobe_packets"
B3SUM = "test_peer_b3sum"
HASH_OURS = "test_hash_digest_file"
HASH_SHA256 = "test_hash_sha256sum"

TARGET_VS_COPY = 1.2
TARGET_VS_PEERS = 0.7


def report(medians: Mapping[str, float]) -> list[str]:
    """Lines naming each ratio, its target and whether it is met (medians in seconds)."""
    m = dict(medians)
    lines = ["medians: " + ", ".join(f"{k}={v:.3f}s" for k, v in sorted(m.items()))]
    if INGEST in m and COPY in m:
        r = m[INGEST] / m[COPY]
        ok = "met" if r <= TARGET_VS_COPY else "MISSED"
        lines.append(
            f"ingest / durable copy          = {r:.2f}  (target <= {TARGET_VS_COPY}: {ok})"
        )
    if all(k in m for k in (INGEST, COPY, FFPROBE, B3SUM)):
        peers = m[COPY] + m[FFPROBE] + m[B3SUM]
        r = m[INGEST] / peers
        ok = "met" if r <= TARGET_VS_PEERS else "MISSED"
        lines.append(
            f"ingest / (ffprobe+b3sum+copy)  = {r:.2f}  (target <= {TARGET_VS_PEERS}: {ok}; "
            f"peers in sequence {peers:.3f}s)"
        )
    if HASH_OURS in m:
        for peer in (B3SUM, HASH_SHA256):  # b3sum: the peer run in test_ingest_bench
            if peer in m:
                lines.append(f"digest_file / {peer[10:]:<16} = {m[HASH_OURS] / m[peer]:.2f}")
    return lines


# Paired benchmarks (benchmarks/conftest.py `run_paired`): what each compares; target 1.2.
PAIRED = {
    "test_paired_ingest_and_durable_copy": "ingest / durable copy, paired",
    "test_s3_paired_ingest_and_upload_file": "s3 ingest / boto3 upload_file, paired",
    "test_paired_ingest_mpegts_and_durable_copy": "MPEG-TS ingest / copy, paired",
    "test_paired_ingest_fmp4_and_durable_copy": "fragmented MP4 ingest / copy, paired",
}


def paired_line(
    median_ratio: float, ingest_s: float, peer_s: float,
    label: str = PAIRED["test_paired_ingest_and_durable_copy"],
) -> str:
    ok = "met" if median_ratio <= TARGET_VS_COPY else "MISSED"
    return (
        f"{label:<30} = {median_ratio:.2f}  (target <= {TARGET_VS_COPY}: {ok}; median of "
        f"per-round ratios, rounds back to back; medians {ingest_s:.3f}s and {peer_s:.3f}s)"
    )


def medians_from_json(path: str) -> dict[str, float]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return {b["name"]: float(b["stats"]["median"]) for b in data["benchmarks"]}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} BENCHMARK_JSON", file=sys.stderr)
        return 2
    for line in report(medians_from_json(argv[1])):
        print(line)
    with open(argv[1], encoding="utf-8") as fh:
        for b in json.load(fh)["benchmarks"]:
            info = b.get("extra_info", {})
            if "paired_ratio_median" in info:
                print(paired_line(info["paired_ratio_median"],
                                  statistics.median(info["ingest_s"]),
                                  statistics.median(info["peer_s"]),
                                  PAIRED.get(b["name"], f"{b['name']}, paired")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
