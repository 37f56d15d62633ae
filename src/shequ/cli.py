"""Command line: shequ demo | serve | db upgrade | seed | import | export | user create | bench."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shequ.config import get_settings

app = typer.Typer(help="社区数字化平台 shequ — community digital platform", no_args_is_help=True)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
user_app = typer.Typer(help="Users and accounts", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (figures go to docs/benchmarks.md)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(bench_app, name="bench")
console = Console()
err = Console(stderr=True)

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="tenant (subdistrict) code")]


@app.callback()
def _everywhere() -> None:
    # no ID numbers or phone numbers in any log line of any command
    from shequ.logs import install

    install()


def _tenant_id(code: str | None) -> int:
    from shequ.core.places.service import get_tenant
    from shequ.db import session_scope

    code = code or get_settings().default_tenant
    with session_scope() as session:
        tenant = get_tenant(session=session, code=code)
        if tenant is None:
            err.print(f"[red]没有租户 {code}（unknown tenant）；先运行 shequ seed[/red]")
            raise typer.Exit(2)
        return tenant.id


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Apply migrations up to REVISION (default: heads — the kernel's and every scenario's)."""
    from shequ.core.migrate import upgrade

    upgrade(revision=revision)
    console.print(f"数据库已迁移 database migrated: {get_settings().database_url.split('@')[-1]}")


@db_app.command("rotate-key")
def db_rotate_key() -> None:
    """Add a new active PII key and re-encrypt every personal-data column with it."""
    from shequ.core.iam.crypto import keyring, reencrypt_all, rotate_key_file
    from shequ.db import get_engine

    path = get_settings().key_file
    assert path is not None
    keyring()  # make sure a key file exists (development) before rotating
    kid = rotate_key_file(path)
    count = reencrypt_all(get_engine())
    console.print(f"新密钥 new key {kid}; 已重新加密 re-encrypted {count} values")


@app.command()
def seed(
    scale: Annotated[str, typer.Option(help="small | full")] = "small",
    seed: Annotated[int, typer.Option("--seed", help="random seed; same seed, same data")] = 1,
    tenant: TenantOpt = None,
    reset: Annotated[bool, typer.Option(help="delete the tenant's data first")] = True,
) -> None:
    """Generate the synthetic Jiangchuan Road subdistrict (deterministic for a seed)."""
    from shequ.core.migrate import upgrade
    from shequ.sim.seed import seed as run_seed

    if scale not in ("small", "full"):
        err.print("[red]--scale 只能是 small 或 full[/red]")
        raise typer.Exit(2)
    upgrade()
    report = run_seed(scale=scale, seed=seed, tenant_code=tenant or get_settings().default_tenant,
                      progress=sys.stderr.isatty(), reset=reset)
    from shequ.sim.demo import prepare_devices

    report.counts["device"] = prepare_devices(tenant_id=report.tenant_id, scale=scale, seed=seed)
    table = Table(title=f"江川路街道 synthetic data ({scale}, seed {seed})")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for key, value in report.counts.items():
        table.add_row(key, f"{value:,}")
    console.print(table)
    console.print(f"用时 elapsed: {report.seconds:.1f} s")


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="person | house | organisation | facility | situation | place | device")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX file")],
    source: Annotated[str, typer.Option(help="data source (业务条线), e.g. 公安实有人口, 民政")] = "import",
    tenant: TenantOpt = None,
) -> None:
    """Import a CSV/XLSX file; any bad row rejects the whole file and nothing changes."""
    from shequ.core.registry.importer import ImportRejected, import_file
    from shequ.db import session_scope

    tenant_id = _tenant_id(tenant)
    try:
        with session_scope(tenant_id=tenant_id, actor=f"cli:{source}") as session:
            result = import_file(session=session, kind=kind, path=file, source=source, actor="cli")
    except ImportRejected as rejected:
        err.print(f"[red]导入被拒绝，未做任何修改 import rejected, nothing changed: "
                  f"{len(rejected.errors)} 处错误[/red]")
        for e in rejected.errors[:200]:
            value = f" （{e.value}）" if e.value else ""
            err.print(f"  第 {e.row} 行 row {e.row}, 列 column 「{e.column}」{value}: {e.reason}",
                      markup=False, highlight=False)
        if len(rejected.errors) > 200:
            err.print(f"  …… 另有 {len(rejected.errors) - 200} 处错误 more errors")
        raise typer.Exit(1) from None
    for w in result.warnings[:50]:
        console.print(f"  提示 note: 第 {w.row} 行「{w.column}」（{w.value}）: {w.reason}",
                      markup=False, highlight=False)
    console.print(f"导入完成 imported {result.rows} rows: 新增 created {result.created}, "
                  f"更新 updated {result.updated}, 未落地 unplaced {result.unplaced}, "
                  f"来源冲突 conflicts {result.conflicts}")


