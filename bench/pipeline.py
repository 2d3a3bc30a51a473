"""The whole pipeline at realistic sizes, against the engine floor, in one run.

For each size (people; about 22 web events and 9 ESP events per person over 90 days, plus CRM
contacts, shop customers, orders and enrichment rows in the generator's proportions):

1. generate 91 days of data (cached in ``--workdir``, reused by later runs);
2. ``land``: ``inboxgraph run --skip-warehouse`` lands the first 90 days' events in the lake;
3. ``full``: ``inboxgraph run`` on an empty warehouse (CRM, shop and enrichment extracts, dbt
   build with its tests, Soda checks, exports, audit);
4. ``floor``: the engine floor. One process, one DuckDB connection, one SQL script: the
   project's model SQL, compiled by dbt and run statement after statement straight from the
   lake files into an in-memory database (staging as views, the rest as tables), with the
   identity graph solved in the same process by the function the warehouse runs
   (``inboxgraph.identity.resolve``). No dbt, no Dagster, no tests or checks. Its identity map,
   profiles and segment memberships are checked equal to the pipeline's;
5. ``incremental``: the 91st day's event files (about 1% of events) land, then ``inboxgraph
   run``; its outputs are checked equal to a floor over all 91 days;
6. on the smallest size, ``no-change``: ``inboxgraph run`` with nothing new, the fixed cost
   of the orchestration.

Times are wall-clock; peak memory is the largest sum of resident set sizes over the whole
process tree (sampled every 0.1 s). Ratios come from one run, so the machine's noise hits the
pipeline and the floor alike. Results go to ``bench/results/pipeline.json``, a markdown table
and a chart (``bench/results/pipeline.png``).

    python bench/pipeline.py [--sizes 100000 300000 1000000] [--workdir /tmp/inboxgraph-bench]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import psutil

from inboxgraph.project_files import dbt_project_dir

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "bench" / "results"
END = date(2026, 11, 21)  # the generated window's last day, held back for the incremental run
DAYS = 90
SEED = 42
OUTPUTS = {
    "marts.identity_map": "identity_map",
    "marts.customer_profiles": "customer_profiles",
    "marts.segment_memberships": "segment_memberships",
}
# Set when the row is written, not derived from the data.
VOLATILE_COLUMNS = {"marts.customer_profiles": ["refreshed_at"]}
TARGETS = {
    "full_vs_floor": 2.0,
    "incremental_vs_full": 0.15,
    "growth_100k_to_1m": 12.0,
    "peak_memory_gb_1m": 6.0,
}


@dataclass
class Measure:
    seconds: float
    peak_rss_bytes: int


@dataclass
class SizeResult:
    people: int
    web_events: int = 0
    ga4_events: int = 0
    mixpanel_events: int = 0
    esp_events: int = 0
    land: Measure | None = None
    full: Measure | None = None
    floor: Measure | None = None
    incremental: Measure | None = None
    incremental_floor: Measure | None = None
    no_change: Measure | None = None
    # dbt assets the no-change run rebuilt, of how many (its log's "rebuilding N of M" line)
    no_change_rebuilt: list[int] = field(default_factory=list)
    # a process that only imports the definitions: what "beyond process start" subtracts
    process_start: Measure | None = None
    suggestions: Measure | None = None
    full_equal: dict[str, int] = field(default_factory=dict)
    incremental_equal: dict[str, int] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def measured(command: list[str], env: dict[str, str], cwd: Path, log_file: Path) -> Measure:
    """Run ``command``; its wall time and the peak RSS of its process tree. Fails loudly."""
    started = time.monotonic()
    with log_file.open("w") as out:
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        watched = psutil.Process(child.pid)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                with contextlib.suppress(psutil.Error):
                    peak = max(peak, tree_rss(watched))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = child.wait()
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    if code != 0:
        tail = "".join(log_file.read_text(errors="replace").splitlines(True)[-40:])
        raise SystemExit(f"{' '.join(command)} exited with {code} (log {log_file}):\n{tail}")
    return Measure(round(seconds, 2), peak)


def inboxgraph(home: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    # None of this shell's INBOXGRAPH_* settings but the dbt project to build.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("INBOXGRAPH_") or key == "INBOXGRAPH_DBT_PROJECT_DIR"
    }
    env.update(
        INBOXGRAPH_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        SODA_CORE_TELEMETRY_ENABLED="false",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    executable = Path(sys.executable).parent / "inboxgraph"
    return [str(executable), *args], env


def generate(workdir: Path, people: int, days: int) -> Path:
    """The generated landing zone for ``people`` (days + 1 days), generated once."""
    # The web analytics tools are in the name: data generated before GA4 and Mixpanel is not
    # reused for a run that compares with one that has them.
    data = workdir / "data" / f"people-{people}-days-{days + 1}-segment-ga4-mixpanel"
    report = data / "landing" / "_generator" / "report.json"
    if report.exists():
        log(f"{people:,} people: reusing {data}")
        return data
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    log(f"{people:,} people: generating {days + 1} days into {data}")
    command, env = inboxgraph(
        data,
        "generate",
        "--people",
        str(people),
        "--days",
        str(days + 1),
        "--end",
        END.isoformat(),
        "--seed",
        str(SEED),
        "--quiet",
    )
    measured(command, env, data, data / "generate.log")
    return data


def link_tree(source: Path, target: Path, skip_day: str | None) -> None:
    """Hard-link ``source`` into ``target`` (no copy), leaving out one received-date folder."""
    for folder, _, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        if skip_day is not None and relative.name == skip_day:
            continue
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            destination = target / relative / name
            if not destination.exists():
                os.link(Path(folder) / name, destination)


def event_counts(landing: Path) -> dict[str, int]:
    """Records generated per event source (Segment, GA4, Mixpanel, ESP)."""
    records = json.loads((landing / "_generator" / "report.json").read_text())["records"]
    sources = ("web_events", "ga4_events", "mixpanel_events", "esp_events")
    return {source: records.get(source, 0) for source in sources}


# ------------------------------------------------------------------ the engine floor
def floor_script(home: Path, as_of: str, script: Path) -> None:
    """Compile the project's models for ``home`` and write the floor's SQL script."""
    compile_home = home / "floor-compile"
    shutil.rmtree(compile_home, ignore_errors=True)
    compile_home.mkdir(parents=True)
    target = compile_home / "target"
    command, env = inboxgraph(home)
    env.update(
        INBOXGRAPH_WAREHOUSE=str(compile_home / "warehouse.duckdb"),
        INBOXGRAPH_LAKE_URL=str(home / "lake"),
    )
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [
            str(dbt),
            "--quiet",
            "compile",
            "--project-dir",
            str(dbt_project_dir()),
            "--profiles-dir",
            str(dbt_project_dir()),
            "--target-path",
            str(target),
            "--vars",
            json.dumps({"as_of": as_of}),
        ],
        env=env,
        cwd=compile_home,
        check=True,
    )
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = manifest["nodes"]
    wanted = [
        uid
        for uid, n in nodes.items()
        if n["resource_type"] == "model" and f"{n['schema']}.{n['name']}" in OUTPUTS
    ]
    order: list[str] = []

    def visit(uid: str) -> None:
        if uid in order or not uid.startswith(("model.", "seed.")):
            return
        for parent in nodes[uid]["depends_on"].get("nodes", []):
            visit(parent)
        order.append(uid)

    for uid in sorted(wanted):
        visit(uid)
    statements = [
        "-- The engine floor: the project's model SQL (compiled by dbt) run back to back in one",
        "-- DuckDB connection, straight from the lake files. Generated by bench/pipeline.py.",
        "attach ':memory:' as warehouse;",
        "use warehouse;",
        *(
            f"create schema if not exists {s};"
            for s in ("lake", "staging", "intermediate", "marts", "identity")
        ),
    ]
    # The lake's tables as views: the very views dbt's on-run-start made in the compile
    # warehouse (macros/lake_views.sql).
    with duckdb.connect(str(compile_home / "warehouse.duckdb"), read_only=True) as compiled:
        statements.extend(
            sql
            for (sql,) in compiled.sql(
                "select sql from duckdb_views() where schema_name = 'lake' order by view_name"
            ).fetchall()
        )
    for uid in order:
        node = nodes[uid]
        relation = node["relation_name"]
        if node["resource_type"] == "seed":  # a CSV file with its declared column types
            path = Path(node["root_path"]) / node["original_file_path"]
            types = ", ".join(f"'{c}': '{t}'" for c, t in node["config"]["column_types"].items())
            statements.append(
                f"-- {uid}\ncreate table {relation} as "
                f"select * from read_csv('{path}', header = true, columns = {{{types}}});"
            )
            continue
        if node["language"] == "python":
            statements.append(f"-- python: {relation} = inboxgraph.identity.resolve(links)")
            continue
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        statements.append(f"-- {uid}\ncreate {kind} {relation} as\n{node['compiled_code']};")
    script.write_text("\n".join(statements) + "\n")


def run_floor(script: Path) -> None:
    """Execute the floor script (in this process); its outputs land in ``<script>.duckdb``."""
    from inboxgraph.identity import (
        IDENTIFIER_ID_SQL,
        PERSON_ID_SQL,
        REFUSED_LINKS_SQL,
        REFUSED_LINKS_TYPE,
        load_rules,
        resolve,
    )

    result = script.with_suffix(".duckdb")
    result.unlink(missing_ok=True)
    # The settings of the dbt profile's output.
    con = duckdb.connect(config={"preserve_insertion_order": False})
    con.execute("set TimeZone = 'UTC'")
    # The script is plain SQL (DuckDB runs a whole segment, comments and all); each
    # "-- python: " line between segments is the identity graph, solved here.
    segment: list[str] = []
    for line in [*script.read_text().splitlines(), "-- python: end"]:
        if not line.startswith("-- python: "):
            segment.append(line)
            continue
        if any(text.strip() and not text.startswith("--") for text in segment):
            con.execute("\n".join(segment))
        segment = []
        relation = line.removeprefix("-- python: ").split(" = ")[0]
        if relation == "end":
            break
        links = con.sql(
            "select left_type, left_value, right_type, right_value, first_observed_at, rule "
            'from "warehouse"."intermediate"."int_identity__links_collected"'
        ).pl()
        # The project's rules (var identity), as the identity model applies them.
        resolution = resolve(links, load_rules())
        resolved = resolution.identifiers.to_arrow()  # noqa: F841 (read by DuckDB)
        refused = resolution.refused.to_arrow()  # noqa: F841
        con.execute(
            f"create table {relation} as select resolved.*, "
            f"cast(coalesce(r.refused_links, []) as {REFUSED_LINKS_TYPE}) as refused_links, "
            f"{IDENTIFIER_ID_SQL} as identifier_id, {PERSON_ID_SQL} as person_id "
            f"from resolved left join ({REFUSED_LINKS_SQL.format(refused='refused')}) as r "
            "using (identifier_type, identifier_value)"
        )
    con.execute(f"attach '{result}' as floor_result")
    for relation in OUTPUTS:
        con.execute(
            f"create table floor_result.{relation.replace('.', '__')} as "
            f"select * from warehouse.{relation}"
        )
    con.close()


def compare(floor_db: Path, warehouse: Path) -> dict[str, int]:
    """Rows that differ (both directions) per output; raises when any does."""
    con = duckdb.connect()
    con.execute(f"attach '{floor_db}' as f (read_only)")
    con.execute(f"attach '{warehouse}' as w (read_only)")
    differences: dict[str, int] = {}
    for relation in OUTPUTS:
        columns = [
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'w' "
                "and table_schema = ? and table_name = ? order by ordinal_position",
                relation.split("."),
            ).fetchall()
            if row[0] not in VOLATILE_COLUMNS.get(relation, [])
        ]
        listing = ", ".join(f'"{c}"' for c in columns)
        floor_table = f"f.main.{relation.replace('.', '__')}"
        differ = con.execute(
            f"select (select count(*) from (select {listing} from w.{relation} except all "
            f"select {listing} from {floor_table})) + (select count(*) from (select {listing} "
            f"from {floor_table} except all select {listing} from w.{relation}))"
        ).fetchone()[0]
        rows = con.execute(f"select count(*) from w.{relation}").fetchone()[0]
        differences[relation] = differ
        log(f"  {relation}: {rows:,} rows, {differ} differ from the floor")
    con.close()
    if any(differences.values()):
        raise SystemExit(f"the pipeline's outputs differ from the floor's: {differences}")
    return differences


def measure_floor(home: Path, as_of: str, name: str) -> Measure:
    script = home / f"{name}.sql"
    floor_script(home, as_of, script)
    command = [sys.executable, str(Path(__file__).resolve()), "--run-floor", str(script)]
    return measured(command, dict(os.environ), home, home / f"{name}.log")


# ------------------------------------------------------------------ one size
def bench_size(workdir: Path, people: int, days: int, smallest: bool) -> SizeResult:
    data = generate(workdir, people, days)
    result = SizeResult(people)
    for source, count in event_counts(data / "landing").items():
        setattr(result, source, count)
    home = workdir / f"run-{people}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    end = END.isoformat()
    as_of_full = f"{END.isoformat()} 00:00:00"
    as_of_incremental = f"{(END + timedelta(days=1)).isoformat()} 00:00:00"
    link_tree(data / "landing", home / "landing", skip_day=end)

    log(f"{people:,} people: land {days} days of events")
    command, env = inboxgraph(home, "run", "--skip-warehouse")
    result.land = measured(command, env, home, home / "land.log")
    log(f"  {result.land.seconds:.1f}s")

    log(f"{people:,} people: full refresh (empty warehouse)")
    command, env = inboxgraph(home, "run", "--as-of", as_of_full)
    result.full = measured(command, env, home, home / "full.log")
    log(f"  {result.full.seconds:.1f}s, peak {result.full.peak_rss_bytes / 2**30:.2f} GiB")

    log(f"{people:,} people: engine floor")
    result.floor = measure_floor(home, as_of_full, "floor")
    log(f"  {result.floor.seconds:.1f}s, peak {result.floor.peak_rss_bytes / 2**30:.2f} GiB")
    result.full_equal = compare(home / "floor.duckdb", home / "warehouse.duckdb")

    log(f"{people:,} people: identity suggestions (splink, on demand)")
    command, env = inboxgraph(home, "identity", "suggest", "--show", "1")
    result.suggestions = measured(command, env, home, home / "suggestions.log")
    log(f"  {result.suggestions.seconds:.1f}s")

    if smallest:
        log(f"{people:,} people: no-change run (fixed cost)")
        command, env = inboxgraph(home, "run", "--as-of", as_of_full)
        result.no_change = measured(command, env, home, home / "no-change.log")
        rebuilding = re.search(
            r"rebuilding (\d+) of (\d+) dbt assets", (home / "no-change.log").read_text()
        )
        if rebuilding is None:
            raise SystemExit(f"no 'rebuilding N of M' line in {home / 'no-change.log'}")
        result.no_change_rebuilt = [int(rebuilding[1]), int(rebuilding[2])]
        start = [sys.executable, "-c", "import inboxgraph.definitions"]
        result.process_start = measured(start, env, home, home / "process-start.log")
        log(
            f"  {result.no_change.seconds:.1f}s ({result.process_start.seconds:.1f}s of it "
            f"process start), {result.no_change_rebuilt[0]} of {result.no_change_rebuilt[1]} "
            "dbt assets rebuilt"
        )

    log(f"{people:,} people: incremental (day {end} lands)")
    link_tree(data / "landing", home / "landing", skip_day=None)
    command, env = inboxgraph(home, "run", "--as-of", as_of_incremental)
    result.incremental = measured(command, env, home, home / "incremental.log")
    log(f"  {result.incremental.seconds:.1f}s")
    result.incremental_floor = measure_floor(home, as_of_incremental, "floor-incremental")
    result.incremental_equal = compare(home / "floor-incremental.duckdb", home / "warehouse.duckdb")
    shutil.rmtree(home, ignore_errors=True)
    return result


# ------------------------------------------------------------------ report
def ratios(results: list[SizeResult]) -> dict[str, float | None]:
    largest, smallest = results[-1], results[0]
    out: dict[str, float | None] = {
        "full_vs_floor": round(largest.full.seconds / largest.floor.seconds, 2),
        "incremental_vs_full": round(largest.incremental.seconds / largest.full.seconds, 3),
        "peak_memory_gb_1m": round(
            max(largest.full.peak_rss_bytes, largest.incremental.peak_rss_bytes) / 1e9, 2
        ),
        "growth_100k_to_1m": None,
    }
    if len(results) > 1:
        out["growth_100k_to_1m"] = round(largest.full.seconds / smallest.full.seconds, 2)
    return out


def table(results: list[SizeResult]) -> str:
    rows = [
        "| people | web events (Segment + GA4 + Mixpanel) | ESP events | land events "
        "| full refresh | floor | full / floor "
        "| incremental (+1 day) | incremental / full | peak memory (full) "
        "| suggestions (splink) | suggestions / full |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.people:,} | {r.web_events + r.ga4_events + r.mixpanel_events:,} "
            f"({r.web_events:,} + {r.ga4_events:,} + {r.mixpanel_events:,}) "
            f"| {r.esp_events:,} | {r.land.seconds:.0f} s "
            f"| {r.full.seconds:.0f} s | {r.floor.seconds:.0f} s "
            f"| {r.full.seconds / r.floor.seconds:.2f}x | {r.incremental.seconds:.0f} s "
            f"| {r.incremental.seconds / r.full.seconds:.0%} "
            f"| {r.full.peak_rss_bytes / 1e9:.2f} GB "
            f"| {r.suggestions.seconds:.0f} s | {r.suggestions.seconds / r.full.seconds:.0%} |"
        )
    return "\n".join(rows)


def chart(results: list[SizeResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    people = [r.people for r in results]
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=120)
    series = (
        ("full refresh (inboxgraph run)", [r.full.seconds for r in results], "o-"),
        ("engine floor (one DuckDB script)", [r.floor.seconds for r in results], "s--"),
        ("incremental, +1 day", [r.incremental.seconds for r in results], "^-"),
        ("landing events into the lake", [r.land.seconds for r in results], "d:"),
    )
    for label, seconds, style in series:
        axis.plot(people, seconds, style, label=label)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("people (about 31 events each)")
    axis.set_ylabel("seconds (wall clock)")
    axis.set_title("Inboxgraph run time against data size, 2 cores")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/inboxgraph-bench"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--run-floor", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_floor:
        run_floor(args.run_floor)
        return 0
    sizes = sorted(args.sizes)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = [bench_size(args.workdir, n, args.days, n == sizes[0]) for n in sizes]
    summary = ratios(results)
    report = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "system": platform.platform(),
        },
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "days": args.days,
        "sizes": [asdict(r) for r in results],
        "ratios": summary,
        "targets": TARGETS,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / "pipeline.md").write_text(table(results) + "\n")
    chart(results, args.results / "pipeline.png")
    print()
    print(table(results))
    first = results[0]
    if first.no_change and first.process_start:
        beyond = first.no_change.seconds - first.process_start.seconds
        print(
            f"\nno-change run at {first.people:,} people: {first.no_change.seconds:.1f}s, "
            f"{beyond:.1f}s beyond process start ({first.process_start.seconds:.1f}s); "
            f"{first.no_change_rebuilt[0]} of {first.no_change_rebuilt[1]} dbt assets rebuilt"
        )
    print("\nratios (largest size):")
    for name, value in summary.items():
        target = TARGETS[name]
        if value is None:
            print(f"  {name:<22} n/a (one size)")
            continue
        ok = value <= target
        print(f"  {name:<22} {value:>8}  target <= {target}  {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
