"""`make mutation`: mutmut over each integrity-critical module with only its own tests.

mutmut 3 reads its configuration from the working directory's pyproject.toml and keeps
its mutated copy of the source in `mutants/` there, so one configuration means one set
of tests for every module. This script gives each module of `mutation/modules.toml` its
own work directory, `.cache/mutation/<module>/` (git-ignored): links to `pipeline/`,
`schemas/` and `tests/`, and a copy of pyproject.toml with a `[tool.mutmut]` table that
mutates only that module's files and selects only its tests. The work directory is
removed first, so every run starts from the code and tests as they are.

A module may narrow its mutants with `only` (globs over mutmut's mutant names, e.g.
"pipeline.people.permissions.x_decide__mutmut_*"): mutmut runs and the table counts just
those.

A survivor counts as explained when `mutation/survivors.toml` lists its id AND the
mutated line still reads as listed: a renumbered or changed mutant is not explained by
an old entry. The table counts timeouts as killed (the tests noticed) and "no tests"
(nothing of the module's tests reached the mutated function) as survivors.

Usage: python mutation/run.py [MODULE...] [--jobs N] [--keep]
Exit: 0 when every module has (killed + explained) / mutants >= 90% and no unexplained
survivor; 1 otherwise; 2 when mutmut itself could not run (its log is named).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "mutation" / "modules.toml"
SURVIVORS = ROOT / "mutation" / "survivors.toml"
CACHE = ROOT / ".cache" / "mutation"
REPORT = CACHE / "report.md"
THRESHOLD = 0.90
# mutmut's exit-code classes (mutmut.stats.status_by_exit_code) folded into three.
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
MODULE_TIMEOUT_S = 3600


@dataclass
class Survivor:
    id: str
    status: str
    path: str
    line: int | None
    mutation: str
    diff: str
    reason: str | None = None  # from survivors.toml when explained


@dataclass
class Result:
    name: str
    mutants: int = 0
    killed: int = 0
    survivors: list[Survivor] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def explained(self) -> int:
        return sum(1 for s in self.survivors if s.reason is not None)

    @property
    def unexplained(self) -> int:
        return len(self.survivors) - self.explained

    @property
    def score(self) -> float:
        return (self.killed + self.explained) / self.mutants if self.mutants else 1.0


def _mutmut_config(mutate: list[str], tests: list[str]) -> str:
    def arr(xs: list[str]) -> str:
        return "[" + ", ".join(json.dumps(x) for x in xs) + "]"

    return (
        "\n\n[tool.mutmut]\n"
        'source_paths = ["pipeline", "schemas"]\n'
        f"only_mutate = {arr(mutate)}\n"
        f"pytest_add_cli_args_test_selection = {arr(tests)}\n"
        # One Hypothesis seed: the same examples in the clean run and for every mutant, so a
        # mutant is killed by what it changed, not by a new random example.
        'pytest_add_cli_args = ["-p", "no:randomly", "--hypothesis-seed=0", '
        '"-o", "console_output_style=classic"]\n'
        "use_git_change_detection = false\n"
    )


def _prepare(name: str, mutate: list[str], tests: list[str], *, keep: bool) -> Path:
    work = CACHE / name
    if work.exists() and not keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for d in ("pipeline", "schemas", "tests"):
        link = work / d
        if not link.exists():
            link.symlink_to(ROOT / d, target_is_directory=True)
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    if "tool" in tomllib.loads(pyproject) and "mutmut" in tomllib.loads(pyproject)["tool"]:
        sys.exit("pyproject.toml has a [tool.mutmut] table: the per-module one lives in "
                 "mutation/modules.toml")
    (work / "pyproject.toml").write_text(pyproject + _mutmut_config(mutate, tests), "utf-8")
    return work


def _status_by_exit_code() -> dict[int | None, str]:
    """mutmut's own names for its exit codes (unknown codes are 'suspicious')."""
    from mutmut.stats import status_by_exit_code

    return dict(status_by_exit_code)


def _function_start(source: str, mangled: str) -> int | None:
    """The first line (decorators included) of the function a mutant name points at."""
    # x_func__mutmut_3 or xǁClassǁmethod__mutmut_3 (mutmut's mangling)
    stem = mangled.rsplit("__mutmut_", 1)[0]
    parts = stem[2:].split("ǁ") if stem.startswith("xǁ") else [stem[2:]]
    parts = [p for p in parts if p]
    nodes: list[ast.stmt] = ast.parse(source).body
    found: ast.stmt | None = None
    for part in parts:
        found = next(
            (n for n in nodes
             if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
             and n.name == part),
            None,
        )
        if found is None:
            return None
        nodes = found.body
    if found is None:
        return None
    decorators = getattr(found, "decorator_list", [])
    return int(min([found.lineno, *(d.lineno for d in decorators)]))


def _line_and_mutation(source: str, mangled: str, diff: str) -> tuple[int | None, str]:
    """The source line number and the mutated text (the diff's first + line)."""
    plus = next((ln[1:] for ln in diff.splitlines()
                 if ln.startswith("+") and not ln.startswith("+++")), "")
    start = _function_start(source, mangled)
    line: int | None = None
    offset = 0
    for ln in diff.splitlines():
        m = re.match(r"@@ -(\d+)", ln)
        if m:
            offset = int(m.group(1))
            continue
        if ln.startswith(("---", "+++")):
            continue
        if ln.startswith("-"):
            break
        if ln.startswith(" "):
            offset += 1
    if start is not None and offset:
        line = start + offset - 1
    return line, plus.strip()


