"""What every test of the suite shares: gearshift's own data folder is the session's, never the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gearshift.config._data_dir import HOME_ENV


@pytest.fixture(scope="session", autouse=True)
def _gearshift_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`$GEARSHIFT_HOME` in a temporary folder for the whole session, subprocesses included.

    Without it the suite wrote into the real user data folder: each Redis store's spend journal (and its
    lock) under `~/.local/share/gearshift/pending-spend`, a new pair for every test's store, kept there.
    A test about the folder itself sets its own with monkeypatch, as before.
    """
    saved = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(tmp_path_factory.mktemp("gearshift-home"))
    yield
    if saved is None:
        os.environ.pop(HOME_ENV, None)
    else:
        os.environ[HOME_ENV] = saved