@app.command("import-template")
def import_template_(
    kind: Annotated[str, typer.Argument(help="person | household | house | organisation | facility | situation | place | device")],
    out: Annotated[Path, typer.Argument(help="the .xlsx file to write")],
    lang: Annotated[str, typer.Option(help="zh-CN | en")] = "zh-CN",
) -> None:
    """Write an empty XLSX with the import headers of KIND and a sheet explaining each column."""
    from shequ.core.registry.importer import import_template
    from shequ.core.registry.kinds import KINDS

    if kind not in KINDS:
        err.print(f"[red]未知的数据类型 unknown kind {kind}; 可选 known: {', '.join(KINDS)}[/red]")
        raise typer.Exit(2)
    out.write_bytes(import_template(kind, lang))
    console.print(f"导入模板已写入 template written → {out}")


@app.command()
def export(
    kind: Annotated[str, typer.Argument(help="person | household | house | organisation | facility | situation | place | device")],
    out: Annotated[Path, typer.Argument(help="the .xlsx file to write")],
    place: Annotated[int | None, typer.Option(help="place id (grid, committee, compound, building…)")] = None,
    tag: Annotated[str | None, typer.Option(help="tag code")] = None,
    q: Annotated[str | None, typer.Option(help="text search")] = None,
    lang: Annotated[str, typer.Option(help="zh-CN | en")] = "zh-CN",
    tenant: TenantOpt = None,
) -> None:
    """Write a filtered list (台账) to XLSX; personal data is masked."""
    from shequ.core.registry.exporter import export_xlsx
    from shequ.core.registry.kinds import get_kind
    from shequ.core.registry.query import ListParams
    from shequ.db import session_scope

    tenant_id = _tenant_id(tenant)
    with session_scope(tenant_id=tenant_id, actor="cli:export") as session:
        data, count = export_xlsx(session=session, kind=get_kind(kind),
                                  params=ListParams(place_id=place, tag=tag, q=q), lang=lang,
                                  actor="cli:export")
    out.write_bytes(data)
    console.print(f"已导出 exported {count} rows → {out}")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin | leader | dispatcher | department | grid_worker | committee | property | resident | device | api_client")] = "admin",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
    display_name: Annotated[str, typer.Option(help="name shown on pages")] = "",
    scope: Annotated[str, typer.Option(help='what the role is bound to, as JSON: {"committees": [id]}, '
                                            '{"grids": [id]}, {"compounds": [id]}, {"department": "城运中心"}, '
                                            '{"person_id": id}, {"device_id": id}')] = "",
    tenant: TenantOpt = None,
) -> None:
    """Create a user (password asked for unless --password is given)."""
    import json

    from shequ.core.iam.service import create_user
    from shequ.db import session_scope

    tenant_id = _tenant_id(tenant)
    try:
        try:
            binding = json.loads(scope) if scope else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"--scope 不是有效的 JSON（--scope is not valid JSON: {exc}）") from None
        if not isinstance(binding, dict):
            raise ValueError("--scope 须为 JSON 对象（--scope must be a JSON object）")
        with session_scope(tenant_id=tenant_id, actor="cli:user") as session:
            user = create_user(session=session, username=username, password=password, role=role,
                               display_name=display_name or username, scope=binding)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"用户已创建 user created: {user.username} ({user.role})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the pages and the API."""
    import uvicorn

    from shequ.web.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(), host=host or settings.host, port=port or settings.port,
                log_level="info", proxy_headers=False)


