"""`mlops`: the platform from a terminal (run the graph, land batches, status, UI)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_assets import governance_cli, quiet
from mlops_assets.disk_space import disk_full_sentence, is_disk_full
from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.progress import show_on_terminal

if TYPE_CHECKING:
    from mlops_assets.runner import BatchRun, PipelineRun

FAULT_CHOICES = ("nulls", "out_of_range", "unparseable", "duplicates")
SCENARIOS = ("none", "covariate_shift", "market_jump")
LOOPBACK = "127.0.0.1"
# How the README and this tool's output spell a command: the wrapper at the checkout's root
# runs the installed environment whether or not uv is on PATH (see `mlops` beside README.md).
COMMAND = "./mlops"
FEAST_SERVERS = frozenset({"serve", "serve_offline", "serve_registry", "serve_lineage", "ui"})
FEAST_OPEN_ONLY = frozenset({"serve_transformations"})  # gRPC on [::], no --host option
DEBUG_HELP = "show tracebacks and Dagster's error log on the terminal, not only in the log file"
SAMPLE_ROWS = 10_000


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mlops` command."""
    quiet.apply()
    os.environ.update(quiet.child_environment())  # before MLflow is imported: it reads it once
    show_on_terminal()  # the steps' progress lines, which the run log holds too
    parser = _parser()
    args = parser.parse_args(argv)
    paths = PlatformPaths(resolve_home(args.home))
    try:
        return int(args.handler(args, paths) or 0)
    except (ValueError, FileNotFoundError) as exc:
        _say(f"error: {exc}")
        return 2
    except Exception as exc:  # any other error: its sentence here, its traceback in a log
        if is_disk_full(exc, paths.root):
            from mlops_assets.runner import fail_own_runs

            if args.debug:
                import traceback

                traceback.print_exception(exc)
            reason = disk_full_sentence(paths.root)
            fail_own_runs(paths, reason)  # not left `STARTED`, to be called killed later
            _say(f"error: {reason}")
            return 1
        return _failed_command(exc, paths, args, argv)


def _failed_command(
    exc: Exception, paths: PlatformPaths, args: argparse.Namespace, argv: Sequence[str] | None
) -> int:
    """End a command that an error stopped: one sentence, the traceback in the log (or here)."""
    import traceback

    from mlops_assets.known_errors import explain_exception
    from mlops_assets.run_log import write_error_log

    command = " ".join(sys.argv[1:] if argv is None else argv)
    sentence = explain_exception(exc, paths.root)
    if sentence is None:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        sentence = f"{type(exc).__name__}: {first}"
    if args.debug:
        traceback.print_exception(exc)
    log = write_error_log(exc, paths, command)
    _say(f"error: {sentence}{_log_note(log, args.debug)}")
    return 1


def _log_note(log: os.PathLike[str] | str | None, debug: bool) -> str:
    """Where the traceback went, said at the end of the failure's sentence."""
    if debug:
        return f" (full log: {log})" if log else ""
    if log is None:
        return " (the log could not be written; add --debug to see the traceback)"
    return f" (full log: {log}; add --debug to see it here)"


ALLOW_REPEAT_HELP = (
    "accept a delivery whose content equals another batch's (the same file again under a new "
    "batch key; its rows are then counted again); refused naming that batch otherwise"
)


