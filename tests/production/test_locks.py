"""The promotion lock of the production profile, on a real PostgreSQL server."""

import subprocess
import sys

import pytest

from mlops_assets.model_registry.locks import LockTimeout, advisory_lock
from mlops_assets.profile import active_profile
from tests.production.conftest import Servers, fresh_production_env

pytestmark = pytest.mark.server

HOLDER = """
import sys, time
from mlops_assets.model_registry.locks import advisory_lock
from mlops_assets.profile import active_profile
with advisory_lock(active_profile().require_postgres(), "mlops-promotion:house_prices", 5):
    print("held", flush=True)
    time.sleep(600)
"""


def test_one_session_holds_the_lock_and_a_dead_holder_releases_it(servers: Servers) -> None:
    env = fresh_production_env(servers)
    settings = active_profile(env).require_postgres()
    name = "mlops-promotion:house_prices"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout, match=name), advisory_lock(settings, name, 0.5):
            pass
        with advisory_lock(settings, "mlops-promotion:another_model", 0.5):
            pass  # other models promote independently
    finally:
        holder.kill()  # dies holding the lock, without releasing it
        holder.wait(timeout=30)
    with advisory_lock(settings, name, 10):
        pass  # the server released it when the holder's session ended