@app.command()
def demo(
    scale: Annotated[str, typer.Option(help="small | full")] = "full",
    port: Annotated[int | None, typer.Option()] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="prepare only")] = False,
    no_simulator: Annotated[bool, typer.Option("--no-simulator", help="devices stay quiet")] = False,
) -> None:
    """Migrate, generate the demo subdistrict (once), create demo accounts, print them, serve."""
    from shequ.core.migrate import upgrade
    from shequ.sim.demo import prepare_demo

    settings = get_settings()
    upgrade()
    accounts = prepare_demo(scale=scale, progress=sys.stderr.isatty())
    url = f"http://{settings.host}:{port or settings.port}/"
    table = Table(title=f"社区数字化平台 演示 demo — {url}")
    for col in ("账号 user", "密码 password", "角色 role", "用途 for"):
        table.add_column(col)
    for acc in accounts:
        table.add_row(acc.username, acc.password, acc.role, acc.note)
    console.print(table)
    console.print(f"打开 open [bold]{url}[/bold]")
    if not no_serve:
        if not no_simulator:
            from shequ.sim.demo import start_live

            start_live(settings.default_tenant)
            console.print("设备模拟器已启动 the device simulator is running "
                          f"({'MQTT ' + settings.mqtt_url if settings.mqtt_url else 'in-process'})")
        serve(host=None, port=port)


@bench_app.command("seed")
def bench_seed(
    scale: Annotated[str, typer.Option()] = "full",
    seed: Annotated[int, typer.Option("--seed")] = 1,
) -> None:
    """Time the synthetic subdistrict generation and print the figures."""
    from shequ.sim.bench import bench_seed as run

    run(scale=scale, seed=seed, console=console)


@bench_app.command("import")
def bench_import(
    rows: Annotated[int, typer.Option(help="rows in the person sheet")] = 20_000,
) -> None:
    """Time the import of a synthetic person XLSX (create, then update) into a scratch tenant."""
    from shequ.core.migrate import upgrade
    from shequ.sim.bench_import import bench_import as run

    upgrade()
    run(rows=rows, console=console)


tags_app = typer.Typer(help="Tags (标签): taxonomy and rule tags", no_args_is_help=True)
app.add_typer(tags_app, name="tags")


@tags_app.command("recompute")
def tags_recompute(tenant: TenantOpt = None) -> None:
    """Install missing default tags and recompute every rule tag (run daily: ages change)."""
    import time

    from shequ.core.registry.tags import install_default_tags, recompute_all
    from shequ.db import session_scope

    tenant_id = _tenant_id(tenant)
    start = time.perf_counter()
    with session_scope(tenant_id=tenant_id, actor="cli:tags") as session:
        created = install_default_tags(session=session)
        changed = recompute_all(session=session)
    console.print(f"标签已重算 tags recomputed: 新建标签 {created} created, 变更 {changed:,} "
                  f"taggings changed, 用时 {time.perf_counter() - start:.1f} s")


@tags_app.command("list")
def tags_list(
    entity: Annotated[str, typer.Option(help="person | household | house | organisation | building")] = "person",
    tenant: TenantOpt = None,
) -> None:
    """Show the tag taxonomy of an entity with the number of records per tag."""
    from shequ.core.registry.tags import TagError, tag_counts
    from shequ.db import session_scope

    tenant_id = _tenant_id(tenant)
    with session_scope(tenant_id=tenant_id, actor="cli:tags") as session:
        try:
            counts = tag_counts(session=session, entity=entity)
        except TagError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        table = Table(title=f"标签 tags — {entity}")
        for col in ("编码 code", "名称 name", "类型 kind", "记录数 records"):
            table.add_column(col)
        parents = {c.tag.parent_id for c in counts}
        for c in counts:
            kind = "规则 rule" if c.tag.rule else "分类 group" if c.tag.id in parents else "人工 manual"
            table.add_row(c.tag.code, "  " * c.depth + c.tag.name, kind, f"{c.count:,}")
    console.print(table)


if __name__ == "__main__":
    app()


# --- things that talk (IoT) ------------------------------------------------------------------


