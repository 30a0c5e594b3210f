"""Key material of one register: an ECDSA P-256 signing key and, for RKSV, the AES-256 turnover key.

Both are made at first start in the instance's state directory, in files only the owner can read,
written to a temporary name and linked into place so a crash never leaves half a key. Nothing here
ever puts a key into a log line, an exception message or a ``repr``.

``cryptography`` (about 10 MB resident once imported) is imported when a key is first made, read or
used, not with this module: the bridge checks the keys in a child process at set-up (see
:mod:`.opening`) and reads the signing key at the first signature.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

SIGNING_KEY_FILE = "signing-key.pem"
AES_KEY_FILE = "turnover-key.b64"


class KeyFileError(Exception):
    """The key files are missing or unreadable (the message never contains key material)."""


class KeyMaterial:
    """The register's keys. Only the public half and fingerprints are ever shown.

    Made with the private key already read (:func:`load_keys`), or with the public key the journal
    started with and the path of the signing key, which :meth:`sign` reads and checks against that
    public key the first time it signs (:func:`deferred_keys`).
    """

    __slots__ = ("_aes_key", "_pem_path", "_private_key", "fingerprint", "public_key_der")

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey | None,
        aes_key: bytes | None,
        *,
        public_key_der: bytes | None = None,
        pem_path: Path | None = None,
    ) -> None:
        self._private_key = private_key
        self._aes_key = aes_key
        self._pem_path = pem_path
        if private_key is not None:
            public_key_der = _public_der(private_key)
        assert public_key_der is not None, "a public key or the private key is needed"
        self.public_key_der = public_key_der
        self.fingerprint = public_key_fingerprint(self.public_key_der)

    def __repr__(self) -> str:
        return f"KeyMaterial(fingerprint={self.fingerprint!r})"

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key_der).decode()

    @property
    def aes_key(self) -> bytes:
        if self._aes_key is None:
            raise KeyFileError("this register has no turnover key")
        return self._aes_key

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature as raw ``r ‖ s`` (64 bytes), as JWS ES256 wants it."""
        from cryptography.hazmat.primitives import hashes  # at first use: see the module docstring
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self._signing_key().sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def _signing_key(self) -> ec.EllipticCurvePrivateKey:
        if self._private_key is None:
            assert self._pem_path is not None
            key = _read_private_key(self._pem_path)
            if _public_der(key) != self.public_key_der:
                raise KeyFileError(
                    f"the signing key in {self._pem_path} is not the one this journal started with"
                )
            self._private_key = key
        return self._private_key


def public_key_fingerprint(public_key_der: bytes) -> str:
    return hashlib.sha256(public_key_der).hexdigest()[:16]


def _public_der(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization  # at first use: see the module docstring

    return private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    from cryptography.hazmat.primitives import serialization  # at first use: see the module docstring
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_der_public_key(base64.b64decode(public_key_b64, validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 public key")
    return key


def verify_signature(public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    """Check a raw ``r ‖ s`` ECDSA P-256 / SHA-256 signature."""
    from cryptography.exceptions import InvalidSignature  # at first use: see the module docstring
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def load_keys(state_dir: Path, *, with_aes: bool, create: bool) -> KeyMaterial:
    """Read the register's keys, making them first if ``create`` and they do not exist yet."""
    from cryptography.hazmat.primitives import serialization  # at first use: see the module docstring
    from cryptography.hazmat.primitives.asymmetric import ec

    pem_path, aes_path = state_dir / SIGNING_KEY_FILE, state_dir / AES_KEY_FILE
    if create and not pem_path.exists():
        private = ec.generate_private_key(ec.SECP256R1())
        _write_secret(
            pem_path,
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        log.info("Created the fiscal signing key in %s", pem_path)
    if with_aes and create and not aes_path.exists():
        _write_secret(aes_path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
        log.info("Created the RKSV turnover key in %s", aes_path)
    private_key = _read_private_key(pem_path)
    aes_key = _read_aes_key(aes_path) if with_aes else None
    return KeyMaterial(private_key, aes_key)


def deferred_keys(state_dir: Path, *, with_aes: bool, public_key_b64: str) -> KeyMaterial:
    """The register's keys without reading the signing key yet: :meth:`KeyMaterial.sign` reads it and
    checks it is the one with ``public_key_b64`` (the journal's) the first time it signs. The key
    files must exist, and the turnover key is read now."""
    pem_path = state_dir / SIGNING_KEY_FILE
    _read_secret(pem_path, "signing key")  # missing or open to others: said now, not at the first receipt
    aes_key = _read_aes_key(state_dir / AES_KEY_FILE) if with_aes else None
    public_key_der = base64.b64decode(public_key_b64, validate=True)
    return KeyMaterial(None, aes_key, public_key_der=public_key_der, pem_path=pem_path)


def _read_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization  # at first use: see the module docstring
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read_secret(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise KeyFileError(f"the signing key in {path} cannot be read") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"the signing key in {path} is not an ECDSA P-256 key")
    return key


def _read_aes_key(path: Path) -> bytes:
    try:
        key = base64.b64decode(_read_secret(path, "turnover key").strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise KeyFileError(f"the turnover key in {path} is not a base64 AES-256 key")
    return key


def _read_secret(path: Path, what: str) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"the {what} {path} is missing") from None
    if mode & 0o077:
        log.warning("%s was readable by others; restricting it to its owner", path)
        path.chmod(0o600)
    return path.read_bytes()


def _write_secret(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left over from a crash during an earlier first start
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    # link() refuses to replace an existing key, which rename() would do silently.
    os.link(temporary, path)
    temporary.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
