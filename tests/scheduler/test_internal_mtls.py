"""Mutual TLS on the internal API: the catalog with the CA's client certificate gets in,
anyone without one does not."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from catalog_service.settings import CatalogSettings
from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from scheduler_service.settings import SchedulerSettings
from tests.conftest import Stack
from tests.helpers.scripts import write_script


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by the CA."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        n: directory / f"{n}.pem" for n in ("ca", "ca-key", "srv", "srv-key", "cli", "cli-key")
    }
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(files["ca-key"]), "-out", str(files["ca"]), "-subj", "/CN=internal-ca",
    )  # fmt: skip
    for name, cn, san in (("srv", "scheduler", "IP:127.0.0.1"), ("cli", "catalog", None)):
        csr = directory / f"{name}.csr"
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files[f"{name}-key"]),
            "-out", str(csr), "-subj", f"/CN={cn}",
        )  # fmt: skip
        extensions = directory / f"{name}.ext"
        extensions.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(files["ca"]), "-CAkey",
            str(files["ca-key"]), "-CAcreateserial", "-days", "2", "-out", str(files[name]),
            "-extfile", str(extensions),
        )  # fmt: skip
    return files


@pytest.fixture
async def mtls_stack(
    database_urls: tuple[str, str], tmp_path: Path
) -> AsyncIterator[tuple[Stack, dict[str, Path]]]:
    """Both services, the scheduler serving mutual TLS only."""
    pki = _make_pki(tmp_path / "pki")
    catalog_url, scheduler_url = database_urls
    data_dir = tmp_path / "data"
    settings = SchedulerSettings(
        listen="127.0.0.1:0",
        data_dir=data_dir,
        database_url=scheduler_url,
        stop_grace_seconds=1.0,
        shutdown_grace_seconds=0.5,
        internal_ca=pki["ca"],
        internal_cert=pki["srv"],
        internal_key=pki["srv-key"],
    )
    stack = Stack(
        data_dir=data_dir,
        catalog_url=catalog_url,
        scheduler_url=scheduler_url,
        scheduler_settings=settings,
        catalog_settings=CatalogSettings(),
    )
    await stack.start_scheduler()
    assert stack.scheduler is not None
    stack.catalog_settings = CatalogSettings(
        listen="127.0.0.1:0",
        data_dir=data_dir,
        database_url=catalog_url,
        scheduler=f"127.0.0.1:{stack.scheduler.port}",
        reconcile_interval_seconds=1.0,
        scheduler_timeout_seconds=5.0,
        shutdown_grace_seconds=0.5,
        internal_ca=pki["ca"],
        internal_cert=pki["cli"],
        internal_key=pki["cli-key"],
    )
    await stack.start_catalog()
    try:
        yield stack, pki
    finally:
        await stack.close()


async def test_only_a_client_with_the_cas_certificate_gets_in(
    mtls_stack: tuple[Stack, dict[str, Path]], tmp_path: Path
) -> None:
    stack, pki = mtls_stack
    assert stack.scheduler is not None
    address = f"127.0.0.1:{stack.scheduler.port}"
    # TLS without a client certificate: the handshake is refused.
    anonymous = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    async with grpc.aio.secure_channel(address, anonymous) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler_pb2_grpc.SchedulerStub(channel).ListRegistrations(
                scheduler_pb2.ListRegistrationsRequest(), timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # Plain text: nothing answers.
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await scheduler_pb2_grpc.SchedulerStub(channel).ListRegistrations(
                scheduler_pb2.ListRegistrationsRequest(), timeout=5
            )
    # The catalog, with its certificate, registers jobs and follows the event stream.
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    await stack.create_job("tls", script)
    run_id = await stack.start_run("tls")
    assert (await stack.wait_run("tls", run_id)).job_run_state == "SUCCEEDED"
