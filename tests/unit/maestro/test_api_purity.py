"""maestro.api is pure: importing all of it loads no grpc, protobuf or psycopg."""

from __future__ import annotations

import subprocess
import sys


def test_domain_imports_no_io_libraries() -> None:
    code = (
        "import sys, pkgutil, importlib, maestro.api as api\n"
        "for m in pkgutil.iter_modules(api.__path__): importlib.import_module('maestro.api.' + m.name)\n"
        "io_libs = {'grpc', 'google', 'psycopg', 'psycopg_pool', 'confluent_kafka'}\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in io_libs)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
