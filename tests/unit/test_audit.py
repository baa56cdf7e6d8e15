"""The audit log: each kind of edit is found and named, acknowledged breaks stop blocking.

The log is written through `AuditLog.append`, then its file is changed by hand the way a
person with access to the state folder could: a field edited, an edit with the hash
recomputed, a line removed, two lines swapped, the last line cut off, a line made unreadable.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mlops_assets.model_registry.audit import (
    AuditChainBroken,
    AuditLog,
    acting_as,
    entry_hash,
)


def _log(tmp_path: Path, count: int = 4) -> AuditLog:
    log = AuditLog(tmp_path / "deployment")
    for number in range(1, count + 1):
        with acting_as(f"run-{number}"):
            log.append(
                "promote",
                {"model": "house_prices", "version": str(number), "reason": "beat champion"},
                {"metrics": {"rmse": 1000.0 / number}, "data_hash": f"d{number}"},
            )
    return log


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines()


def _write(log: AuditLog, lines: list[str]) -> None:
    log.path.write_text("".join(f"{line}\n" for line in lines))


def test_an_untouched_log_verifies_and_records_who_and_what(tmp_path):
    log = _log(tmp_path)
    found = log.verify()
    assert (found.intact, found.entries, found.bad_line) == (True, 4, None)
    entries = log.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert [e["by"] for e in entries] == ["run-1", "run-2", "run-3", "run-4"]
    assert entries[0]["previous_hash"] == "0" * 64
    assert [e["previous_hash"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    assert entries[2]["evidence"] == {"metrics": {"rmse": 1000.0 / 3}, "data_hash": "d3"}
    log.require_intact()


def test_an_edited_field_is_named(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    lines[1] = lines[1].replace('"rmse": 500.0', '"rmse": 400.0')
    _write(log, lines)
    found = log.verify()
    assert found.bad_line == 2
    assert found.problem == "entry 2 was edited: its content no longer matches its hash"


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    entry = json.loads(lines[1])
    entry["by"] = "someone else"
    entry["hash"] = entry_hash(entry)
    lines[1] = json.dumps(entry, sort_keys=True)
    _write(log, lines)
    found = log.verify()
    assert found.bad_line == 3
    assert found.problem.startswith("entry 3 (seq 3) does not follow entry 2")


def test_a_removed_entry_is_named(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    _write(log, lines[:1] + lines[2:])
    found = log.verify()
    assert found.bad_line == 2
    assert found.problem.startswith("entry 2 (seq 3) does not follow entry 1")


def test_reordered_entries_are_named(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)
    found = log.verify()
    assert found.bad_line == 2
    assert found.problem.startswith("entry 2 (seq 3) does not follow entry 1")


def test_a_cut_off_last_entry_is_named_through_the_head(tmp_path):
    log = _log(tmp_path)
    _write(log, _lines(log)[:-1])
    found = log.verify()
    assert found.bad_line == 3
    assert found.problem == (
        "entry 4 was removed: the log ends at entry 3, the head records 4 entries"
    )


def test_an_unreadable_line_is_named(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    lines[2] = lines[2][:-5]
    _write(log, lines)
    assert log.verify().problem == "entry 3 is not valid JSON: it was edited"


def test_a_broken_chain_blocks_until_a_person_acknowledges_it(tmp_path):
    log = _log(tmp_path)
    lines = _lines(log)
    _write(log, lines[:1] + lines[2:])
    with pytest.raises(AuditChainBroken, match=r"entry 2 \(seq 3\).*`mlops audit acknowledge"):
        log.require_intact()
    with pytest.raises(ValueError, match="needs a name"):
        log.acknowledge(" ", "checked")
    ack = log.acknowledge("Ada Auditor", "restored from backup; entry 2 lost")
    assert (ack["action"], ack["by"], ack["seq"]) == ("acknowledge", "Ada Auditor", 4)
    assert ack["evidence"]["problem"].startswith("entry 2 (seq 3) does not follow entry 1")
    found = log.verify()
    assert found.intact and found.entries == 4
    assert found.acknowledged[0].endswith("(acknowledged in entry 4)")
    log.require_intact()
    log.append("promote", {"model": "house_prices", "version": "5"}, {})
    assert log.verify().intact

    # A change to anything the acknowledgement covers blocks again.
    lines = _lines(log)
    lines[0] = lines[0].replace("beat champion", "beat the champion")
    _write(log, lines)
    assert log.verify().problem == "entry 1 was edited: its content no longer matches its hash"


def test_nothing_to_acknowledge_on_an_intact_log(tmp_path):
    log = _log(tmp_path, 2)
    with pytest.raises(ValueError, match="verifies: nothing to acknowledge"):
        log.acknowledge("Ada", "just because")


def test_appends_from_many_threads_keep_one_chain(tmp_path):
    log = AuditLog(tmp_path / "deployment")

    def append(worker: int) -> None:
        for number in range(10):
            log.append("keep", {"version": f"{worker}.{number}"}, {}, by=f"worker {worker}")

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = log.verify()
    assert (found.intact, found.entries) == (True, 40)
    assert sorted(e["version"] for e in log.entries()) == sorted(
        f"{w}.{n}" for w in range(4) for n in range(10)
    )


def test_a_decision_appended_after_a_cut_keeps_the_cut_visible(tmp_path):
    log = _log(tmp_path)
    _write(log, _lines(log)[:-1])
    log.append("keep", {"version": "9"}, {})  # a decision that does not check the chain
    found = log.verify()
    assert not found.intact
    assert found.problem == "entry 4 does not match the head's hash: it was edited"
