"""Signed models: the files of a model are signed when it is saved, and verified before loading.

A model folder (and each bundle exported to BentoML) gets `signature.json`: the SHA-256 of
every file that decides its predictions (the model file, the manifest, the dataset spec, the
registry facts), and an Ed25519 signature over that list. Loading verifies the signature with
a trusted public key, then every digest, and refuses the model, naming the first file that
changed, if anything differs: a flipped byte in `model.ubj` never reaches a prediction.

Ed25519 from `cryptography` (already a dependency) rather than OpenSSF's `model-signing`:
that library is not installed and dependencies are fixed for now; its key-based mode signs
the same thing (a manifest of file digests) with the same kind of key, so moving to it later
changes the signature file, not the places that sign and verify.

Keys:

- signing (training, export): `$MLOPS_SIGNING_KEY_FILE` (a PEM private key, e.g. a Kubernetes
  secret mounted as a file), else `$MLOPS_HOME/keys/signing_key.pem`, created on first use
  with mode 0600 beside its public half `signing_key.pub`;
- verifying (service, batch scorer, `mlops verify`): `$MLOPS_VERIFY_KEY_FILE` (a PEM public
  key: a serving pod needs no private key), else the public key of the signing key above.
  Verification never creates a key: with no trusted key it refuses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FILE = "signature.json"
FORMAT = "mlops-ed25519-v1"
SIGNING_KEY_ENV = "MLOPS_SIGNING_KEY_FILE"
VERIFY_KEY_ENV = "MLOPS_VERIFY_KEY_FILE"
PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "signing_key.pub"


class ModelSignatureError(RuntimeError):
    """A model whose files or signature do not verify: it must not be loaded."""


@dataclass(frozen=True)
class KeyPair:
    """Where the platform's keys come from, for one state folder."""

    folder: Path  # $MLOPS_HOME/keys

    def private_key(self) -> Ed25519PrivateKey:
        """The signing key: from `$MLOPS_SIGNING_KEY_FILE`, else this folder's (made once)."""
        configured = os.environ.get(SIGNING_KEY_ENV, "").strip()
        if configured:
            return _read_private(Path(configured), f"${SIGNING_KEY_ENV}")
        path = self.folder / PRIVATE_KEY_FILE
        if not path.exists():
            self._create(path)
        return _read_private(path, "the state folder's signing key")

    def public_key(self) -> Ed25519PublicKey:
        """The trusted verifying key: `$MLOPS_VERIFY_KEY_FILE`, else the signing key's half."""
        configured = os.environ.get(VERIFY_KEY_ENV, "").strip()
        if configured:
            return _read_public(Path(configured), f"${VERIFY_KEY_ENV}")
        if os.environ.get(SIGNING_KEY_ENV, "").strip():
            return self.private_key().public_key()
        path = self.folder / PUBLIC_KEY_FILE
        if not path.exists() and (self.folder / PRIVATE_KEY_FILE).exists():
            return self.private_key().public_key()
        if not path.exists():
            raise ModelSignatureError(
                f"no key to verify models with: {path} does not exist; set ${VERIFY_KEY_ENV} "
                "to the public key the models were signed with (or train in this state folder)"
            )
        return _read_public(path, "the state folder's public key")

    def _create(self, path: Path) -> None:
        """A new key pair, the private half readable by its owner only.

        Linked into place, so when two processes start at once the first key wins and both
        write the public half of that one.
        """
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        public = _read_private(path, "the new signing key").public_key()
        public_path = self.folder / PUBLIC_KEY_FILE
        staged = public_path.with_name(f".{public_path.name}.{os.getpid()}.tmp")
        staged.write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        os.replace(staged, public_path)


def state_keys(home: Path) -> KeyPair:
    """The key pair of the state folder `home` (environment settings take precedence)."""
    return KeyPair(home / "keys")


def key_id(key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of its SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_folder(folder: Path, files: list[str], key: Ed25519PrivateKey) -> Path:
    """Write `signature.json` over the SHA-256 of `files` in `folder`; returns its path."""
    digests = {name: _digest(folder / name) for name in sorted(files)}
    body = {"format": FORMAT, "files": digests, "key_id": key_id(key.public_key())}
    signature = key.sign(_canonical(body))
    document = {**body, "signature": base64.b64encode(signature).decode()}
    path = folder / SIGNATURE_FILE
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def verify_folder(folder: Path, key: Ed25519PublicKey) -> list[str]:
    """The signed file names, if the signature and every digest verify; else raise.

    Raises `ModelSignatureError` naming the folder and what failed: no signature, another
    key, a signature that does not match its list, or the first file that changed.
    """
    path = folder / SIGNATURE_FILE
    if not path.exists():
        raise ModelSignatureError(
            f"{folder} is not signed ({SIGNATURE_FILE} missing): export the model again from "
            "the registry (`mlops run` or the bento_model asset) so it is signed"
        )
    try:
        document = json.loads(path.read_text())
        body = {k: document[k] for k in ("format", "files", "key_id")}
        signature = base64.b64decode(document["signature"], validate=True)
    except Exception as exc:  # any damage to the signature file is a refusal, not a crash
        raise ModelSignatureError(f"{path} is unreadable ({type(exc).__name__})") from None
    if body["key_id"] != key_id(key):
        raise ModelSignatureError(
            f"{folder} was signed with key {body['key_id']}, not the trusted key {key_id(key)}"
        )
    try:
        key.verify(signature, _canonical(body))
    except InvalidSignature:
        raise ModelSignatureError(f"{path}: the signature does not match its file list") from None
    for name, expected in sorted(body["files"].items()):
        target = folder / name
        if not target.is_file():
            raise ModelSignatureError(f"{target} is missing: the signed model is incomplete")
        if _digest(target) != expected:
            raise ModelSignatureError(f"{target} changed after it was signed: refusing to load it")
    return sorted(body["files"])


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _read_private(path: Path, what: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelSignatureError(f"{what} ({path}) is not a readable PEM key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelSignatureError(f"{what} ({path}) is not an Ed25519 key: make one with it")
    return key


def _read_public(path: Path, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ModelSignatureError(f"{what} ({path}) is not a readable PEM key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ModelSignatureError(f"{what} ({path}) is not an Ed25519 public key")
    return key
