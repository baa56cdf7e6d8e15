"""Machine errors a user meets are said as one sentence naming the cause and the remedy."""

import errno
import sqlite3
from pathlib import Path

from mlops_assets.known_errors import explain, explain_exception


def test_a_locked_state_folder_says_another_command_is_writing(tmp_path):
    error = sqlite3.OperationalError("database is locked")
    assert explain_exception(error, tmp_path) == (
        f"another command is writing to the state folder {tmp_path} at the same time (SQLite: "
        "database is locked): let it finish, then run this command again"
    )


def test_a_full_disk_is_found_inside_the_error_chain(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
        except OSError as inner:
            raise RuntimeError("could not publish the batch") from inner
    except RuntimeError as outer:
        sentence = explain_exception(outer, tmp_path)
    assert sentence is not None
    assert sentence.startswith(f"The disk holding the state folder {tmp_path} is full (")
    assert sentence.endswith(
        "): free some space there or point MLOPS_HOME at a larger disk, then run the "
        "command again; what was published before is kept as it was."
    )


def test_an_io_error_with_room_on_the_disk_is_not_called_a_full_disk(tmp_path):
    sentence = explain("sqlite3.OperationalError: disk I/O error", tmp_path)
    assert sentence == (
        f"a write to the state folder {tmp_path} failed (sqlite3.OperationalError: disk I/O "
        "error): check that its disk is healthy and has room, then run the command again"
    )


def test_a_server_that_does_not_answer_and_an_unknown_error():
    assert explain("psycopg2.OperationalError: connection refused") == (
        "a server the platform needs did not answer (psycopg2.OperationalError: connection "
        "refused): start it, or correct its address in the profile's settings, then run the "
        "command again"
    )
    assert explain("KeyError: 'price'", Path("/nowhere")) is None