KEYLESS_NOTE = (
    "Rows are identified by their content (the spec names no entity key): row_id is a hash of "
    "each row's values, and a batch's rows take its first ingestion time. A row delivered again "
    "in a later batch is a new event and counted again; a delivery equal to an earlier batch's "
    "is refused (--allow-repeat accepts it)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__)
    parser.add_argument("--home", help="state folder (default: $MLOPS_HOME or ./.mlops_home)")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="materialize the platform's graph for one batch")
    run.add_argument("--batch", default="initial", help="batch (partition) key")
    run.add_argument(
        "--source",
        choices=("synthetic", "file", "sklearn", "landing", "retail"),
        default="synthetic",
        help="synthetic: the house market; retail: the retail demand market",
    )
    run.add_argument("--path", default="", help="file source: path, glob or http(s) URL")
    run.add_argument("--dataset", default="breast_cancer", help="sklearn source: dataset name")
    run.add_argument(
        "--spec",
        help="dataset spec YAML, or the name of a shipped one (house_prices, retail_demand, "
        "...); saved in the state folder for later runs",
    )
    run.add_argument("--days", type=int, help="retail source: days of sales (default 730)")
    run.add_argument("--start", help="retail source: first day, ISO date (default 2023-01-01)")
    run.add_argument(
        "--replace",
        action="store_true",
        help="replace the data of an existing batch with a different delivery (recorded)",
    )
    run.add_argument("--allow-repeat", action="store_true", help=ALLOW_REPEAT_HELP)
    run.add_argument(
        "--full-online-rewrite",
        action="store_true",
        help="rewrite every entity in the online store, not only those whose features changed",
    )
    run.add_argument(
        "--parallel",
        action="store_true",
        help="run independent steps in parallel processes (needs the production profile)",
    )
    _synthetic_options(run)
    _training_options(run)
    run.set_defaults(handler=_run)

    land = commands.add_parser("land", help="drop a generated batch into the landing folder")
    land.add_argument("--key", help="batch key (default: batch-<seed>-<scenario>)")
    land.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    _synthetic_options(land)
    land.set_defaults(handler=_land)

    ingest = commands.add_parser("ingest", help="ingest every file waiting in the landing folder")
    ingest.add_argument(
        "--replace",
        action="store_true",
        help="a landed file may replace the data of an existing batch of the same key (recorded)",
    )
    ingest.add_argument("--allow-repeat", action="store_true", help=ALLOW_REPEAT_HELP)
    ingest.set_defaults(handler=_ingest)

    status = commands.add_parser("status", help="show batches, tables and recent runs")
    status.set_defaults(handler=_status)

    feast = commands.add_parser(
        "feast", help="run the feast CLI in feature_repo/ on this state folder", add_help=False
    )
    feast.add_argument("feast_args", nargs=argparse.REMAINDER)
    feast.set_defaults(handler=_feast)

    serve = commands.add_parser("serve", help="bentoml serve the champion exported by `run`")
    _server_options(serve, port=3001)  # beside the UI's 3000: both run in the closed loop
    serve.set_defaults(handler=_serve)

    mlflow = commands.add_parser("mlflow", help="open the MLflow UI on this state folder's store")
    _server_options(mlflow, port=5000)
    mlflow.set_defaults(handler=_mlflow)

    history = commands.add_parser("history", help="promotion history of the champion")
    history.set_defaults(handler=_history)

    rollback = commands.add_parser("rollback", help="restore the previous champion")
    rollback.add_argument("--reason", default="manual rollback")
    rollback.set_defaults(handler=_rollback)

    _rollout_commands(commands)
    governance_cli.add_commands(commands)

    ui = commands.add_parser("ui", help="open the Dagster UI (dagster dev) on this state folder")
    _server_options(ui, port=3000)
    ui.set_defaults(handler=_ui)
    _validate_command(commands)
    for name, command in commands.choices.items():
        if name != "feast":  # the feast CLI's own arguments follow it untouched
            _debug_option(command)
    return parser


