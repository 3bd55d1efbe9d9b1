"""`python -m trafficsim`: run the simulator as a process, scraped through file_sd."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path

from kubernetes import config

import devcluster
from trafficsim.simulator import Profile, Routing, Simulator, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="trafficsim", description=__doc__)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--app", required=True, help="value of the app label on the metrics")
    parser.add_argument("--http-route", help="split by this HTTPRoute's weights")
    parser.add_argument("--service", default="", help="without an HTTPRoute: this Service")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="VERSION=JSON",
        help='e.g. v2={"errorRatio": 0.3}',
    )
    parser.add_argument("--targets-dir", type=Path, help="register with Prometheus file_sd here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    api = config.new_client_from_config(config_file=args.kubeconfig)
    profiles = {}
    for item in args.profile:
        version, _, body = item.partition("=")
        profiles[version] = Profile.from_json(json.loads(body))
    sim = Simulator(
        api,
        Routing(args.namespace, args.app, args.http_route, args.service),
        rate=args.rate,
        profiles=profiles,
    )
    server = serve(sim, args.port)
    port = server.server_address[1]
    name = f"trafficsim-{args.namespace}-{args.app}"
    if args.targets_dir:
        devcluster.write_target(
            args.targets_dir, name, port, {"job": "trafficsim", "namespace": args.namespace}
        )
    sim.start()
    print(f"trafficsim listening on 127.0.0.1:{port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    sim.stop()
    server.shutdown()
    if args.targets_dir:
        (args.targets_dir / f"{name}.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
