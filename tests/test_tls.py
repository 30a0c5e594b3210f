"""TLS to Mews: the API client and the event stream share one verified context (one copy of the CA
certificates in memory), so a certificate it does not trust is refused by both."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve

from mews_bridge import metrics
from mews_bridge.mews.client import MewsClient
from mews_bridge.mews.errors import MewsUnavailable
from mews_bridge.mews.stream import EventStream
from mews_bridge.settings import MewsSettings
from mews_bridge.testing import wait_for


def self_signed_loopback(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no trust store holds, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mews-bridge test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_an_untrusted_certificate_is_refused_by_the_client_and_the_stream_alike(tmp_path):
    cert_file, key_file = self_signed_loopback(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)

    async def hold(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(hold, "127.0.0.1", 0, ssl=server_tls) as server:
        port = server.sockets[0].getsockname()[1]
        settings = MewsSettings(
            platform_url=f"https://127.0.0.1:{port}",
            websocket_url=f"wss://127.0.0.1:{port}",
            client_token="c",
            access_token="a",
            max_retry_s=0.05,
        )

        async def nothing(*_: object) -> None:
            return None

        async with MewsClient(settings, retry_budget_s=0.2) as client:
            assert client.tls.verify_mode == ssl.CERT_REQUIRED and client.tls.check_hostname
            with pytest.raises(
                MewsUnavailable, match=r"network fault \(ConnectError\)"
            ):  # the handshake failed
                await client.get_devices()
            stream = EventStream(
                settings, nothing, nothing, backoff_initial_s=0.01, backoff_max_s=0.01, tls=client.tls
            )
            refused = metrics.WEBSOCKET_RECONNECTS.values[()]
            running = asyncio.create_task(stream.run())
            try:
                await wait_for(lambda: metrics.WEBSOCKET_RECONNECTS.values[()] >= refused + 2, 10)
                assert not stream.connected.is_set()
                client.tls.load_verify_locations(cafile=cert_file)  # trusted now, by the one context
                await wait_for(stream.connected.is_set, 10)
                # Through TLS now, to a server that is no HTTP API: it drops the request.
                with pytest.raises(MewsUnavailable, match=r"network fault \(RemoteProtocolError\)"):
                    await client.get_devices()
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
