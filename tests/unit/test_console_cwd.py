"""A current folder deleted under the shell gives one line with the fix, not a FileNotFoundError traceback."""
from __future__ import annotations

import os

import pytest

from devstack.console import check_cwd
from devstack.errors import DevstackError


def test_a_deleted_current_folder_is_a_user_error(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.getcwd()
    os.chdir(gone)
    try:
        gone.rmdir()
        with pytest.raises(DevstackError) as err:
            check_cwd()
        assert "current folder no longer exists" in err.value.message and "cd" in err.value.message
        assert err.value.exit_code == 2
    finally:
        os.chdir(here)


def test_an_existing_folder_passes():
    check_cwd()