def _diff(work: Path, key: str, path: str, mutmut: Path) -> str:
    """The mutant's diff, as `mutmut show` prints it (read in-process: one `mutmut show`
    per survivor costs a second of start-up each)."""
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        cwd = Path.cwd()
        os.chdir(work)
        try:
            return str(get_diff_for_mutant(key, path=path)).strip()
        finally:
            os.chdir(cwd)
    except Exception:  # an internal API of mutmut moved: ask its command line
        return subprocess.run([str(mutmut), "show", key], cwd=work, capture_output=True,
                              text=True, check=False).stdout.strip()


def _collect(name: str, work: Path, mutate: list[str], only: list[str],
             explained: dict[str, dict[str, object]]) -> Result:
    status_of = _status_by_exit_code()
    result = Result(name)
    mutmut = Path(sys.executable).with_name("mutmut")
    for path in mutate:
        meta = work / "mutants" / (path + ".meta")
        if not meta.exists():
            continue
        source = (ROOT / path).read_text("utf-8")
        codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        for key, code in sorted(codes.items()):
            if only and not any(fnmatch.fnmatch(key, pat) for pat in only):
                continue
            status = status_of.get(code, "suspicious")
            result.mutants += 1
            if status in KILLED:
                result.killed += 1
                continue
            diff = _diff(work, key, path, mutmut)
            mangled = key.rsplit(".", 1)[-1]
            line, mutation = _line_and_mutation(source, mangled, diff)
            s = Survivor(key, status, path, line, mutation, diff)
            entry = explained.get(key)
            if entry is not None and str(entry.get("mutation", "")).strip() == mutation:
                s.reason = str(entry["reason"])
            result.survivors.append(s)
    return result


def _run_module(name: str, mutate: list[str], tests: list[str], only: list[str], *,
                jobs: int, keep: bool, explained: dict[str, dict[str, object]]) -> Result | None:
    for p in [*mutate, *tests]:
        if not (ROOT / p).exists():
            sys.exit(f"mutation/modules.toml: {name}: {p} does not exist")
    work = _prepare(name, mutate, tests, keep=keep)
    log = CACHE / f"{name}.log"
    env = dict(os.environ)
    env.setdefault("CUSTODY_SHARED_MEDIA", str(ROOT.parent / "shared" / "media"))
    # tests/treecheck.py watches the tree the tests run from, here mutmut's mutants/ copy,
    # where mutmut writes its own results while other mutants' tests run: a mutant would
    # be "killed" by mutmut's bookkeeping. `make test` keeps the check.
    env["CUSTODY_TREE_CHECK"] = "off"
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("mutmut")), "run", "--max-children", str(jobs),
             *only],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
            timeout=MODULE_TIMEOUT_S, check=False,
        )
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        print(f"{name}: mutmut run failed (exit {proc.returncode}; its clean test run, most "
              f"often); see {log}", file=sys.stderr)
        return None
    result = _collect(name, work, mutate, only, explained)
    result.seconds = seconds
    return result


def _table(results: list[Result]) -> str:
    head = "| module | mutants | killed | explained | unexplained | score | time |"
    rows = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r.name} | {r.mutants} | {r.killed} | {r.explained} | "
                    f"{r.unexplained} | {r.score:.1%} | {r.seconds:.0f} s |")
    return "\n".join(rows)


def _report(results: list[Result], total_s: float) -> str:
    out = ["# Mutation report", "", f"mutmut over {len(results)} module(s) in "
           f"{total_s:.0f} s. Threshold: (killed + explained) / mutants >= {THRESHOLD:.0%}.",
           "", _table(results), ""]
    for r in results:
        for s in r.survivors:
            verdict = f"explained: {s.reason}" if s.reason else "UNEXPLAINED"
            out += [f"## {r.name}: {s.id} ({s.status})", "",
                    f"{s.path}:{s.line}: `{s.mutation}`", "", verdict, "",
                    "```diff", s.diff, "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="module names from mutation/modules.toml")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "2")))
    ap.add_argument("--keep", action="store_true",
                    help="reuse the work directories (mutmut resumes) instead of starting over")
    ap.add_argument("--modules-file", type=Path, default=MODULES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    modules = tomllib.loads(args.modules_file.read_text("utf-8"))["module"]
    known = {m["name"] for m in modules}
    unknown = set(args.modules) - known
    if unknown:
        ap.error(f"unknown module(s) {sorted(unknown)}; known: {sorted(known)}")
    selected = [m for m in modules if not args.modules or m["name"] in args.modules]
    explained = {e["id"]: e for e in tomllib.loads(SURVIVORS.read_text("utf-8")).get(
        "survivor", [])}

    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results = []
    broken = []
    for m in selected:
        print(f"mutating {m['name']} ({', '.join(m['mutate'])}) ...", flush=True)
        r = _run_module(m["name"], m["mutate"], m["tests"], m.get("only", []),
                        jobs=args.jobs, keep=args.keep, explained=explained)
        if r is None:
            broken.append(m["name"])
            continue
        print(f"  {r.mutants} mutants, {r.killed} killed, {r.explained} explained, "
              f"{r.unexplained} unexplained in {r.seconds:.0f} s", flush=True)
        results.append(r)
        REPORT.write_text(_report(results, time.monotonic() - t0), "utf-8")  # so far
    total = time.monotonic() - t0
    REPORT.write_text(_report(results, total), "utf-8")
    print()
    print(_table(results))
    print(f"\n{total:.0f} s; report: {REPORT.relative_to(ROOT)}")
    if broken:
        print(f"mutmut could not run: {', '.join(broken)} (see .cache/mutation/<module>.log)")
        return 2
    failed = [r.name for r in results if r.score < THRESHOLD or r.unexplained]
    if failed:
        print(f"below {THRESHOLD:.0%} or with unexplained survivors: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
