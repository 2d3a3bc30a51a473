"""The ``inboxgraph`` command line."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from inboxgraph.explain import IDENTIFIER_TYPES
from inboxgraph.settings import (
    ConfigurationError,
    ensure_environment,
    is_remote,
    require_local,
    safe_url,
)

if TYPE_CHECKING:
    from inboxgraph.privacy import Receipt
    from inboxgraph.settings import Paths

DEMO_PEOPLE = 2_000
DEMO_DAYS = 120


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _parse_timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO timestamp: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return value


def _probability(text: str) -> float:
    value = _positive_number(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1: {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number: {text}")
    return value


def _choices(text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    unknown = [t for t in chosen if t not in allowed]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"must be some of {', '.join(allowed)}, comma-separated: {text}"
        )
    return chosen


def _web_tools(text: str) -> tuple[str, ...]:
    from inboxgraph.generate.analytics import WEB_TOOLS

    return _choices(text, WEB_TOOLS)


def _crms(text: str) -> tuple[str, ...]:
    from inboxgraph.generate.commerce import CRMS

    return _choices(text, CRMS)


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from inboxgraph.generate.writer import GenerateOptions, generate_landing

    paths = ensure_environment()
    if is_remote(paths.landing_url):
        print(
            "generate writes to a local landing folder; unset INBOXGRAPH_LANDING_URL "
            "and copy the folder to object storage afterwards",
            file=sys.stderr,
        )
        return 2
    options = GenerateOptions(
        people=args.people,
        days=args.days,
        seed=args.seed,
        end=args.end or datetime.now(UTC).date(),
        web_tools=args.web_tools,
        crms=args.crms,
    )
    started = time.monotonic()
    with tqdm(
        total=options.people,
        unit="people",
        desc="generate",
        file=sys.stderr,
        disable=args.quiet or None,
    ) as bar:
        try:
            report = generate_landing(
                Path(paths.landing_url),
                options,
                progress=bar.update,
                shop_db_url=paths.shop_db_url,
            )
        except (FileExistsError, ConnectionError) as exc:
            bar.leave = False
            print(f"inboxgraph generate: {exc}", file=sys.stderr)
            return 2
    bad = sum(sum(kinds.values()) for kinds in report.bad.values())
    print(
        f"generated {options.people:,} people over {options.days} days ending "
        f"{options.end} (seed {options.seed}) into {paths.landing_url} "
        f"in {time.monotonic() - started:.1f}s"
    )
    print(f"  shop database: {safe_url(paths.shop_db_url)}")
    for source, n in sorted(report.records.items()):
        print(f"  {source:<18} {n:>12,} records")
    print(f"  bad records: {bad:,}; duplicates: {sum(report.duplicates.values()):,}")
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager's stop, `kill`) stops a run as Ctrl-C does: Dagster marks
    the run failed and releases its slots, and dbt's process is terminated."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def cmd_run(args: argparse.Namespace) -> int:
    from inboxgraph.runner import format_summary, run_pipeline

    paths = ensure_environment()
    _stop_on_sigterm()
    started = time.monotonic()
    print(f"running the asset graph on {paths.home} (Dagster instance {paths.dagster_home})")
    summary = run_pipeline(
        paths,
        as_of=args.as_of,
        full_refresh=args.full_refresh,
        reingest=args.reingest,
        warehouse=not args.skip_warehouse,
        pool_wait_seconds=args.wait_for_pool,
        accept_identity_changes=args.accept_identity_changes,
    )
    print(format_summary(summary))
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0 if summary.succeeded and not summary.checks_failed else 1


def cmd_demo(args: argparse.Namespace) -> int:
    paths = ensure_environment()
    landing = Path(paths.landing_url)
    if landing.exists() and any(landing.iterdir()):
        print(f"{landing} already holds data; running on it (remove it to regenerate)")
    else:
        args.people, args.days, args.seed, args.end = DEMO_PEOPLE, DEMO_DAYS, args.seed, None
        args.web_tools = ("segment", "ga4", "mixpanel")
        args.crms = ("hubspot", "salesforce")
        code = cmd_generate(args)
        if code:
            return code
    args.as_of, args.full_refresh, args.reingest, args.skip_warehouse = None, False, False, False
    args.wait_for_pool, args.accept_identity_changes = 1800, False
    return cmd_run(args)


def report_erasure(paths: Paths, receipt: Receipt) -> None:
    """Tell Dagster which lake tables (and received dates) the erasure rewrote, as
    materializations: the next run rebuilds what reads them (inboxgraph.rebuild), so counts
    such as segment sizes no longer include the person."""
    import dagster as dg

    from inboxgraph.partitions import EVENT_FOLDERS
    from inboxgraph.privacy import rewritten_lake_tables
    from inboxgraph.runner import prepare_instance

    if is_remote(paths.lake_url):
        return  # the erasure rewrites a local lake only
    instance = prepare_instance(paths)
    tables = rewritten_lake_tables(Path(paths.lake_url), receipt.files)
    for path, days in sorted(tables.items()):
        # The event tables are partitioned by received date in Dagster; the others are not.
        partitions = sorted(days) if path[-1] in EVENT_FOLDERS else []
        for day in partitions or [None]:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey(list(path)),
                    partition=day,
                    description="Rewritten by a GDPR erasure (inboxgraph forget).",
                    metadata={"erasure": True},
                )
            )


def cmd_forget(args: argparse.Namespace) -> int:
    import dagster as dg

    from inboxgraph.privacy import describe, forget
    from inboxgraph.resources.lake import LakeResource
    from inboxgraph.resources.wiring import ESP_RESOURCES, source_resources

    if not args.email and not args.user_id:
        print("forget needs --email and/or --user-id", file=sys.stderr)
        return 2
    paths = ensure_environment()
    # The ESPs the audiences are synced to, as the refresh's resources read them.
    resources = source_resources()
    destinations = [resources[key].process_config_and_initialize() for key in ESP_RESOURCES]

    def report(layer: str, removed: int) -> None:
        print(f"  {layer:<10}{removed:>8} records removed", flush=True)

    try:
        person, receipt = forget(
            email=args.email,
            user_id=args.user_id,
            landing=Path(paths.landing_url),
            lake=LakeResource(url=paths.lake_url),
            warehouse=paths.warehouse,
            exports=Path(paths.exports),
            shop_db_url=paths.shop_db_url,
            log=report,
            destinations=destinations,
        )
    except dg.Failure as failure:
        print(
            f"inboxgraph forget: {failure.description}. The tombstones are recorded, nothing "
            "else is erased yet: run it again once the ESP answers",
            file=sys.stderr,
        )
        return 1
    report_erasure(paths, receipt)
    for line in describe(person, args.email):
        print(line)
    erased_at = receipt.erased_at.strftime("%Y-%m-%d %H:%M:%S")
    print(f"tombstones recorded; receipt in marts.audit_log (erased at {erased_at} UTC)")
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    from inboxgraph.runner import run_suggestions

    paths = ensure_environment()
    if not Path(paths.warehouse).exists():
        print(
            f"inboxgraph identity suggest: the warehouse {paths.warehouse} does not exist; "
            "run `inboxgraph run` first",
            file=sys.stderr,
        )
        return 2
    summary, pairs = run_suggestions(paths, args.threshold)
    if not summary.succeeded:
        for step, reason in summary.failed_steps.items():
            print(f"{step} failed: {reason}", file=sys.stderr)
        return 1
    print(f"{len(pairs)} probable duplicates in marts.identity_suggestions")
    for left, right, probability in pairs[: args.show]:
        print(f"  {probability:.4f}  {left}  ~  {right}")
    if pairs:
        print("accept one with `inboxgraph identity link email:<left> email:<right> --reason ...`")
    return 0


def cmd_identity(args: argparse.Namespace) -> int:
    from inboxgraph.overrides import OverrideError, add_override, overrides_file, parse_identifier

    path = overrides_file()
    try:
        override = add_override(
            args.action,
            parse_identifier(args.left),
            parse_identifier(args.right),
            author=args.author,
            reason=args.reason,
            path=path,
        )
    except OverrideError as exc:
        print(f"inboxgraph identity {args.action}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {override.describe()} to {path}")
    print("it applies from the next `inboxgraph run` (and on every run after it)")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from inboxgraph.explain import describe, explain

    given = [(kind, getattr(args, kind)) for kind in IDENTIFIER_TYPES if getattr(args, kind)]
    if len(given) != 1:
        flags = ", ".join("--" + kind.replace("_", "-") for kind in IDENTIFIER_TYPES)
        print(f"explain needs exactly one of {flags}", file=sys.stderr)
        return 2
    ((kind, value),) = given
    paths = ensure_environment()
    try:
        explanation = explain(paths.warehouse, kind, value)
    except FileNotFoundError as exc:
        print(f"inboxgraph explain: {exc}", file=sys.stderr)
        return 2
    if explanation is None:
        print(f"no person holds that {kind} in marts.identity_map", file=sys.stderr)
        return 1
    for line in describe(explanation):
        print(line)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from inboxgraph.collector import (
        CollectorSettings,
        EspEventsSink,
        KafkaSink,
        LandingSink,
        build_app,
        server_config,
    )
    from inboxgraph.webhooks import ESPS

    paths = ensure_environment()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    topic = os.environ.get("INBOXGRAPH_EVENTS_TOPIC", "inboxgraph.events")
    if bootstrap:
        sink = KafkaSink(bootstrap, topic)
        where = f"Kafka {bootstrap} topic {topic}"
    else:
        # Appending and fsyncing needs a file system: on an object store, use Kafka.
        sink = LandingSink(
            Path(require_local(paths.landing_url, "the collector's landing zone without Kafka"))
        )
        where = f"{paths.landing_url}/web_events (batch path)"
    write_key = os.environ.get("INBOXGRAPH_WRITE_KEY") or None
    secrets = {
        esp: os.environ[f"INBOXGRAPH_{esp.upper()}_WEBHOOK_SECRET"]
        for esp in ESPS
        if os.environ.get(f"INBOXGRAPH_{esp.upper()}_WEBHOOK_SECRET")
    }
    esp_sink = None
    if secrets:
        # The ESPs' webhooks append to the landing zone's ESP events.
        where_esp = require_local(paths.landing_url, "the ESP webhooks' landing zone")
        esp_sink = EspEventsSink(Path(where_esp))
    settings = CollectorSettings(
        write_key=write_key,
        webhook_secrets=secrets,
        # Unset flags keep CollectorSettings' defaults (the collector is imported only here).
        **{
            field: getattr(args, field)
            for _, field, _, _ in COLLECTOR_LIMITS
            if getattr(args, field) is not None
        },
    )
    app = build_app(sink, settings, esp_sink=esp_sink)
    print(
        f"collecting on http://{args.host}:{args.port}/v1/ into {where}; "
        f"write key {'required' if write_key else 'not required'}; ESP webhooks: "
        + (", ".join(f"/webhooks/{esp}" for esp in secrets) or "none (no secret set)"),
        flush=True,
    )
    try:
        uvicorn.Server(server_config(app, args.host, args.port, settings)).run()
    finally:
        if isinstance(sink, KafkaSink):
            sink.close()
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    import logging
    import os

    from inboxgraph.resources.lake import LakeResource
    from inboxgraph.stream import StreamWorker, dagster_reporter, ensure_stream_table

    paths = ensure_environment()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        print("inboxgraph stream needs KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Batch files are discarded by offset range on reassignment: a file system is needed.
    require_local(paths.lake_url, "the stream worker's lake")
    lake = LakeResource(url=paths.lake_url)
    ensure_stream_table(lake)
    from inboxgraph.runner import prepare_instance

    prepare_instance(paths)
    worker = StreamWorker(
        bootstrap,
        os.environ.get("INBOXGRAPH_EVENTS_TOPIC", "inboxgraph.events"),
        lake,
        max_batch=args.max_batch,
        max_wait_seconds=args.max_wait,
        on_batch=None if args.no_report else dagster_reporter(),
    )
    landed = worker.run(idle_exit_seconds=args.exit_when_idle)
    print(f"stream worker stopped; {landed} events landed")
    return 0


# `inboxgraph collect`'s limits: flag, CollectorSettings field, type, help.
COLLECTOR_LIMITS = (
    ("--rate-per-key", "rate_per_key", _positive_number, "requests/s per write key (then 429)"),
    ("--burst-per-key", "burst_per_key", _positive, "requests a write key may burst"),
    ("--rate-per-client", "rate_per_client", _positive_number, "requests/s per client address"),
    ("--burst-per-client", "burst_per_client", _positive, "requests a client may burst"),
    ("--max-concurrent", "max_concurrent_requests", _positive, "requests at once (then 503)"),
    ("--header-timeout", "header_timeout_seconds", _positive_number, "seconds for the headers"),
    ("--body-timeout", "body_timeout_seconds", _positive_number, "seconds for the body"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inboxgraph",
        description="Customer data platform for email personalization (Dagster + dbt + DuckDB).",
    )
    parser.add_argument("--home", help="root of the embedded platform (INBOXGRAPH_HOME)")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write realistic demo data into the landing zone")
    gen.add_argument("--people", type=_positive, default=DEMO_PEOPLE)
    gen.add_argument("--days", type=_positive, default=DEMO_DAYS)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument(
        "--end", type=_parse_date, default=None, help="last day of data (default: today, UTC)"
    )
    gen.add_argument(
        "--web-tools",
        type=_web_tools,
        default=("segment", "ga4", "mixpanel"),
        help="the shop's web analytics tools, comma-separated: any of segment, ga4, mixpanel "
        "(default: all three, each tracking a share of the sessions)",
    )
    gen.add_argument(
        "--crms",
        type=_crms,
        default=("hubspot", "salesforce"),
        help="the shop's CRMs, comma-separated: any of hubspot, salesforce (default: both, "
        "each knowing a share of the contacts and some people in both)",
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="materialize the whole asset graph through Dagster")
    run.add_argument(
        "--as-of",
        type=_parse_timestamp,
        default=None,
        help="evaluate profiles and segments at this moment (default: now)",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild incremental warehouse models from scratch",
    )
    run.add_argument(
        "--wait-for-pool",
        type=_positive_number,
        default=1800,
        help="seconds to wait for another run that holds the warehouse (then fail)",
    )
    run.add_argument(
        "--reingest",
        action="store_true",
        help="land every received date again, not only those whose files are new or changed",
    )
    run.add_argument(
        "--skip-warehouse",
        action="store_true",
        help="only land new web and ESP events in the lake; leave the warehouse as it is",
    )
    run.add_argument(
        "--accept-identity-changes",
        action="store_true",
        help="let exports through although more people were merged or split than "
        "var identity's health.max_changed_share allows (after checking why)",
    )
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="generate demo data (small) and run the graph on it")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=cmd_demo)

    erase = sub.add_parser("forget", help="GDPR erasure of one person across every layer")
    erase.add_argument("--email", help="an address of the person")
    erase.add_argument("--user-id", help="a user id of the person")
    erase.set_defaults(func=cmd_forget)

    why = sub.add_parser(
        "explain", help="a person's identifiers and the links, rules and records behind them"
    )
    for kind in IDENTIFIER_TYPES:
        why.add_argument("--" + kind.replace("_", "-"), dest=kind, help=f"the person's {kind}")
    why.set_defaults(func=cmd_explain)

    identity = sub.add_parser(
        "identity", help="write an identity override: split two identifiers or link them"
    )
    actions = identity.add_subparsers(dest="action", required=True)
    for action, help_ in (
        ("split", "keep two identifiers in different people, whatever links them (never_link)"),
        ("link", "join two identifiers into one person, whatever the limits say"),
    ):
        rule = actions.add_parser(action, help=help_)
        rule.add_argument("left", help="type:value, e.g. email:ann@example.com")
        rule.add_argument("right", help="type:value, e.g. user_id:u-123")
        rule.add_argument("--reason", required=True, help="why (kept with the rule)")
        rule.add_argument("--author", default=getpass.getuser(), help="who (default: you)")
        rule.set_defaults(func=cmd_identity)
    suggest = actions.add_parser(
        "suggest", help="score probable duplicate people (splink) for review; nothing is merged"
    )
    suggest.add_argument(
        "--threshold", type=_probability, default=0.9, help="lowest match probability listed"
    )
    suggest.add_argument("--show", type=_positive, default=20, help="pairs printed")
    suggest.set_defaults(func=cmd_suggest)

    collect = sub.add_parser("collect", help="the Segment-compatible event collector")
    collect.add_argument("--host", default="127.0.0.1")
    collect.add_argument("--port", type=_positive, default=8088)
    for flag, field, kind, help_ in COLLECTOR_LIMITS:
        collect.add_argument(flag, dest=field, type=kind, help=help_)
    collect.set_defaults(func=cmd_collect)

    stream = sub.add_parser("stream", help="the stream worker: Kafka -> lake")
    stream.add_argument(
        "--max-batch",
        type=_positive,
        default=50_000,
        help="most messages per micro-batch (a batch is also cut after --max-wait)",
    )
    stream.add_argument(
        "--max-wait", type=float, default=0.5, help="seconds to wait for a micro-batch to fill"
    )
    stream.add_argument(
        "--exit-when-idle",
        type=float,
        default=None,
        help="stop after this many seconds without messages",
    )
    stream.add_argument(
        "--no-report", action="store_true", help="do not report batches to the Dagster instance"
    )
    stream.set_defaults(func=cmd_stream)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.home:
            ensure_environment(args.home)
        return args.func(args)
    except ConfigurationError as exc:
        print(f"inboxgraph: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