def _debug_option(parser: argparse.ArgumentParser) -> None:
    """`--debug` after the command too; SUPPRESS keeps one given before it."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _debug_option(sub)


def _validate_command(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser(
        "validate", help="check a dataset spec, and optionally a sample of data against it"
    )
    validate.add_argument("spec", help="dataset spec YAML")
    validate.add_argument("--data", help="a CSV or Parquet file to check against the spec")
    validate.add_argument(
        "--rows",
        type=int,
        default=SAMPLE_ROWS,
        help=f"rows of --data to check (default: the first {SAMPLE_ROWS:,})",
    )
    validate.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace, paths: PlatformPaths) -> int:
    """Every problem of the spec, then of the data sample, one per line; nothing written."""
    from mlops_assets.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        _say(f"{args.spec}: {len(exc.problems)} problem(s) in the spec:")
        for problem in exc.problems:
            _say(f"  - {problem}")
        return 2
    _say(
        f"{args.spec}: spec {spec.name!r} v{spec.version} is valid ({spec.task}, "
        f"{len(spec.columns)} columns)"
    )
    if not args.data:
        return 0
    from mlops_assets.core.sample_check import check_sample
    from mlops_assets.sources import SourceError
    from mlops_assets.sources.files import read_sample

    try:
        sample, complete = read_sample(args.data, args.rows)
    except SourceError as exc:
        _say(f"error: {exc}")
        return 2
    report = check_sample(sample, spec, complete=complete)
    for line in report.lines:
        _say(line)
    return 1 if report.problems else 0


def _rollout_commands(commands: argparse._SubParsersAction) -> None:
    rollout = commands.add_parser(
        "rollout", help="shadow or canary the challenger beside the champion, or stop"
    )
    modes = rollout.add_subparsers(required=True, metavar="MODE")
    shadow = modes.add_parser("shadow", help="the champion answers; the challenger scores too")
    canary = modes.add_parser("canary", help="a share of traffic is answered by the challenger")
    canary.add_argument(
        "--share", type=float, required=True, help="share answered by the challenger (0-1)"
    )
    for parser, mode in ((shadow, "shadow"), (canary, "canary")):
        parser.add_argument("--version", help="registered version (default: the challenger)")
        parser.add_argument("--reason", default=f"mlops rollout {mode}")
        parser.set_defaults(handler=_rollout, mode=mode)
    off = modes.add_parser("off", help="champion only again (rolls the rollout back)")
    off.add_argument("--reason", default="mlops rollout off")
    off.set_defaults(handler=_rollout, mode="champion")
    status = modes.add_parser(
        "status", help="the rollout the service follows, and what its workers serve and count"
    )
    status.set_defaults(handler=_rollout, mode=None)


def _server_options(parser: argparse.ArgumentParser, port: int) -> None:
    """Every server binds loopback unless told otherwise: none of them asks who is calling."""
    parser.add_argument(
        "--host",
        default=LOOPBACK,
        help=f"interface to listen on (default: {LOOPBACK}; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=int, default=port)


def _listening(args: argparse.Namespace, what: str) -> str:
    """The true address a server is about to bind, said before it starts."""
    where = f"http://{args.host}:{args.port}"
    if args.host in ("0.0.0.0", "::", ""):
        return f"Starting {what} on {where} (every network interface, without authentication)"
    return f"Starting {what} on {where}"


def _start_server(args: argparse.Namespace, what: str, command: list[str], probe: str) -> int:
    """Start the server, print `<what> ready at URL` once `probe` answers, wait for its end."""
    from mlops_assets.server_process import run_server, say

    host = LOOPBACK if args.host in ("0.0.0.0", "::", "") else args.host
    url = f"http://{args.host}:{args.port}"
    _say(_listening(args, what) + " ...")
    sys.stdout.flush()
    return run_server(
        command,
        f"http://{host}:{args.port}{probe}",
        lambda: say(f"{what} ready at {url}  (Ctrl-C stops it)"),
    )


def _synthetic_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic: number of sales")
    parser.add_argument("--seed", type=int, default=42, help="synthetic: random seed")
    parser.add_argument("--scenario", choices=SCENARIOS, default="none", help="synthetic: drift")
    parser.add_argument(
        "--fault",
        action="append",
        choices=FAULT_CHOICES,
        default=[],
        help="synthetic: inject a fault (repeatable)",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.02, help="synthetic: share of rows per fault"
    )
    parser.add_argument(
        "--first-house-id", type=int, help="synthetic: first house id (default: from the seed)"
    )


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The common `training:` settings of the spec, overridden for this run only."""
    group = parser.add_argument_group("training (default: the spec's training: section)")
    group.add_argument(
        "--search-trials", type=int, help="XGBoost random-search trials (training.search_trials)"
    )
    group.add_argument(
        "--protocol",
        choices=(
            "auto",
            "time_ordered",
            "backtest",
            "latest_period",
            "cross_validation",
            "holdout",
        ),
        help="evaluation protocol (training.protocol)",
    )
    group.add_argument("--folds", type=int, help="cross-validation folds (training.folds)")


def _model_config(args: argparse.Namespace) -> dict:
    given = {
        "search_trials": args.search_trials,
        "protocol": args.protocol,
        "folds": args.folds,
    }
    return {k: v for k, v in given.items() if v is not None}


def _synthetic_config(args: argparse.Namespace) -> dict:
    return {
        "rows": args.rows,
        "seed": args.seed,
        "scenario": args.scenario,
        "faults": list(args.fault),
        "fault_rate": args.fault_rate,
        "first_house_id": _first_house_id(args),
    }


