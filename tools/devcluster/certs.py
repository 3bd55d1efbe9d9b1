"""A throwaway PKI for one local cluster, generated with the ``openssl`` CLI.

kube-apiserver insists on TLS and on client certificates for a superuser, so
every cold ``up`` makes a fresh set (EC P-256 keys, generated in well under a
second): a CA, a serving certificate for localhost/127.0.0.1 and the in-cluster
service names, a service-account signing key pair, and an admin client
certificate in group ``system:masters``. The ``openssl`` CLI is used rather than
the ``cryptography`` package so the tooling adds no Python dependency.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devcluster.errors import DevclusterError

VALID_DAYS = 365
SERVING_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVING_IPS = ("127.0.0.1", "10.96.0.1")


@dataclass(frozen=True)
class Pki:
    """Paths of the generated PEM files."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    admin_cert: Path
    admin_key: Path

    @classmethod
    def in_dir(cls, directory: Path) -> Pki:
        return cls(
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            serving_cert=directory / "apiserver.crt",
            serving_key=directory / "apiserver.key",
            sa_key=directory / "sa.key",
            sa_pub=directory / "sa.pub",
            admin_cert=directory / "admin.crt",
            admin_key=directory / "admin.key",
        )


Option = tuple[str, "str | Path | int"]


def _openssl(openssl: Path, command: str, options: Sequence[Option] = ()) -> None:
    """Run ``openssl <command words> <option value>...``, raising with stderr on failure."""
    argv = [str(openssl), *command.split()]
    for flag, value in options:
        argv += [flag, str(value)]
    result = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    if result.returncode != 0:
        raise DevclusterError(
            f"certs: `{' '.join(argv)}` failed ({result.returncode}):\n"
            + result.stderr.decode(errors="replace")
        )


def _ec_key(openssl: Path, path: Path) -> None:
    _openssl(
        openssl,
        "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
        [("-out", path)],
    )
    path.chmod(0o600)


def _signed_cert(
    openssl: Path, pki: Pki, key: Path, cert: Path, subject: str, extensions: str
) -> None:
    """Issue ``cert`` for ``key`` signed by the CA, with the given v3 extensions."""
    csr = cert.with_suffix(".csr")
    ext = cert.with_suffix(".ext")
    _openssl(openssl, "req -new", [("-key", key), ("-subj", subject), ("-out", csr)])
    ext.write_text(extensions)
    _openssl(
        openssl,
        "x509 -req -sha256",
        [
            ("-in", csr),
            ("-CA", pki.ca_cert),
            ("-CAkey", pki.ca_key),
            ("-set_serial", f"0x{secrets.token_hex(16)}"),
            ("-days", VALID_DAYS),
            ("-extfile", ext),
            ("-out", cert),
        ],
    )
    csr.unlink()
    ext.unlink()


def generate_pki(openssl: Path, directory: Path) -> Pki:
    """Create every key and certificate in ``directory`` (replacing what is there)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    pki = Pki.in_dir(directory)

    _ec_key(openssl, pki.ca_key)
    _openssl(
        openssl,
        "req -x509 -new -sha256",
        [
            ("-key", pki.ca_key),
            ("-days", VALID_DAYS),
            ("-subj", "/CN=releaseguard-devcluster-ca"),
            ("-addext", "basicConstraints=critical,CA:TRUE"),
            ("-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"),
            ("-out", pki.ca_cert),
        ],
    )

    alt_names = [f"DNS:{name}" for name in SERVING_DNS_NAMES]
    alt_names += [f"IP:{ip}" for ip in SERVING_IPS]
    _ec_key(openssl, pki.serving_key)
    _signed_cert(
        openssl,
        pki,
        pki.serving_key,
        pki.serving_cert,
        "/CN=kube-apiserver",
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(alt_names)}\n",
    )

    _ec_key(openssl, pki.admin_key)
    _signed_cert(
        openssl,
        pki,
        pki.admin_key,
        pki.admin_cert,
        "/O=system:masters/CN=devcluster-admin",
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n",
    )

    _ec_key(openssl, pki.sa_key)
    _openssl(openssl, "pkey -pubout", [("-in", pki.sa_key), ("-out", pki.sa_pub)])
    return pki
