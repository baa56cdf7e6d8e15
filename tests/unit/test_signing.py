"""Model signatures: what verifies, and each way a signed folder is refused."""

from __future__ import annotations

import json
import stat

import pytest

from mlops_assets.signing import (
    ModelSignatureError,
    key_id,
    sign_folder,
    state_keys,
    verify_folder,
)

FILES = {"model.ubj": b"\x00\x01model bytes\x02", "manifest.json": b'{"family": "xgboost"}'}


@pytest.fixture
def signed(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name, content in FILES.items():
        (folder / name).write_bytes(content)
    keys = state_keys(tmp_path / "home")
    sign_folder(folder, list(FILES), keys.private_key())
    return folder, keys


def test_a_signed_folder_verifies_with_the_state_folders_key(signed, tmp_path):
    folder, keys = signed
    assert verify_folder(folder, keys.public_key()) == ["manifest.json", "model.ubj"]
    private = tmp_path / "home" / "keys" / "signing_key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key_id(keys.public_key()) == key_id(state_keys(tmp_path / "home").public_key())


def test_a_flipped_byte_is_refused_naming_the_file(signed):
    folder, keys = signed
    data = bytearray((folder / "model.ubj").read_bytes())
    data[3] ^= 0x01
    (folder / "model.ubj").write_bytes(bytes(data))
    with pytest.raises(ModelSignatureError, match=r"model\.ubj changed after it was signed"):
        verify_folder(folder, keys.public_key())


def test_a_rewritten_file_list_fails_the_signature(signed):
    folder, keys = signed
    (folder / "model.ubj").write_bytes(b"another model")
    document = json.loads((folder / "signature.json").read_text())
    document["files"]["model.ubj"] = "0" * 64
    (folder / "signature.json").write_text(json.dumps(document))
    with pytest.raises(ModelSignatureError, match="signature does not match its file list"):
        verify_folder(folder, keys.public_key())


def test_another_key_missing_files_and_no_signature_are_refused(signed, tmp_path):
    folder, keys = signed
    stranger = state_keys(tmp_path / "elsewhere").private_key().public_key()
    with pytest.raises(ModelSignatureError, match=f"not the trusted key {key_id(stranger)}"):
        verify_folder(folder, stranger)
    (folder / "manifest.json").unlink()
    with pytest.raises(ModelSignatureError, match=r"manifest\.json is missing"):
        verify_folder(folder, keys.public_key())
    (folder / "signature.json").unlink()
    with pytest.raises(ModelSignatureError, match=r"is not signed \(signature\.json missing\)"):
        verify_folder(folder, keys.public_key())


def test_keys_from_files_named_by_the_environment(signed, tmp_path, monkeypatch):
    folder, keys = signed
    private = tmp_path / "home" / "keys" / "signing_key.pem"
    public = tmp_path / "home" / "keys" / "signing_key.pub"
    elsewhere = state_keys(tmp_path / "no-keys-here")
    monkeypatch.setenv("MLOPS_VERIFY_KEY_FILE", str(public))
    assert verify_folder(folder, elsewhere.public_key()) == ["manifest.json", "model.ubj"]
    assert not (tmp_path / "no-keys-here").exists(), "verifying never creates a key"
    monkeypatch.delenv("MLOPS_VERIFY_KEY_FILE")
    with pytest.raises(ModelSignatureError, match="no key to verify models with"):
        elsewhere.public_key()
    monkeypatch.setenv("MLOPS_SIGNING_KEY_FILE", str(private))
    assert key_id(elsewhere.private_key().public_key()) == key_id(keys.public_key())
    monkeypatch.setenv("MLOPS_SIGNING_KEY_FILE", str(folder / "manifest.json"))
    with pytest.raises(ModelSignatureError, match="is not a readable PEM key"):
        elsewhere.private_key()
