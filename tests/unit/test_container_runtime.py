"""`scripts/container.sh` runs the image with an OCI runtime that exists on the machine.

The choice is read from PATH and `podman info`, so the test builds a PATH holding only the
programs a case needs (tiny executables standing for installed runtimes) and runs the real
shell function on it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "container_runtime.sh"
PODMAN_INFO = '#!/bin/sh\n[ "$1" = info ] && echo crun\n'


def _choose(tmp_path: Path, installed: dict[str, str], wanted: str = "") -> tuple[int, str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for name, body in installed.items():
        program = bin_dir / name
        program.write_text(body)
        program.chmod(0o755)
    env = {"PATH": str(bin_dir), **({"CONTAINER_RUNTIME": wanted} if wanted else {})}
    done = subprocess.run(
        ["/bin/bash", "-c", f"source {SCRIPT}; choose_runtime"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout.strip(), done.stderr.strip()


@pytest.mark.parametrize(
    ("installed", "chosen"),
    [
        (["runc", "crun"], "runc"),
        (["crun"], "crun"),  # a stock podman install: no runc
        (["runc"], "runc"),
    ],
)
def test_an_installed_runtime_is_chosen(tmp_path, installed, chosen):
    assert _choose(tmp_path, dict.fromkeys(installed, "#!/bin/sh\n")) == (0, chosen, "")


def test_without_either_program_podmans_own_default_is_used(tmp_path):
    assert _choose(tmp_path, {"podman": PODMAN_INFO}) == (0, "crun", "")


def test_no_runtime_at_all_is_one_sentence(tmp_path):
    assert _choose(tmp_path, {}) == (
        1,
        "",
        "no OCI runtime found: install crun or runc (apt-get install crun), or set "
        "CONTAINER_RUNTIME",
    )


def test_the_runtime_asked_for_must_exist(tmp_path):
    assert _choose(tmp_path, {"crun": "#!/bin/sh\n"}, wanted="crun") == (0, "crun", "")
    assert _choose(tmp_path / "other", {"runc": "#!/bin/sh\n"}, wanted="kata") == (
        1,
        "",
        "CONTAINER_RUNTIME=kata is not an installed program: install it or unset CONTAINER_RUNTIME",
    )


def test_container_script_no_longer_names_a_fixed_runtime():
    script = (SCRIPT.parent / "container.sh").read_text()
    assert "--runtime runc" not in script
    assert '--runtime "$RUNTIME"' in script and 'RUNTIME="$(choose_runtime)"' in script
