"""`shequ bench seed`: time the synthetic subdistrict generation into the configured database
and print wall time per phase, rows per kind and peak memory (figures for docs/benchmarks.md)."""

from __future__ import annotations

import platform
import resource
import time

from rich.console import Console
from rich.table import Table

from shequ.config import get_settings
from shequ.sim.seed import SeedReport
from shequ.sim.seed import seed as run_seed


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


def bench_seed(*, scale: str, seed: int, console: Console, tenant_code: str | None = None) -> SeedReport:
    """Run the seed once (resetting the tenant first) and print the figures."""
    from shequ.core.migrate import upgrade

    settings = get_settings()
    upgrade()
    code = tenant_code or settings.default_tenant
    started = time.perf_counter()
    cpu0 = time.process_time()
    report = run_seed(scale=scale, seed=seed, tenant_code=code, progress=False, reset=True)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    db = settings.database_url.split("://", 1)[0]

    phases = Table(title=f"shequ seed --scale {scale} --seed {seed} ({db})")
    phases.add_column("phase")
    phases.add_column("seconds", justify="right")
    for name, seconds in report.phases.items():
        phases.add_row(name, f"{seconds:.2f}")
    phases.add_row("[bold]total[/bold]", f"[bold]{wall:.2f}[/bold]")
    console.print(phases)

    rows = Table(title="rows written")
    rows.add_column("kind")
    rows.add_column("rows", justify="right")
    for name, count in report.counts.items():
        rows.add_row(name, f"{count:,}")
    console.print(rows)
    console.print(f"wall {wall:.1f} s · CPU of this process {cpu:.1f} s · peak RSS {peak_rss_mb():.0f} MiB · "
                  f"database {db} · Python {platform.python_version()} · {platform.machine()}")
    return report
