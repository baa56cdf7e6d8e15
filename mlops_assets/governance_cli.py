"""`mlops audit ...` and `mlops verify`: the audit trail and model signatures from a terminal.

`audit show` lists every decision; `audit verify` walks the hash chain and names the first
entry that was edited, removed or moved (exit 1); `audit acknowledge --by NAME --reason ...`
lets promotions go on after a person looked at a break (the acknowledgement is itself an
entry). `verify [VERSION]` checks the signature of a registered version's files (default: the
champion) in its model folder and in BentoML's store (exit 1 when either is refused).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from mlops_assets.paths import PlatformPaths

if TYPE_CHECKING:
    from mlops_assets.model_registry.audit import AuditLog


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `audit` (show, verify, acknowledge) and `verify` on the `mlops` parser."""
    audit = commands.add_parser("audit", help="the hash-chained audit trail of every decision")
    actions = audit.add_subparsers(required=True, metavar="ACTION")
    show = actions.add_parser("show", help="list every decision, oldest first")
    show.add_argument("--json", action="store_true", help="one JSON entry per line")
    show.set_defaults(handler=_show)
    check = actions.add_parser("verify", help="check the chain; name the first bad entry")
    check.set_defaults(handler=_verify_audit)
    ack = actions.add_parser(
        "acknowledge", help="accept a broken chain after checking it, so promotions go on"
    )
    ack.add_argument("--by", required=True, help="your name: who accepts the break")
    ack.add_argument("--reason", required=True, help="why the break is understood")
    ack.set_defaults(handler=_acknowledge)

    verify = commands.add_parser("verify", help="check a model's signature (default: champion)")
    verify.add_argument("version", nargs="?", help="registered version (default: the champion)")
    verify.set_defaults(handler=_verify_model)


def _show(args: argparse.Namespace, paths: PlatformPaths) -> int:
    entries = _audit(paths).entries()
    if not entries:
        _say("No decision recorded yet.")
    for entry in entries:
        if args.json:
            _say(json.dumps(entry, sort_keys=True))
            continue
        what = f"v{entry['version']}" if "version" in entry else ""
        metrics = (entry.get("evidence") or {}).get("metrics") or {}
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        _say(
            f"{entry.get('seq', '?'):>4}  {entry.get('at', '')}  {entry.get('action', ''):<11} "
            f"{what:<5} by {entry.get('by', '?')}: {entry.get('reason', '')}  {shown}".rstrip()
        )
    return 0


def _verify_audit(args: argparse.Namespace, paths: PlatformPaths) -> int:
    found = _audit(paths).verify()
    for note in found.acknowledged:
        _say(f"acknowledged: {note}")
    if not found.intact:
        _say(f"Audit log BROKEN at entry {found.bad_line}: {found.problem}")
        return 1
    _say(f"Audit log intact: {found.entries} entries, each chained to the one before.")
    return 0


def _acknowledge(args: argparse.Namespace, paths: PlatformPaths) -> int:
    entry = _audit(paths).acknowledge(args.by, args.reason)
    _say(f"Acknowledged as entry {entry['seq']} by {entry['by']}: {entry['evidence']['problem']}")
    return 0


def _verify_model(args: argparse.Namespace, paths: PlatformPaths) -> int:
    """Check the signed copies of one registered version: its model folder, its export."""
    from mlops_assets.deployment.bento_export import model_tag
    from mlops_assets.signing import ModelSignatureError, key_id, state_keys, verify_folder

    registry = _registry(paths)
    info = registry.version(args.version) if args.version else registry.champion()
    if info is None:
        _say("error: no champion yet: name a version, or run `mlops run` first")
        return 1
    key = state_keys(paths.root).public_key()
    name, tag = model_tag(registry.name, info.version, info.run_id).split(":", 1)
    copies = {
        "model folder": paths.model(info.run_id),
        "BentoML export": paths.bentoml_home / "models" / name / tag,
    }
    failed = False
    for what, folder in copies.items():
        if not folder.exists():
            _say(f"v{info.version} {what}: not present ({folder})")
            continue
        try:
            signed = verify_folder(folder, key)
        except ModelSignatureError as error:
            failed = True
            _say(f"v{info.version} {what}: REFUSED: {error}")
            continue
        _say(f"v{info.version} {what}: verified ({', '.join(signed)}; key {key_id(key)})")
    return 1 if failed else 0


def _registry(paths: PlatformPaths):
    from mlops_assets.model_registry.champion import ChampionRegistry
    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.resources import MlopsHome, resolve_spec_path
    from mlops_assets.spec import load_spec

    spec = load_spec(resolve_spec_path(paths))
    tracking = MlflowTracking(home=MlopsHome(path=str(paths.root)))
    return ChampionRegistry(tracking.client(), spec.name, paths)


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")


def _audit(paths: PlatformPaths) -> AuditLog:
    """The state folder's audit trail (imported when a command reads it: it brings pandas)."""
    from mlops_assets.model_registry.audit import AuditLog

    return AuditLog(paths.deployment)
