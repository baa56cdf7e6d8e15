"""The service's by-key lookup waits for an unreachable registry instead of giving up."""

import pytest

from mlops_assets.serving.runtime import DeferredLookup, FeatureStoreUnavailable


class _Lookup:
    def lookup(self, keys: list[int]) -> list[int]:
        return [k * 2 for k in keys]


def test_a_failed_build_is_retried_after_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("mlops_assets.serving.runtime.time.monotonic", lambda: now[0])
    attempts = []

    def build() -> _Lookup:
        attempts.append(now[0])
        if len(attempts) < 2:
            raise ConnectionError("postgresql://mlops:secret@db:5432/feast refused")
        return _Lookup()

    deferred = DeferredLookup(build)  # the first attempt, at start-up, fails quietly
    with pytest.raises(FeatureStoreUnavailable):
        deferred.lookup([1])  # within the interval: no new attempt
    assert attempts == [100.0]
    now[0] += DeferredLookup.RETRY_S + 1
    assert deferred.lookup([1, 2]) == [2, 4]
    assert deferred.lookup([3]) == [6]  # built once, kept
    assert len(attempts) == 2


def test_the_warning_masks_the_password(caplog: pytest.LogCaptureFixture) -> None:
    def build() -> _Lookup:
        raise ConnectionError("postgresql://mlops:secret@db:5432/feast refused")

    DeferredLookup(build)
    assert "secret" not in caplog.text and "mlops:***@db" in caplog.text
