"""A throwaway Prometheus (Debian's binary) for a test that needs to stop it mid-run."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

import requests

from waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePrometheus:
    def __init__(self, workdir: Path, target_port: int) -> None:
        self.workdir = workdir
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: private\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{self.target_port}']}}]\n"
        )
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (
                f"private Prometheus exited; log {self.workdir / 'prometheus.log'}"
            )
            try:
                return requests.get(f"{self.url}/-/ready", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(
            ready,
            timeout=30,
            describe=lambda: (self.workdir / "prometheus.log").read_text()[-2000:],
        )

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing ever answers (a hang)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
