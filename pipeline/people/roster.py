"""The public roster of auxiliary staff (AUX-13, 公示制度): CSV and a printable HTML page.

Only the public fields ever leave here: name, staff number, section, post and status
(`PUBLIC_COLUMNS`). `RosterRow` has no other field, so an ID number, birth date or contract
term cannot reach the output by accident: it is dropped when a registry record becomes a
row. Headings are Chinese, in the regulation's own words where it has them (工作岗位 from
AUX-8, 科室 from AV-10). Pure: rows in, text out; the caller writes the files.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections.abc import Iterable
from dataclasses import astuple, dataclass

from schemas.people import KIND_AUXILIARY, STATUS_PENDING, STATUSES, StaffEventRecord

# (field, Chinese heading) in column order. The ONLY fields a roster may show.
PUBLIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "姓名"),
    ("staff_id", "人员编号"),
    ("section", "科室"),
    ("post", "工作岗位"),
    ("status", "状态"),
)
TITLE = "行政执法辅助人员公示"
AUTHORITY = "大柘镇人民政府"
BASIS = ("依据《大柘镇人民政府行政执法辅助人员管理办法》第十三条，对行政执法辅助人员相关信息"
         "进行公示，提供可查询服务，接受社会监督。")


@dataclass(frozen=True, slots=True)
class RosterRow:
    name: str
    staff_id: str
    section: str
    post: str
    status: str  # the Chinese status label (在岗, 停岗, 解聘, 离岗)


assert tuple(f for f, _ in PUBLIC_COLUMNS) == RosterRow.__slots__


def roster_rows(
    staff: Iterable[StaffEventRecord], *, kinds: tuple[str, ...] = (KIND_AUXILIARY,)
) -> list[RosterRow]:
    """Public rows for the current state of `staff` of the given kinds, by section and number.

    People still pending (not yet hired) are left out; suspended, dismissed and departed
    staff stay listed with their status, so the public can check whether someone still
    serves.
    """
    rows = [
        RosterRow(name=p.name, staff_id=p.staff_id, section=p.section, post=p.post,
                  status=STATUSES.get(p.status, p.status))
        for p in staff
        if p.kind in kinds and p.status != STATUS_PENDING
    ]
    return sorted(rows, key=lambda r: (r.section, r.staff_id))


def roster_csv(rows: Iterable[RosterRow]) -> str:
    """CSV with a Chinese heading row (write it as utf-8-sig so spreadsheet programs agree)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([zh for _, zh in PUBLIC_COLUMNS])
    for r in rows:
        w.writerow(astuple(r))
    return buf.getvalue()


_CSS = """
@page { size: A4; margin: 18mm 15mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
       "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", sans-serif;
       color: #111; margin: 24px; }
h1 { font-size: 22pt; text-align: center; margin: 0 0 4px; letter-spacing: 0.1em; }
p.org { text-align: center; font-size: 13pt; margin: 0 0 12px; }
p.meta { text-align: right; font-size: 10.5pt; margin: 0 0 8px; }
table { width: 100%; border-collapse: collapse; font-size: 11pt; }
th, td { border: 1px solid #333; padding: 5px 8px; text-align: left; }
th { background: #e8e8e8; }
tbody tr { page-break-inside: avoid; }
thead { display: table-header-group; }
p.basis { font-size: 10pt; margin-top: 12px; }
"""


def roster_html(rows: Iterable[RosterRow], *, as_of: dt.date) -> str:
    """A printable, self-contained HTML page (A4; the heading row repeats on every page)."""
    rows = list(rows)
    e = html.escape
    head = "".join(f'<th scope="col">{e(zh)}</th>' for _, zh in PUBLIC_COLUMNS)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{e(v)}</td>" for v in astuple(r)) + "</tr>" for r in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(PUBLIC_COLUMNS)}">（暂无）</td></tr>'
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{e(AUTHORITY)}{e(TITLE)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{e(TITLE)}</h1>
<p class="org">{e(AUTHORITY)}</p>
<p class="meta">公示日期：{as_of.year}年{as_of.month}月{as_of.day}日　共{len(rows)}人</p>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<p class="basis">{e(BASIS)}</p>
</body>
</html>
"""
