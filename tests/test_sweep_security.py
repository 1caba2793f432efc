"""Dask schedulers for `sweep`: fail fast when unreachable, warn on plaintext to another
machine, TLS through certificates (docs/reliability.md, "Dask schedulers")."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import warnings

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from modelcollapse.experiments import sweep  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_line_and_fast(tmp_path):
    port = _free_port()  # nothing listens there
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "modelcollapse", "sweep", "demo", "--grid", "real_fraction=0",
                          "--out", str(tmp_path), "--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "2"],
                         capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0], res.stderr
    assert "Traceback" not in res.stderr
    assert elapsed < 60, elapsed  # import + 2 s timeout, not the 30 s Dask default plus retries


class _FakeClient:
    """Stands in for distributed.Client so that no connection is attempted."""

    def __init__(self, address, security=None, timeout=None):
        raise OSError("not connecting in tests")


@pytest.mark.parametrize("address, warns", [
    ("tcp://192.0.2.7:8786", True),      # documentation address: another machine, plaintext
    ("192.0.2.7:8786", True),            # no scheme means tcp
    ("tcp://127.0.0.1:8786", False),     # loopback: no one else on the path
    ("tcp://localhost:8786", False),
])
def test_plaintext_to_another_machine_warns(monkeypatch, address, warns):
    monkeypatch.setattr(distributed, "Client", _FakeClient)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="cannot reach the Dask scheduler"):
            sweep.connect_scheduler(address, timeout=0.1)
    plaintext = [w for w in caught if "plaintext" in str(w.message)]
    assert bool(plaintext) is warns


def test_bad_addresses_and_tls_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown scheme"):
        sweep.connect_scheduler("http://127.0.0.1:8786")
    with pytest.raises(ValueError, match="no certificates"):
        sweep.connect_scheduler("tls://127.0.0.1:8786")
    with pytest.raises(ValueError, match="tls_ca_file: no such file"):
        sweep.scheduler_security(tls_ca_file=str(tmp_path / "missing.pem"), tls_cert=str(tmp_path / "c.pem"))
    assert sweep.scheduler_security() is None


def _make_certs(folder) -> tuple[str, str]:
    """A self-signed certificate (its own CA) with its key in one PEM file."""
    key, cert, both = folder / "key.pem", folder / "cert.pem", folder / "both.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    both.write_text(cert.read_text() + key.read_text())
    return str(cert), str(both)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_sweep_over_tls(tmp_path):
    ca, both = _make_certs(tmp_path)
    security = distributed.security.Security(tls_ca_file=ca, tls_scheduler_cert=both, tls_worker_cert=both,
                                             tls_client_cert=both, require_encryption=True)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls",
                                  host="127.0.0.1", dashboard_address=None, security=security) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        client_security = sweep.scheduler_security(tls_ca_file=ca, tls_cert=both)
        table = sweep.run_sweep("demo", "quick", {"real_fraction": ["0"]}, 1, tmp_path / "out",
                                scheduler=cluster.scheduler_address, security=client_security,
                                log=lambda _: None)
    assert isinstance(table, pd.DataFrame) and table["cell"].nunique() == 1
