"""``wsrig``: the rig's command line (click). Options have environment equivalents.

run_all_tests.sh is a thin shell around these commands; a user can run each on its
own against a stack that is already up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import psutil
from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from wsrig.config import RigConfig, load_config
from wsrig.cpusets import plan_cpus
from wsrig.haproxy import BalancerReady
from wsrig.load.resources import port_path
from wsrig.progress import terminal_display
from wsrig.report import publish
from wsrig.stack import DockerStack, StackError, docker_client, remove_leftovers
from wsrig.stages import STAGES, Stage, run_stage, stage_by_name
from wsrig.summary import EXIT_CODES, build_summary, container_errors, write_summary
from wsrig.wait import AllReady, HttpReady, Readiness, RedisReady

__all__ = ["main"]


def _config() -> RigConfig:
    return load_config()


def _readiness(cfg: RigConfig) -> AllReady:
    strategies: list[Readiness] = [HttpReady(url) for url in cfg.readiness_urls]
    if cfg.replica_services:  # a cluster: every replica UP behind the balancer, Redis answering
        strategies.append(BalancerReady(cfg.balancer_stats_url, cfg.replica_services, cfg.balancer_backend))
        strategies.append(RedisReady(cfg.redis_url))
    return AllReady(strategies)


@click.group()
def main() -> None:
    """Black-box test rig for a real-time WebSocket bridge."""


@main.command("config")
def show_config() -> None:
    """Print the rig's configuration (token masked)."""
    click.echo(json.dumps(_config().describe(), indent=2))


@main.command()
@click.option(
    "--timeout", default=120.0, envvar="RIG__UP_TIMEOUT", show_default=True, help="seconds to wait for health"
)
def up(timeout: float) -> None:
    """Remove leftovers of this project, start the stack, wait until it is ready."""
    cfg = _config()
    stack = DockerStack(cfg)
    for item in remove_leftovers(cfg.compose_project):
        click.echo(f"removed leftover {item}")
    click.echo(f"starting compose project {cfg.compose_project} ...")
    stack.up()

    try:
        _readiness(cfg).wait(timeout, on_timeout=stack.last_lines)
    except TimeoutError as exc:
        raise click.ClickException(f"{exc}\n" + "\n".join(getattr(exc, "__notes__", []))) from None
    click.echo("stack ready: " + ", ".join(f"{k}={v}" for k, v in cfg.describe().items() if k.endswith("url")))


@main.command()
def down() -> None:
    """Stop the stack and remove its containers, networks and volumes."""
    cfg = _config()
    try:
        DockerStack(cfg).down()
    except StackError as exc:
        click.echo(f"compose down failed, removing by label: {exc}", err=True)
    for item in remove_leftovers(cfg.compose_project):
        click.echo(f"removed {item}")


@main.command()
def cleanup() -> None:
    """Remove containers and networks a crashed run left behind (by compose label)."""
    cfg = _config()
    removed = remove_leftovers(cfg.compose_project)
    click.echo("\n".join(removed) if removed else "nothing left over")


@main.command()
def status() -> None:
    """Show the stack's containers and whether its endpoints answer."""
    cfg = _config()
    stack = DockerStack(cfg)
    for service in cfg.services:
        try:
            click.echo(f"{service:20} {stack.state(service)}")
        except StackError as exc:
            click.echo(f"{service:20} {exc}")
    for strategy in _readiness(cfg).strategies:
        try:
            ok = strategy.check()
        except Exception as exc:  # status is a report, not a check
            ok, strategy_error = False, exc
            click.echo(f"  {strategy.describe()}: no ({strategy_error})")
            continue
        click.echo(f"  {strategy.describe()}: {'yes' if ok else 'no'}")


@main.command("check-ports")
def check_ports() -> None:
    """Fail with the port and its holder if a port the stack publishes is taken."""
    cfg = _config()
    taken = []
    for url in cfg.host_urls:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                holder = "unknown process"
                for conn in psutil.net_connections("tcp"):
                    if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                        p = psutil.Process(conn.pid)
                        holder = f"pid {conn.pid} ({' '.join(p.cmdline())[:80]})"
                        break
                taken.append(f"port {port} ({url}) is taken by {holder}")
    if taken:
        raise click.ClickException(
            "; ".join(taken) + ". Stop it, or set DASHBOARD_PORT/BOT_HTTP_PORT/PROXY_CONTROL_PORT"
            " (a cluster: HAPROXY_STATS_PORT/REDIS_PORT too) and the URLs."
        )
    click.echo("ports free")


