"""Start the demo in-process and print when each scenario raises its first alarm.

Usage: SHEQU_VAR_DIR=$(mktemp -d) .venv/bin/python scripts/demo_check.py [small|full] [minutes]
(the figures are in docs/benchmarks.md, "Scenario targets and linkage").
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from sqlalchemy import func, select


def main() -> None:
    os.environ.setdefault("SHEQU_VAR_DIR", tempfile.mkdtemp())
    scale = sys.argv[1] if len(sys.argv) > 1 else "small"
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0

    from shequ.config import get_settings
    from shequ.core.alarms.models import Alarm
    from shequ.core.migrate import upgrade
    from shequ.core.places.service import get_tenant
    from shequ.db import session_scope
    from shequ.sim.demo import demo_incidents, prepare_demo, start_live

    upgrade()
    started = time.time()
    prepare_demo(scale=scale, seed=1)
    print(f"prepared in {time.time() - started:.0f} s; incidents in turn: {demo_incidents()}", flush=True)
    code = get_settings().default_tenant
    stop = start_live(code)
    t0 = time.time()
    first: dict[tuple[str, str], float] = {}
    with session_scope() as s:
        tenant = get_tenant(session=s, code=code)
        assert tenant is not None
        tenant_id = tenant.id
    while time.time() - t0 < minutes * 60:
        time.sleep(20)
        with session_scope(tenant_id=tenant_id) as s:
            rows = s.execute(select(Alarm.scenario, Alarm.type, func.count()).group_by(Alarm.scenario, Alarm.type)).all()
        elapsed = time.time() - t0
        for scenario, type_, n in rows:
            if (scenario, type_) not in first:
                first[(scenario, type_)] = elapsed
                print(f"{elapsed:6.0f} s  first {scenario or '-'} {type_} (now {n})", flush=True)
    stop.set()


if __name__ == "__main__":
    main()