@app.command()
def worker(
    mqtt_url: Annotated[str | None, typer.Option("--mqtt-url", help="default SHEQU_MQTT_URL")] = None,
    client_id: Annotated[str | None, typer.Option("--id", help="stable client id (persistent session)")] = None,
    batch_max: Annotated[int | None, typer.Option(help="messages per batch")] = None,
    batch_wait_ms: Annotated[int | None, typer.Option(help="wait to fill a batch")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus /metrics on this port")] = None,
    stats: Annotated[Path | None, typer.Option(help="write totals and latencies here on exit (benchmarks)")] = None,
    no_sweeps: Annotated[bool, typer.Option("--no-sweeps", help="leave periodic sweeps to other workers")] = False,
    group: Annotated[str, typer.Option(help="shared-subscription group of the workers that split the load")] = "shequ",
) -> None:
    """Consume device messages from MQTT (shared subscription) through the ingest pipeline."""
    import logging
    import socket

    from shequ.core.iot.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    url = mqtt_url or get_settings().mqtt_url
    if not url:
        err.print("[red]需要 MQTT 地址 (--mqtt-url 或 SHEQU_MQTT_URL) — no broker URL given[/red]")
        raise typer.Exit(2)
    run_worker(url=url, client_id=client_id or f"shequ-worker-{socket.gethostname()}",
               batch_max=batch_max, batch_wait_ms=batch_wait_ms, stats_path=stats,
               metrics_port=metrics_port, sweeps=not no_sweeps, group=group)


@app.command()
def broker(
    port: Annotated[int, typer.Option()] = 1884,
    data_dir: Annotated[Path | None, typer.Option(help="default var/mosquitto")] = None,
) -> None:
    """Run Mosquitto with shequ's settings in the foreground (development)."""
    import time

    from shequ.core.iot.broker import Broker

    b = Broker(data_dir or get_settings().var_dir / "mosquitto", port=port, persistence=True).start()
    console.print(f"MQTT broker at {b.url} — export SHEQU_MQTT_URL={b.url}")
    try:
        while b.proc and b.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


twin_app = typer.Typer(help="The digital twin (数字孪生)", no_args_is_help=True)
app.add_typer(twin_app, name="twin")
loop_app = typer.Typer(help="The closed loop (闭环): rules, alarms, cases", no_args_is_help=True)
app.add_typer(loop_app, name="loop")
rules_app = typer.Typer(help="Rules (规则)", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@twin_app.command("rebuild")
def twin_rebuild(tenant: TenantOpt = None) -> None:
    """Recount every place's device conditions from scratch (after devices moved or were deleted)."""
    from shequ.core.iot.pipeline import now_ms
    from shequ.core.iot.twin import rebuild_place_states
    from shequ.db import get_engine

    tenant_id = _tenant_id(tenant)
    with get_engine().begin() as conn:
        n = rebuild_place_states(conn, tenant_id, now_ms())
    console.print(f"{n} places with devices")


@twin_app.command("sweep")
def twin_sweep() -> None:
    """Mark devices silent past their timeout offline (workers do this every 30 s)."""
    from shequ.core.iot.pipeline import now_ms
    from shequ.core.iot.twin import sweep_offline
    from shequ.db import get_engine

    console.print(f"{sweep_offline(get_engine(), now_ms())} devices went offline")


@app.command("telemetry-prune")
def telemetry_prune(days: Annotated[int | None, typer.Option(help="keep raw data this many days")] = None) -> None:
    """Apply the raw telemetry retention (rolled-up rows only) and drop old minute rollups."""
    from shequ.core.iot.pipeline import now_ms
    from shequ.core.iot.telemetry import prune
    from shequ.db import get_engine

    console.print(prune(get_engine(), now_ms=now_ms(), retention_days=days))


@bench_app.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(help="messages per run")] = 200_000,
    devices: Annotated[int, typer.Option(help="devices sending them")] = 5_000,
    batch: Annotated[int, typer.Option(help="messages per batch")] = 5_000,
    mqtt: Annotated[bool, typer.Option("--mqtt/--no-mqtt", help="also through Mosquitto, 1 and 2 workers")] = True,
    db_url: Annotated[str | None, typer.Option(help="scratch database (default: a new SQLite file)")] = None,
    latency_rate: Annotated[int, typer.Option(help="steady rate for the latency run (msg/s)")] = 5_000,
    latency_seconds: Annotated[int, typer.Option(help="length of the latency run")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object of the figures")] = False,
) -> None:
    """Messages per second and publish-to-commit latency of the ingest pipeline."""
    from shequ.sim.bench_ingest import bench_ingest as run

    run(messages=messages, devices=devices, batch=batch, mqtt=mqtt, db_url=db_url, latency_rate=latency_rate,
        latency_seconds=latency_seconds, as_json=as_json, console=console)


@bench_app.command("loop")
def bench_loop(
    rate: Annotated[int, typer.Option(help="background telemetry, messages/s")] = 5_000,
    seconds: Annotated[int, typer.Option(help="length of the run")] = 20,
    smoke_per_s: Annotated[float, typer.Option(help="smoke readings per second mixed in")] = 10.0,
    devices: Annotated[int, typer.Option(help="devices sending the background load")] = 5_000,
    db_url: Annotated[str | None, typer.Option(help="scratch database (default: a new SQLite file)")] = None,
    workers: Annotated[int, typer.Option(help="shequ worker processes")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object of the figures")] = False,
) -> None:
    """Publish → alarm and alarm → dispatched case latency under a background load (MQTT)."""
    from shequ.sim.bench_loop import bench_loop as run

    run(rate=rate, seconds=seconds, smoke_per_s=smoke_per_s, devices=devices, db_url=db_url,
        workers=workers, as_json=as_json, console=console)


@loop_app.command("sweep")
def loop_sweep(
    now: Annotated[str | None, typer.Option(help="ISO time with offset (default: now)")] = None,
) -> None:
    """Run every sweep of the loop once: rules on the clock, alarm escalation, overdue cases, webhooks."""
    import datetime as dt

    from shequ.core import loop
    from shequ.db import get_engine

    when = dt.datetime.fromisoformat(now) if now else None
    if when is not None and when.tzinfo is None:
        err.print("[red]--now 需要带时区 (the time needs a UTC offset)[/red]")
        raise typer.Exit(2)
    loop.install()
    console.print(loop.sweep_all(get_engine(), when))


@rules_app.command("install-defaults")
def rules_install_defaults(tenant: TenantOpt = None) -> None:
    """Give the tenant the shipped default rules and case classes it does not have."""
    from shequ.sim.demo import prepare_loop

    prepare_loop(tenant_id=_tenant_id(tenant))
    console.print("默认规则与案件分类已安装 default rules and case classes installed")


@twin_app.command("export-cityjson")
def twin_export_cityjson(
    out: Annotated[Path, typer.Option("--out", help="file to write (.city.json)")],
    committee: Annotated[int | None, typer.Option("--committee", help="only this committee's buildings")] = None,
    tenant: TenantOpt = None,
) -> None:
    """Export the community model (LoD1 buildings from footprints and floors) as CityJSON 2.0."""
    from shequ.core.iot.cityjson import write_cityjson
    from shequ.db import session_scope

    tenant_id = _tenant_id(tenant)
    with session_scope(tenant_id=tenant_id, actor="cli") as session:
        n = write_cityjson(session, out, committee_id=committee)
    console.print(f"{n} buildings → {out}")


@app.command()
def simulate(
    transport: Annotated[str, typer.Option(help="inproc | http | mqtt")] = "inproc",
    url: Annotated[str | None, typer.Option(help="server URL (http) or broker URL (mqtt; default SHEQU_MQTT_URL)")] = None,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1.0,
    duration: Annotated[float | None, typer.Option(help="real seconds to run (default: until Ctrl-C)")] = None,
    inject: Annotated[list[str] | None, typer.Option(help="anomaly kind[@device code], repeatable")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    tenant: TenantOpt = None,
) -> None:
    """Drive every device of the demo subdistrict with day/night patterns; inject anomalies."""
    from shequ.sim.simulate import simulate_command

    settings = get_settings()
    if transport == "mqtt":
        url = url or settings.mqtt_url
    elif transport == "http":
        url = url or f"http://{settings.host}:{settings.port}"
    try:
        result = simulate_command(tenant_code=tenant or settings.default_tenant, transport=transport, url=url,
                                  speed=speed, duration_s=duration, inject=inject or [], seed=seed,
                                  echo=console.print)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(result)