@main.command()
@click.argument("name")
@click.option("--results", type=click.Path(path_type=Path), envvar="RIG__RESULTS_DIR", required=True)
@click.option("-k", "keyword", default=None, help="pytest -k expression: run a subset of the stage's probes")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="load/performance: run the subscribers as N swarm load workers (RIG__WORKERS; docs/DISTRIBUTED.md)",
)
def stage(name: str, results: Path, keyword: str | None, workers: int | None) -> None:
    """Run one stage's probes into RESULTS (log, JUnit, record, status)."""
    if workers is not None:  # the probes read it from the environment (wsrig.load.distributed)
        os.environ["RIG__WORKERS"] = str(workers)
    cfg = _config()
    try:
        st = stage_by_name(name)
    except KeyError as exc:
        raise click.ClickException(str(exc)) from None
    code = run_stage(st, cfg.root, results, ["-k", keyword] if keyword else None, topology=cfg.topology)
    sys.exit(0 if code == 0 else 1)


@main.command("stages")
def list_stages() -> None:
    """The stages (config/stages.toml), and which ones run in this topology (RIG__TOPOLOGY) and why not."""
    topology = _config().topology
    selected = _selected_from_env(topology)
    for s in STAGES:
        on = "on" if selected[s.name] else "off"
        why = s.not_in_topology(topology) or ("" if selected[s.name] else f"{s.flag}=false")
        click.echo(f"{s.name:<16} {s.flag:<20} {on:<3} [{','.join(s.topologies)}] {why}".rstrip())