def _spec_file(given: str) -> str:
    """A spec path as given, or a shipped spec named without its folder and `.yaml`."""
    from mlops_assets.spec import SPECS_DIR

    shipped = SPECS_DIR / f"{given}.yaml"
    if not Path(given).exists() and shipped.exists():
        return str(shipped)
    return given


def _first_house_id(args: argparse.Namespace) -> int:
    """Different seeds describe different houses unless told otherwise."""
    if args.first_house_id is not None:
        return args.first_house_id
    return 1 if args.seed == 42 else args.seed * 10_000_000 + 1


def _run(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.resources import resolve_spec_path
    from mlops_assets.runner import ingest_batch, open_instance, run_pipeline
    from mlops_assets.spec import load_spec

    if args.spec:
        args.spec = _spec_file(args.spec)
        load_spec(args.spec)  # fail here, naming the field, before anything is written
        paths.root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.spec, paths.saved_spec)
    instance = open_instance(paths)
    spec_path = resolve_spec_path(paths)
    _say(f"State folder: {paths.root}\nDataset spec: {spec_path}")
    _reconciled_champion(paths)
    if load_spec(spec_path).training.federated is not None:
        return _run_federated(args, instance, paths)
    source = {
        "kind": args.source,
        "path": args.path,
        "dataset": args.dataset,
        "replace": args.replace,
        "allow_repeat": args.allow_repeat,
        **_synthetic_config(args),
        **({"days": args.days} if args.days else {}),
        **({"start": args.start} if args.start else {}),
    }
    run = ingest_batch(instance, args.batch, source, log_level=_log_level(args))
    _report(run, paths, instance, args.debug)
    if not run.success:
        return 1
    pipeline = run_pipeline(
        instance,
        _log_level(args),
        parallel=args.parallel,
        model_config=_model_config(args),
        full_online_rewrite=args.full_online_rewrite,
        reason=f"mlops run, batch {args.batch}",
    )
    _report_pipeline(pipeline, paths, instance, args.debug)
    if not pipeline.success:
        return 1
    _say(_results(paths))
    return 0


def _run_federated(args: argparse.Namespace, instance: Any, paths: PlatformPaths) -> int:
    """A spec naming sites trains at the sites (`federated_job`): no central batch to ingest."""
    from mlops_assets.runner import run_pipeline

    if args.parallel:
        _say("--parallel applies to the central graph; a federated spec runs federated_job")
        return 2
    _say("Federated spec: each site's process reads its own rows; nothing is ingested centrally")
    pipeline = run_pipeline(
        instance,
        _log_level(args),
        job="federated_job",
        model_config=_model_config(args),
        reason="mlops run, federated sites",
    )
    _report_pipeline(pipeline, paths, instance, args.debug)
    if not pipeline.success:
        return 1
    _say(_results(paths))
    return 0


def _log_level(args: argparse.Namespace) -> str:
    """Dagster's console log on the terminal: errors with tracebacks only under --debug.

    Without it the run's sentence is said by this tool and the tracebacks go to the run's
    log file (`run_log.py`) and the Dagster UI.
    """
    return "WARNING" if args.debug else "CRITICAL"


def _results(paths: PlatformPaths) -> str:
    """Where the run's outputs are, on the profile in force."""
    from mlops_assets.profile import active_profile

    profile = active_profile()
    feast, mlflow, dagster = paths.feast, paths.mlflow, paths.dagster_home
    if profile.is_production and profile.postgres and profile.redis:
        pg, redis = profile.postgres, profile.redis
        feast = f"{pg.redacted(pg.feast_db)} + redis {redis.host}:{redis.port}"
        mlflow = pg.redacted(pg.mlflow_db)
        dagster = pg.redacted(pg.dagster_db)
    return (
        f"\nResults ({profile.name} profile):\n"
        f"  cleaned tables     {paths.cleaned_dir()}\n"
        f"  quarantined rows   {paths.data / 'quarantine'}\n"
        f"  feature store      {feast}  ({COMMAND} feast feature-views list)\n"
        f"  training set       {paths.training}\n"
        f"  models and reports {paths.models}\n"
        f"  MLflow             {mlflow}  ({COMMAND} mlflow)\n"
        f"  bento              {paths.bentoml_home}  ({COMMAND} serve)\n"
        f"  Dagster instance   {dagster}\n"
        f"Open the UI with `{COMMAND} ui` (it prints its address when ready)"
    )


