"""The AIGrid bundle on a PostgreSQL ledger shared by two rule instances (two runtimes)."""

from __future__ import annotations

import importlib.util
import itertools
import zipfile
from pathlib import Path

import charter
from charter.compiler.export_aigrid import export

ROOT = Path(__file__).resolve().parents[2]
GIG = ROOT / "stdlib_policies" / "gig_market.charter"
_fresh = itertools.count()


def _rule_class(tmp_path: Path):
    res = export(GIG, tmp_path / "bundle")
    with zipfile.ZipFile(res.zip_path) as zf:
        zf.extractall(tmp_path / "unzipped")
    spec = importlib.util.spec_from_file_location(
        f"aigrid_pg_{next(_fresh)}", tmp_path / "unzipped" / "code" / "function.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AIOSv1PolicyRule


def test_two_rule_instances_share_one_postgresql_ledger(pg_server, tmp_path):
    from charter.compiler import export_aigrid

    rule_cls = _rule_class(tmp_path)
    url = pg_server.new_url()
    first = rule_cls("r1", {"store": "postgresql", "db_url": url}, {})
    export_aigrid._SHARED.clear()  # as if the second instance ran in another process
    second = rule_cls("r2", {"store": "postgresql", "db_url": url}, {})
    try:
        assert first._runtime is not second._runtime
        ev = {"id": "d1", "type": "deposit", "submitter": "gateway", "time": 1000,
              "args": {"account": "ann", "amount": 5}}
        assert first.eval({}, ev, {})["status"] == "applied"
        assert second.eval({}, ev, {})["status"] == "duplicate"  # seen through the ledger
        ev2 = dict(ev, id="d2")
        assert second.eval({}, ev2, {})["status"] == "applied"
        # management reads what the other instance committed
        bal = first.management("balances", {})
        assert bal["balances"]["party:ann:Credit"] == second.management("balances", {})[
            "balances"]["party:ann:Credit"]
        assert first.management("audit", {})["audit"]["ok"]
    finally:
        for rule in (first, second):
            rule._runtime.close()
        export_aigrid._SHARED.clear()
    assert charter.audit_ledger(url).ok


def test_bad_postgresql_settings_are_refused_clearly(tmp_path):
    import pytest

    rule_cls = _rule_class(tmp_path)
    for settings, says in [
        ({"store": "postgresql"}, "needs the setting db_url"),
        ({"store": "postgresql", "db_url": "mysql://x"}, "needs the setting db_url"),
        ({"store": "postgresql", "db_url": "postgresql://u:hunter2@127.0.0.1:1/x"},
         "cannot open the ledger"),
    ]:
        with pytest.raises(Exception) as info:
            rule_cls("r", settings, {})
        assert says in str(info.value) and "hunter2" not in str(info.value)