def _environment(cfg: RigConfig) -> dict[str, Any]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, cwd=cfg.root, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    docker_version = compose_version = ""
    images: dict[str, Any] = dict(cfg.images)
    try:
        client = docker_client()
        v = client.version()
        docker_version = f"engine {v.get('Version')} (API {v.get('ApiVersion')})"
        for key, ref in cfg.images.items():
            try:
                images[key] = f"{ref} {client.images.get(ref).id[:19]}"
            except Exception:  # image absent: keep the reference alone
                images[key] = f"{ref} (not present)"
    except StackError as exc:
        docker_version = f"unavailable: {exc}"
    compose_version = run(str(cfg.root / "scripts" / "compose.sh"), "version", "--short") or run(
        "docker-compose", "version", "--short"
    )
    return {
        "git_sha": run("git", "rev-parse", "--short=12", "HEAD") or "unknown",
        "topology": cfg.topology,
        "docker_version": docker_version,
        "compose_version": compose_version or "unknown",
        "docker_port_path": port_path(),
        "cpusets": _cpusets(),
        "images": images,
        "host": {
            "hostname": platform.node(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "endpoints": {k: v for k, v in cfg.describe().items() if k.endswith("url")},
        "container_logs": [],
    }


def _cpusets() -> str:
    """The timed stages' CPU split (wsrig.cpusets), as the report prints it."""
    try:
        plan = plan_cpus(os.cpu_count() or 1, os.environ)
    except ValueError as exc:
        return f"invalid RIG__CPUS_*: {exc}"
    return f"rig cores {plan.text(plan.rig)}, system cores {plan.text(plan.system)} ({plan.note}; timed stages only)"


def _selected_from_env(topology: str = "single") -> dict[str, bool]:
    """Each stage's flag (default from the registry), off in a topology it does not run in."""

    def on(stage: Stage) -> bool:
        value = os.environ.get(stage.flag, "true" if stage.default else "false")
        return stage.runs_in(topology) and value.strip().lower() in ("1", "true", "yes", "on")

    return {s.name: on(s) for s in STAGES}


@main.command()
@click.argument("results", type=click.Path(path_type=Path, file_okay=False))
@click.option("--started-at", envvar="RIG__STARTED_AT", default="")
@click.option("--run-id", envvar="WSRIG_RUN_ID", default="")
def summarize(results: Path, started_at: str, run_id: str) -> None:
    """Write test_summary.json and test_report.md for RESULTS; exit 0 pass, 1 fail, 3 invalid."""
    cfg = _config()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    env = _environment(cfg)
    env["container_logs"] = sorted(p.name for p in results.glob("container_*.log"))
    summary = build_summary(
        results,
        _selected_from_env(cfg.topology),
        suite_run_id=run_id or results.name,
        started_at=started_at or now,
        finished_at=now,
        environment=env,
        thresholds=cfg.thresholds,
        profile=cfg.profile,
    )
    env["container_errors"] = container_errors(results)
    write_summary(summary, results / "test_summary.json")
    publish(results, summary)
    _echo_verdict(summary, results)


def _echo_verdict(summary: dict[str, Any], results: Path) -> None:
    """The verdict line and the per-stage table, then exit with the verdict's code.

    On a terminal the table is a rich table; anywhere else (CI logs, pipes, files) it is
    the plain text of ``verdict_lines``, which the README quotes.
    """
    if terminal_display(sys.stdout):
        Console().print(verdict_view(summary, results))
    else:
        for line in verdict_lines(summary, results):
            click.echo(line)
    sys.exit(EXIT_CODES.get(summary["verdict"], 1))


def _invalid_note() -> str:
    return f"INVALID: the rig could not measure on this host (exit {EXIT_CODES['invalid']}); no stage failed"


def verdict_lines(summary: dict[str, Any], results: Path) -> list[str]:
    """The verdict line, one line per stage and, for an invalid run, why: plain text."""
    lines = [f"verdict: {summary['verdict'].upper()}  ({results / 'test_report.md'})"]
    for s in summary["stages"]:
        lines.append(f"  {s['name']:16} {s['status']:8} {s['duration_s']:7.1f}s  {s.get('reason') or ''}")
    if summary["verdict"] == "invalid":
        lines.append(_invalid_note())
    return lines


#: Stage statuses and verdicts (pass, fail, invalid); anything else is red.
_STATUS_STYLE = {
    "passed": "green",
    "pass": "bold green",
    "skipped": "yellow",
    "not_run": "yellow",
    "invalid": "yellow",
}


def verdict_view(summary: dict[str, Any], results: Path) -> RenderableType:
    """What ``verdict_lines`` says, for a terminal: the verdict line and a rich table."""
    verdict = str(summary["verdict"])
    head = Text.assemble(
        "verdict: ", (verdict.upper(), _STATUS_STYLE.get(verdict, "bold red")), f"  ({results / 'test_report.md'})"
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("stage", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for s in summary["stages"]:
        status = str(s["status"])
        table.add_row(
            Text(str(s["name"])),
            Text(status, style=_STATUS_STYLE.get(status, "bold red")),
            f"{s['duration_s']:.1f}s",
            Text(str(s.get("reason") or "")),
        )
    parts: list[RenderableType] = [head, Padding(table, (0, 0, 0, 2))]
    if verdict == "invalid":
        parts.append(Text(_invalid_note(), style="yellow"))
    return Group(*parts)


@main.command()
@click.argument("results", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--thresholds",
    "thresholds_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="a thresholds.toml to judge under instead of the run's own (its profile applied)",
)
def judge(results: Path, thresholds_file: Path | None) -> None:
    """Judge a finished run again from the histories in RESULTS; exit 0 pass, 1 fail, 3 invalid.

    Prints which scenarios were judged from their histories, which stages were taken as
    recorded (no histories yet), any scenario whose verdict changed, and whether the
    findings match the run's, then the verdict line and stage table as the run printed them.
    """
    from wsrig.rejudge import rejudge

    if not (results / "test_summary.json").is_file():
        raise click.ClickException(f"{results} has no test_summary.json: not a finished run")
    try:
        out = rejudge(results, tomllib.loads(thresholds_file.read_text()) if thresholds_file else None)
    except ValueError as exc:  # a history this rig cannot read (older version, unknown kind)
        raise click.ClickException(str(exc)) from exc
    for stage, names in out.judged.items():
        click.echo(f"judged from histories: {stage}: {', '.join(names)}")
    if out.carried:
        click.echo(f"taken as recorded (no histories of theirs in this folder): {', '.join(out.carried)}")
    for change in out.changes:
        click.echo(f"changed: {change}")
    differ = out.findings_differ
    click.echo(f"findings: {'as recorded' if not differ else 'differ in ' + ', '.join(differ)}")
    _echo_verdict(out.summary, results)


@main.command()
@click.argument("results", type=click.Path(path_type=Path, file_okay=False, exists=True))
def report(results: Path) -> None:
    """Re-render test_report.md and .html, their charts and junit.xml from RESULTS/test_summary.json."""
    summary = json.loads((results / "test_summary.json").read_text())
    if "container_errors" not in summary.get("environment", {}):  # a summary from before they were kept
        summary.setdefault("environment", {})["container_errors"] = container_errors(results)
    publish(results, summary)
    click.echo(str(results / "test_report.md"))


#: the compare command's options: name -> help; each defaults to [quick.compare] in config/thresholds.toml
_COMPARE_OPTIONS = {
    "tolerance": "relative worsening allowed (0.25 = 25 %)",
    "min_ms": "and at least this many ms for a latency figure",
    "min_s": "and at least this many s for a recovery time",
    "tail_tolerance": "relative worsening allowed for p90 and above, max",
    "tail_min_ms": "and at least this many ms for a tail latency figure",
}


def _compare_options(command: Callable[..., None]) -> Callable[..., None]:
    for name, help_ in reversed(_COMPARE_OPTIONS.items()):
        command = click.option(
            "--" + name.replace("_", "-"),
            name,
            type=float,
            default=None,
            envvar=f"RIG__COMPARE_{name.upper()}",
            help=f"{help_} (default: [quick.compare] {name} in config/thresholds.toml)",
        )(command)
    return command


@main.command()
@click.argument("old", type=click.Path(path_type=Path, exists=True))
@click.argument("new", type=click.Path(path_type=Path, exists=True))
@_compare_options
def compare(old: Path, new: Path, **given: float | None) -> None:
    """Print what regressed from run OLD to run NEW (folders or summaries); exit 1 on a regression."""
    from wsrig.compare import Tolerance, format_changes
    from wsrig.compare import compare as compare_runs

    def load(path: Path) -> dict[str, Any]:
        return dict(json.loads((path / "test_summary.json" if path.is_dir() else path).read_text()))

    limits = dict(load_config().thresholds.get("compare", {}))
    limits.update({k: v for k, v in given.items() if v is not None})
    changes = compare_runs(load(old), load(new), Tolerance.from_limits(limits))
    click.echo(format_changes(changes, str(old), str(new)))
    sys.exit(1 if any(c.regression for c in changes) else 0)


@main.command("bench-table")
@click.argument("results", type=click.Path(path_type=Path, file_okay=False, exists=True))
def bench_table(results: Path) -> None:
    """Print the load/performance figures of a run as Markdown (docs/BENCHMARKS.md)."""
    from wsrig.load.benchtable import bench_markdown

    summary_file = results / "test_summary.json"
    if not summary_file.is_file():
        raise click.ClickException(f"no {summary_file}; run ./run_all_tests.sh or wsrig summarize first")
    click.echo(bench_markdown(json.loads(summary_file.read_text())))


@main.command()
@click.argument("results_root", metavar="[RESULTS_ROOT]", type=click.Path(path_type=Path), default="results")
@click.option("--last", type=click.IntRange(min=1), default=None, help="runs shown (default: config/trend.toml, 10)")
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=None,
    help="relative margin before a figure is a regression, 0.2 = 20 %, for every figure (default: config/trend.toml)",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=None,
    help="baseline: median of the previous N usable runs (default: config/trend.toml, 5)",
)
@click.option(
    "--charts",
    "charts_dir",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="DIR",
    help="write trend_<figure>.png per key figure into DIR (--charts alone: RESULTS_ROOT/trend)",
)
@click.option("--markdown", is_flag=True, help="print a GitHub Markdown table (for a CI job summary)")
@click.option("--fail-on-regression", is_flag=True, help="exit 1 when the latest run regressed on some figure")
def trend(
    results_root: Path,
    last: int | None,
    margin: float | None,
    window: int | None,
    charts_dir: str | None,
    markdown: bool,
    fail_on_regression: bool,
) -> None:
    """Key figures of the runs in RESULTS_ROOT (default results/) over time, regressions marked.

    Reads every full_suite_*/test_summary.json, judges each run's key figures against the
    median of the previous runs (docs/TREND.md; thresholds in config/trend.toml) and ends
    with one line: the latest run's regressions, or "no regression". Exit 0; 1 with
    --fail-on-regression when the latest run regressed; 2 when no run could be read.
    """
    from wsrig.config import repo_root
    from wsrig.trend import analyse, format_table, load_runs, load_settings

    def warn(message: str) -> None:
        click.echo(f"trend: {message}", err=True)

    try:
        settings = load_settings(repo_root() / "config" / "trend.toml")
    except ValueError as exc:
        warn(str(exc))
        sys.exit(2)
    overrides: dict[str, Any] = {"last": last, "margin": margin, "window": window}
    if margin is not None:  # one margin for every figure in this call, per-figure ones included
        overrides["margins"] = {}
    settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    if not results_root.is_dir():
        warn(f"{results_root} is not a folder: no runs to read")
        sys.exit(2)
    frame = load_runs(results_root, warn)
    if frame.empty:
        warn(f"no usable run in {results_root} (no full_suite_*/test_summary.json that could be read)")
        sys.exit(2)
    result = analyse(frame, settings)
    click.echo(format_table(result, settings.last, markdown=markdown))
    if charts_dir is not None:
        out = Path(charts_dir) if charts_dir else results_root / "trend"
        try:
            from wsrig.trend_charts import draw_trend_charts

            written = draw_trend_charts(result, out, settings.last)
        except ImportError:
            warn("matplotlib is not installed (pip install 'wsrig[charts]'): no charts written")
        except OSError as exc:
            warn(f"charts not written to {out}: {exc}")
        else:
            warn(f"{len(written)} chart(s) written to {out}")
    regressed = bool(result.regressions(result.latest))
    sys.exit(1 if fail_on_regression and regressed else 0)


@main.command("prune-results")
@click.argument("results", type=click.Path(path_type=Path, file_okay=False), default="results")
@click.option(
    "--keep",
    type=int,
    default=20,
    envvar="RIG__KEEP_RUNS",
    show_default=True,
    help="full_suite_* runs to keep (0 keeps all)",
)
def prune_results(results: Path, keep: int) -> None:
    """Delete the oldest full_suite_* folders beyond --keep (never results/latest)."""
    from wsrig.retention import prune_runs

    for path in prune_runs(results, keep):
        click.echo(f"removed old run {path.name}")


@main.command()
@click.argument("name", required=False)
@click.option("--duration", type=float, default=10.0, show_default=True, help="seconds the fault holds")
@click.option("--target", default=None, help="service for docker faults: dashboard, bot, or a compose service name")
@click.option("--list", "list_", is_flag=True, help="list the faults")
def fault(name: str | None, duration: float, target: str | None, list_: bool) -> None:
    """Inject fault NAME into the running stack for --duration seconds, then heal (always)."""
    import time

    from wsrig.faults import FAULTS, FaultContext, get_fault, injected

    cfg = _config()
    ctx = FaultContext(cfg, DockerStack(cfg))
    if list_ or not name:
        for key in sorted(FAULTS):
            click.echo(key)
        return
    options = {"target": target} if target else {}
    try:
        f = get_fault(name, ctx, **options)
    except (KeyError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"injecting {name}: {f.description}; holding {duration:.0f}s (Ctrl-C heals at once)")
    try:
        with injected(f) as window:
            time.sleep(duration)
    except KeyboardInterrupt:
        click.echo("interrupted")
    click.echo(f"healed {name} after {(window.healed_ns - window.injected_ns) / 1e9:.1f}s")


@main.command("collect-logs")
@click.argument("results", type=click.Path(path_type=Path, file_okay=False))
def collect_logs(results: Path) -> None:
    """Save each service's container log into RESULTS/container_<service>.log."""
    cfg = _config()
    stack = DockerStack(cfg)
    for service in cfg.services:
        try:
            (results / f"container_{service}.log").write_text(stack.logs(service))
        except StackError as exc:
            click.echo(f"no log for {service}: {exc}", err=True)


# --- standalone probes against a running stack (they start and stop nothing) ----------------

_ENDPOINT_OPTIONS = (
    ("--dashboard-url", "DASHBOARD_URL", "backend HTTP base URL"),
    ("--dashboard-ws-url", "DASHBOARD_WS_URL", "backend WebSocket base URL"),
    ("--bot-url", "BOT_URL", "bot HTTP base URL"),
)


def _endpoint_options(fn: Any) -> Any:
    """--dashboard-url/--dashboard-ws-url/--bot-url (env or .env.test when not given)."""
    for flag, env, help_text in reversed(_ENDPOINT_OPTIONS):
        fn = click.option(flag, env.lower(), default=None, help=f"{help_text} (default: ${env} or .env.test)")(fn)
    return fn


def _apply_endpoints(values: dict[str, str | None]) -> RigConfig:
    """Flags win over the environment and .env.test; the probes' pytest inherits them."""
    for _, env, _ in _ENDPOINT_OPTIONS:
        if values.get(env.lower()):
            os.environ[env] = str(values[env.lower()])
    return _config()


def _require_running(cfg: RigConfig) -> None:
    """One-line reason and a non-zero exit when the stack does not answer."""
    from wsrig.probe_cli import unreachable

    reason = unreachable(cfg)
    if reason:
        raise click.ClickException(f"the stack is not running or not reachable: {reason}")


def _results_dir(results: Path | None, kind: str) -> Path:
    out = results or _config().root / "results" / f"{kind}_{dt.datetime.now():%Y%m%d_%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    return out


@main.group()
def probe() -> None:
    """Run one stage's probes against a stack that is already running (staging, say)."""


def _probe_command(stage_name: str) -> Any:
    @_endpoint_options
    @click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=None,
                  help="results folder (default results/probe_<stage>_<ts>)")  # fmt: skip
    @click.option("-k", "keyword", default=None, help="pytest -k expression: a subset of the probes")
    def command(results: Path | None, keyword: str | None, **endpoints: str | None) -> None:
        from wsrig.probe_cli import print_record, write_summary_for

        cfg = _apply_endpoints(endpoints)
        _require_running(cfg)
        st = stage_by_name(stage_name)
        out = _results_dir(results, f"probe_{st.name}")
        click.echo(f"probe {st.name} against {cfg.dashboard_url} and {cfg.bot_url}; results in {out}")
        code = run_stage(st, cfg.root, out, ["-k", keyword] if keyword else None, topology=cfg.topology)
        print_record(out, st.name)
        summary_path = write_summary_for(out, st.name, cfg, _environment(cfg))
        click.echo(f"{st.name}: {'PASSED' if code == 0 else 'FAILED'}  ({summary_path})")
        sys.exit(0 if code == 0 else 1)

    command.__doc__ = f"The {stage_name} stage's probes against the running stack; writes the suite's JSON."
    return command


probe.command("connectivity")(_probe_command("connectivity"))
probe.command("message-flow")(_probe_command("message_flow"))


@main.command("measure-latency")
@click.option("--duration", type=float, default=60.0, show_default=True, help="seconds to listen")
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="results folder (default results/latency_<ts>)")  # fmt: skip
@_endpoint_options
def measure_latency(duration: float, results: Path | None, **endpoints: str | None) -> None:
    """End-to-end latency of the bot's live stream (ts_ns to client receive), percentiles in ms."""
    from wsrig.latency import latency_samples, summarize
    from wsrig.record import StageRecord

    cfg = _apply_endpoints(endpoints)
    _require_running(cfg)
    click.echo(f"listening to {cfg.stream_url} for {duration:g} s ...")
    try:
        samples = latency_samples(cfg, duration)
    except OSError as exc:
        raise click.ClickException(f"cannot subscribe to {cfg.stream_url}: {exc}") from None
    if not samples:
        raise click.ClickException(f"no live envelope received from {cfg.stream_url} in {duration:g} s")
    summary = summarize(samples)
    out = _results_dir(results, "latency")
    rec = StageRecord("latency")
    rec.metrics.update(latency_ms=summary.serialize(), duration_s=duration, stream_url=cfg.stream_url)
    rec.scenario("stream_latency", True, latency_ms=summary.serialize())
    rec.add_series(
        out, "stream_latency", "latency", ["t", "latency_ms"], [(round(t, 6), round(ms, 3)) for t, ms in samples], "ms"
    )
    rec.save(out / "latency.record.json")
    s = summary
    click.echo(
        f"latency over {s.count} envelopes: p50 {s.p50} ms, p90 {s.p90} ms, p99 {s.p99} ms, p99.9 {s.p999} ms, max {s.max} ms"
    )
    click.echo(f"record: {out / 'latency.record.json'}")


if __name__ == "__main__":  # pragma: no cover
    main()