def _land(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.sources import SyntheticConfig, drop_batch, generate_house_sales

    key = args.key or f"batch-{args.seed}-{args.scenario}"
    config = SyntheticConfig(
        rows=args.rows,
        seed=args.seed,
        scenario=args.scenario,
        faults=tuple(args.fault),
        fault_rate=args.fault_rate,
        first_house_id=_first_house_id(args),
    )
    path = drop_batch(generate_house_sales(config), paths.landing, key, args.format)
    _say(f"Landed {config.rows} rows as batch {key!r}: {path}")
    return 0


def _ingest(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.runner import ingest_landed, open_instance

    instance = open_instance(paths)
    runs = ingest_landed(
        instance,
        paths,
        replace=args.replace,
        allow_repeat=args.allow_repeat,
        log_level=_log_level(args),
    )
    if not runs:
        _say(f"Nothing waiting in {paths.landing}")
    for run in runs:
        _report(run, paths, instance, args.debug)
    return 0 if all(r.success for r in runs) else 1


def _status(args: argparse.Namespace, paths: PlatformPaths) -> int:
    import dagster as dg

    from mlops_assets.ingestion.publication import recover
    from mlops_assets.runner import open_instance, table_rows

    instance = open_instance(paths)
    recover(paths)
    batches = instance.get_dynamic_partitions("batches")
    _say(f"State folder: {paths.root}\nBatches: {len(batches)}")
    _say(f"  {'batch':<28} {'raw':>10} {'cleaned':>10} {'quarantined':>12}")
    for batch in batches:
        raw, cleaned = table_rows(paths.raw(batch)), table_rows(paths.cleaned(batch))
        quarantined = table_rows(paths.quarantine(batch))
        _say(f"  {batch:<28} {_n(raw):>10} {_n(cleaned):>10} {_n(quarantined):>12}")
    waiting = [
        p.name for p in paths.landing.glob("*") if p.is_file() and not p.name.startswith(".")
    ]
    _say(f"Waiting in landing: {len(waiting)} {waiting[:5]}")
    _say(_champion_line(paths))
    _say("Recent runs:")
    for record in instance.get_run_records(limit=5):
        run = record.dagster_run
        batch = run.tags.get("dagster/partition", "")
        _say(f"  {run.run_id[:8]} {run.job_name:<20} {run.status.value:<10} {batch}")
        if run.status == dg.DagsterRunStatus.FAILURE:
            _say(f"           {_failure_reason(instance, run.run_id)}")
    return 0


def _failure_reason(instance, run_id: str) -> str:
    """Why the run failed: its steps' sentences, else the run's failure event."""
    import dagster as dg

    from mlops_assets.run_failures import run_failure_message

    reason = run_failure_message(instance, run_id)
    if reason != "run failed":
        return reason.splitlines()[0][:300]
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    messages = [e.dagster_event.message for e in events if e.dagster_event]
    return (messages[-1] or "run failed").splitlines()[0][:300] if messages else "run failed"


def _feast(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.features.feast_repo import FEATURE_REPO, config_file
    from mlops_assets.profile import active_profile
    from mlops_assets.runner import open_instance

    feast_args = feast_arguments(list(args.feast_args))
    open_instance(paths)  # exports MLOPS_HOME for feature_store.yaml and definitions.py
    profile = active_profile()
    for name, value in profile.feast_substitutions(paths.root).items():
        os.environ.setdefault(name, value)  # defaults for the ${VAR}s the feast CLI expands
    command = [
        sys.executable,
        "-m",
        "mlops_assets.quiet",  # Feast's own log lines, which PYTHONWARNINGS cannot reach
        "feast.cli.cli",
        "--chdir",
        str(FEATURE_REPO),
        "--feature-store-yaml",
        str(config_file(profile)),
        *feast_args,
    ]
    _exec(command)
    return 0  # pragma: no cover - exec does not return


def feast_arguments(arguments: list[str]) -> list[str]:
    """The feast CLI's arguments, with any server it starts bound to loopback.

    Feast's own defaults differ per server (`feast ui` and `serve_lineage` listen on every
    interface), so `--host 127.0.0.1` is added unless the user gave a host. Servers that can
    only bind every interface are refused with the way to run them on purpose.
    """
    command = next((a for a in arguments if a in FEAST_SERVERS | FEAST_OPEN_ONLY), None)
    if command is None:
        return arguments
    if command in FEAST_OPEN_ONLY or (command == "serve_registry" and "--no-grpc" not in arguments):
        raise ValueError(
            f"`feast {command}` listens on every network interface and cannot be told "
            "otherwise, and `mlops feast` starts servers on 127.0.0.1 only: for the registry, "
            "use `serve_registry --no-grpc --rest-api`; to expose a server on purpose, run the "
            "feast CLI yourself"
        )
    if any(a in ("--host", "-h") or a.startswith("--host=") for a in arguments):
        return arguments
    position = arguments.index(command) + 1
    return [*arguments[:position], "--host", LOOPBACK, *arguments[position:]]


def _champion_line(paths: PlatformPaths) -> str:
    """The registry's champion, with every pointer file brought in line with it first."""
    from mlops_assets.profile import active_profile

    embedded_store = paths.mlflow_db
    if not active_profile().is_production and not embedded_store.exists():
        return "Champion: none (no model trained yet)"
    try:
        champion = _reconciled_champion(paths)
    except Exception as exc:  # status still reports the rest when the registry is down
        reason = getattr(exc, "description", None) or f"{type(exc).__name__}: {exc}"
        return f"Champion: unknown ({reason.splitlines()[0][:300]})"
    if champion is None:
        return "Champion: none"
    return f"Champion: v{champion.version} (run {champion.run_id})"


def _reconciled_champion(paths: PlatformPaths):
    """The champion alias's version, after history, champion.json and bento.json follow it.

    Every command that reads or moves the champion calls this first, so a run killed between
    moving the alias and updating those files is repaired before anyone reads them.
    """
    from mlops_assets.deployment.bento_export import reconcile_export
    from mlops_assets.resources import resolve_spec_path

    champion, _ = reconcile_export(_registry(paths), paths, resolve_spec_path(paths))
    return champion


def _registry(paths: PlatformPaths):
    from mlops_assets.model_registry.champion import ChampionRegistry
    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.resources import MlopsHome, resolve_spec_path
    from mlops_assets.spec import load_spec

    spec = load_spec(resolve_spec_path(paths))
    tracking = MlflowTracking(home=MlopsHome(path=str(paths.root)))
    return ChampionRegistry(tracking.client(), spec.name, paths)


def _history(args: argparse.Namespace, paths: PlatformPaths) -> int:
    registry = _registry(paths)
    _reconciled_champion(paths)
    entries = registry.history()
    if not entries:
        _say("No promotion yet.")
    for entry in entries:
        metrics = entry.get("metrics") or {}
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        _say(
            f"{entry['at']}  {entry['action']:<8} v{entry['version']:<4} "
            f"(previous v{entry.get('previous') or '-'})  {entry.get('reason', '')}  {shown}"
        )
    champion = registry.champion()
    _say(f"Champion: v{champion.version} (run {champion.run_id})" if champion else "Champion: none")
    return 0


def _rollback(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.model_registry.champion import NothingToRollBack
    from mlops_assets.runner import open_instance, run_pipeline

    try:
        entry = _registry(paths).rollback(args.reason)
    except NothingToRollBack as exc:
        _say(f"error: {exc}")
        return 1
    _say(f"Rolled back: champion is v{entry['version']} again (was v{entry['previous']})")
    instance = open_instance(paths)
    deployed = run_pipeline(instance, _log_level(args), job="deploy_job")
    if not deployed.success:
        log = _run_log(instance, deployed.run_id, paths)
        _say(
            f"Packaging the restored champion FAILED: {deployed.error}{_log_note(log, args.debug)}"
        )
        return 1
    _say(f"Serving package: {deployed.metadata.get('bento', {}).get('bento_tag', '-')}")
    return 0


def _rollout(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.deployment import rollout_control
    from mlops_assets.resources import resolve_spec_path

    if args.mode is None:
        from mlops_assets.serving.worker_status import describe_service, read_statuses

        _say(_champion_line(paths))
        for line in describe_service(read_statuses(paths.serving_status)):
            _say(line)
        try:
            _say(rollout_control.describe(rollout_control.current(paths)))
        except rollout_control.RolloutError as error:
            _say(f"Rollout: the service serves the champion alone: {error}")
            return 1
        return 0
    if args.mode == "champion":
        rollout = rollout_control.stop_rollout(paths, args.reason)
    else:
        champion = _reconciled_champion(paths)
        if champion is None:
            _say("error: no champion yet: run `mlops run` first")
            return 1
        rollout = rollout_control.start_rollout(
            _registry(paths),
            paths,
            resolve_spec_path(paths),
            args.mode,
            share=getattr(args, "share", 0.0),
            version=args.version,
            reason=args.reason,
        )
    _say(f"{rollout_control.describe(rollout)} (the service applies it within a second)")
    return 0


def _serve(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.paths import PROJECT_ROOT
    from mlops_assets.runner import open_instance

    open_instance(paths)
    _reconciled_champion(paths)  # bento.json must name the registry's champion
    os.environ["BENTOML_HOME"] = str(paths.bentoml_home)
    os.chdir(PROJECT_ROOT)
    service = "bentos.service:PredictionService"
    command = [sys.executable, "-m", "bentoml", "serve", service, *_bind(args)]
    _say(f"BENTOML_HOME={os.environ['BENTOML_HOME']} {' '.join(command)}")
    return _start_server(args, "Prediction service", command, "/readyz")


def _mlflow(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.resources import MlopsHome

    tracking = MlflowTracking(home=MlopsHome(path=str(paths.root)))
    # Passed in the environment, not argv, where other users could read its password.
    os.environ["MLFLOW_BACKEND_STORE_URI"] = tracking.resolved_uri()
    os.environ["MLFLOW_REGISTRY_STORE_URI"] = tracking.resolved_uri()  # the same store, said
    # One worker, no access or start-up log: a UI for one person, faster start, quiet terminal.
    command = [
        *(sys.executable, "-m", "mlflow", "ui", *_bind(args)),
        *("--workers", "1", "--uvicorn-opts", "--no-access-log --log-level warning"),
    ]
    _say(f"MLFLOW_BACKEND_STORE_URI={tracking.redacted_uri()} {' '.join(command)}")
    return _start_server(args, "MLflow", command, "/health")


def _ui(args: argparse.Namespace, paths: PlatformPaths) -> int:
    from mlops_assets.runner import open_instance

    open_instance(paths)
    workspace = os.path.join(os.path.dirname(os.path.dirname(__file__)), "workspace.yaml")
    command = [
        *(sys.executable, "-m", "dagster", "dev", "-w", workspace, *_bind(args)),
        *("--log-level", "warning"),  # its INFO lines are service start-up chatter
    ]
    _say(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']} {' '.join(command)}")
    return _start_server(args, "Dagster UI", command, "/server_info")


def _exec(command: list[str]) -> None:
    """Become `command`; what was said so far is flushed first, or exec would drop it."""
    sys.stdout.flush()
    os.execvp(command[0], command)


def _bind(args: argparse.Namespace) -> list[str]:
    return ["--host", args.host, "--port", str(args.port)]


def features_line(features: dict, online: dict, training: dict, protocol: str) -> str:
    """The feature stage in one line; the split only where the protocol used it."""
    line = (
        f"Features: {_n(features.get('dagster/row_count'))} rows; online store: "
        f"{_n(online.get('entities_written'))} entities written ({online.get('mode', '-')}), "
        f"{_n(online.get('entities_skipped'))} unchanged, in {online.get('seconds', '-')} s; "
        f"training set: {_n(training.get('dagster/row_count'))} rows"
    )
    if protocol in ("holdout", "latest_period"):
        line += (
            f", {_n(training.get('train_rows'))} train / "
            f"{_n(training.get('validation_rows'))} validation / "
            f"{_n(training.get('test_rows'))} test"
        )
        if protocol == "latest_period":
            line += " by event time"
    elif protocol == "cross_validation":
        line += " (cross-validated: every row is trained on and tested)"
    elif protocol == "backtest":
        line += " (backtested: each fold judged on days after its training rows)"
    return line


def _report_pipeline(run: PipelineRun, paths: PlatformPaths, instance: Any, debug: bool) -> None:
    """What the run produced (features, model, estimate, promotion), then why it failed."""
    report = run.metadata.get("validation_report", {})
    promotion = run.metadata.get("promoted_model", {})
    features = run.metadata.get("features", {})
    online = run.metadata.get("online_features", {})
    training = run.metadata.get("training_set", {})
    protocol = str(run.metadata.get("model", {}).get("protocol", ""))
    if features:  # a federated run has no central features
        _say(features_line(features, online, training, protocol))
    if report:
        metrics = report.get("estimate_metrics", {})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        _say(f"Model {report.get('model_id', '')[:12]} ({report.get('family', '')}): {shown}")
        _say(f"Estimate: {_describe_estimate(report.get('estimate', {}))}")
    if report and promotion:
        verdict = "promoted" if promotion.get("promoted") else "not promoted"
        reason = promotion.get("reason") or report.get("reason", "")
        _say(
            f"Promotion: {verdict} ({reason}); champion is "
            f"v{promotion.get('champion_version', '-')} "
            f"of '{promotion.get('registered_model', '')}'"
        )
    if not run.success:
        log = _run_log(instance, run.run_id, paths)
        _say(f"Pipeline FAILED (run {run.run_id[:8]}): {run.error}{_log_note(log, debug)}")


def _run_log(instance: Any, run_id: str, paths: PlatformPaths) -> os.PathLike[str] | None:
    from mlops_assets.run_log import write_run_log

    return write_run_log(instance, run_id, paths)


def _describe_estimate(estimate: dict) -> str:
    """`roc_auc 0.991 (95% interval 0.984 to 0.997), 5-fold cross-validation on 569 rows`."""
    if not estimate:
        return "-"
    low, high = estimate.get("interval", [float("nan")] * 2)
    protocol, judged = estimate.get("protocol"), _n(estimate.get("evaluation_rows"))
    if protocol == "cross_validation":
        how = f"{estimate.get('folds')}-fold cross-validation on {_n(estimate.get('rows'))} rows"
    elif protocol == "backtest":
        how = (
            f"{estimate.get('folds')}-fold rolling-origin backtest, {judged} judged rows, each "
            f"later than its model's training rows (horizon {estimate.get('horizon')})"
        )
    elif protocol == "latest_period":
        periods = {p.get("part"): p for p in estimate.get("periods", [])}
        train, test = periods.get("train", {}), periods.get("test", {})
        how = (
            f"latest period: trained on {_day(train.get('from'))} to {_day(train.get('to'))}, "
            f"judged on {judged} test rows from {_day(test.get('from'))} to "
            f"{_day(test.get('to'))}"
        )
    else:
        how = f"holdout, {judged} test rows"
    return (
        f"{estimate.get('primary_metric')} {estimate.get('value', float('nan')):.4g} "
        f"({estimate.get('confidence', 0.95):.0%} interval {low:.4g} to {high:.4g}), {how}"
    )


def _report(run: BatchRun, paths: PlatformPaths, instance: Any, debug: bool) -> None:
    from mlops_assets.runner import table_rows

    if not run.run_id:
        _say(f"Landed {run.batch!r} REFUSED (moved to {paths.landing_failed}): {run.error}")
        return
    if not run.success:
        log = _run_log(instance, run.run_id, paths)
        _say(
            f"Batch {run.batch!r} FAILED (run {run.run_id[:8]}): {run.error}{_log_note(log, debug)}"
        )
        return
    raw, cleaned = table_rows(paths.raw(run.batch)), table_rows(paths.cleaned(run.batch))
    quarantined = table_rows(paths.quarantine(run.batch))
    counts = f"{_n(raw)} raw rows -> {_n(cleaned)} cleaned, {_n(quarantined)} quarantined"
    _say(f"Batch {run.batch!r}: {counts}")
    for line in _delivery_notes(run.batch, paths):
        _say(f"  {line}")


def _delivery_notes(batch: str, paths: PlatformPaths) -> list[str]:
    """How the batch's rows are identified when the spec has no key, and what it repeats."""
    import json

    from mlops_assets.resources import resolve_spec_path
    from mlops_assets.spec import load_spec

    notes = []
    if load_spec(resolve_spec_path(paths)).entity_key_column is None:
        notes.append(KEYLESS_NOTE)
    manifest = paths.manifest(batch)
    repeats = json.loads(manifest.read_text()).get("repeats_batch") if manifest.exists() else None
    if repeats:
        notes.append(
            f"This delivery repeats batch {repeats!r} (accepted with --allow-repeat): "
            "its rows are counted again."
        )
    return notes


def _day(moment: str | None) -> str:
    """The date of an ISO time (`2024-12-31T08:41:13` -> `2024-12-31`)."""
    return str(moment)[:10]


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
