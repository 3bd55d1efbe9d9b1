"""The operator's CLI with faults injected at its Cluster, for the e2e tests only.

    python tests/e2e/faulty_operator.py [--kill-after-write] [--conflict-once
        [--conflict-image IMAGE]] run --namespace NS ...

`releaseguard run` as shipped, except that its `Kube` is wrapped:

- --kill-after-write: the process SIGKILLs itself right after its first object write
  (a step or a GitOps pause), before the status write that records it;
- --conflict-once: just before its first object write, it acts once as a concurrent
  writer would (it writes the object itself, so the real write gets a 409 from the API
  server); with --conflict-image on a Deployment, that writer also sets the first
  container's image.

No fault hook exists in the operator's code: the faults live here, behind the
`Cluster` Protocol (adapters/cluster.py).
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from releaseguard import cli
from releaseguard.adapters.kube import Kube

CONCURRENT_WRITER = "test.releaseguard.io/concurrent-writer"


def faulty_kube(kill_after_write: bool, conflict_once: bool, image: str | None) -> type[Kube]:
    class FaultyKube(Kube):
        conflict_armed = conflict_once

        def replace(self, ns: str, kind: str, body: dict[str, Any]) -> None:
            if self.conflict_armed:
                type(self).conflict_armed = False
                stored = self.read(ns, kind, body["metadata"]["name"])
                touched = copy.deepcopy(stored)
                touched["metadata"].setdefault("annotations", {})[CONCURRENT_WRITER] = datetime.now(
                    UTC
                ).isoformat()
                if image and kind == "Deployment":
                    touched["spec"]["template"]["spec"]["containers"][0]["image"] = image
                super().replace(ns, kind, touched)
            super().replace(ns, kind, body)
            if kill_after_write:
                os.kill(os.getpid(), signal.SIGKILL)

    return FaultyKube


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--kill-after-write", action="store_true")
    parser.add_argument("--conflict-once", action="store_true")
    parser.add_argument("--conflict-image")
    faults, rest = parser.parse_known_args(argv)
    cli.Kube = faulty_kube(  # type: ignore[misc]
        faults.kill_after_write, faults.conflict_once, faults.conflict_image
    )
    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
