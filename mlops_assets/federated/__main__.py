"""Run one piece of a federated training by hand or in a pod: the server, or one site.

    python -m mlops_assets.federated server --sites 2 --port 9091 [--tls-dir DIR]
    python -m mlops_assets.federated site --site north --rank 0 --sites 2 \
        --server federated:9091 --location /data/north --folder /results [--tls-dir DIR]

On one machine `mlops run` starts all of them itself; these commands are for sites that run
apart (the Kubernetes manifests in deploy/kubernetes/federated.yaml use them). A TLS folder
holds ca.crt plus server.crt/server.key (server) or client.crt/client.key (site).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_assets.core.training import TrainParams
from mlops_assets.federated.server import ServerStopped, serve
from mlops_assets.federated.site_worker import SiteTask, run_site
from mlops_assets.spec import load_spec


def main(argv: list[str] | None = None) -> None:
    """Parse the command and run the server or the site until it finishes."""
    args = _parser().parse_args(argv)
    tls = Path(args.tls_dir) if args.tls_dir else None
    if args.command == "server":
        files = {}
        if tls:
            files = {
                "server_key_path": str(tls / "server.key"),
                "server_cert_path": str(tls / "server.crt"),
                "client_cert_path": str(tls / "ca.crt"),
            }
        try:
            serve(args.sites, args.port, args.timeout, files)
        except ServerStopped as stopped:
            raise SystemExit(f"error: {stopped}") from None
        return
    spec = load_spec(args.spec)
    Path(args.folder).mkdir(parents=True, exist_ok=True)
    run_site(
        SiteTask(
            site=args.site,
            rank=args.rank,
            world_size=args.sites,
            location=args.location,
            server=args.server,
            folder=args.folder,
            spec=spec,
            params=TrainParams(seed=spec.training.seed),
            tls={
                "ca_cert": str(tls / "ca.crt"),
                "client_cert": str(tls / "client.crt"),
                "client_key": str(tls / "client.key"),
            }
            if tls
            else None,
            timeout_seconds=args.timeout,
        )
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops_assets.federated")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="XGBoost's federated server")
    server.add_argument("--port", type=int, default=9091)
    site = commands.add_parser("site", help="one site: its rows in, its share of the model out")
    site.add_argument("--site", required=True, help="the site's name in the spec")
    site.add_argument("--rank", type=int, required=True, help="0 .. sites-1 (0 writes the model)")
    site.add_argument("--server", required=True, help="host:port of the federated server")
    site.add_argument("--location", required=True, help="this site's file, glob or folder")
    site.add_argument("--folder", required=True, help="where status and aggregates go")
    site.add_argument("--spec", required=True, help="the dataset spec every site shares")
    for command in (server, site):
        command.add_argument("--sites", type=int, required=True, help="how many sites take part")
        command.add_argument(
            "--timeout", type=int, default=600, help="seconds without progress: then it stops"
        )
        command.add_argument("--tls-dir", default="", help="folder with the PEM files")
    return parser


if __name__ == "__main__":
    main()
