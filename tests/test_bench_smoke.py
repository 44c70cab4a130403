"""Every bench/ script runs end to end at tiny sizes (``TENANTRY_BENCH_SMOKE=1``) against the
test server and prints its figures: the scripts behind the figures the docs quote still work."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.pool import NullPool

from tenantry import make_engine

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))
#: A line each script prints once it has measured everything (a script not listed: any number).
FIGURES = {
    "across.py": r"across\(\), chunk=250, jobs=2 +[\d.]+ ms +[\d.]+x",
    "aio_web.py": r"WSGI request .* ratio +[\d.]+",
    "each.py": r"resuming a finished run of \d+ tenants: \d+ ms",
    "engines.py": r"zipf\(1\.1\) +speed-up warm +[\d.]+x",
    "fleet_migrate.py": r"jobs=2 compiled +\d+ tenants: \d+ MB",
    "promote.py": r"demote +offline .* writes blocked +\d+ ms",
    "provisioning.py": r"tenantry replay 300 / template 300: [\d.]+",
    "status.py": r"migrate_all\(\) with nothing to do over \d+ tenants: \d+ registry",
    "strict.py": r"login / strict: [\d.]+x",
    "transfer_bench.py": r"peak Python memory: .* ratio [\d.]+",
}
#: Scripts that need a server setting: (setting, value).
NEEDS = {"promote.py": ("wal_level", "logical")}  # online promote/demote replicate


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_runs_tiny_and_prints_its_figures(pg_url: str, script: str) -> None:
    if script in NEEDS:
        setting, value = NEEDS[script]
        engine = make_engine(pg_url, poolclass=NullPool)
        with engine.connect() as conn:
            actual = conn.exec_driver_sql(f"SHOW {setting}").scalar()
        engine.dispose()
        if actual != value:
            pytest.skip(f"the test server has {setting}={actual}, not {value}")
    env = dict(os.environ, TENANTRY_BENCH_SMOKE="1", TENANTRY_BENCH_URL=pg_url,
               PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, output
    assert re.search(FIGURES.get(script, r"\d"), done.stdout), output
