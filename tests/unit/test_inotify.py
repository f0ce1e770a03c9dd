"""The inotify limit: which file sets it, how many watches the reloader's targets take."""
from __future__ import annotations

from devstack.reload.inotify import over_limit, watch_limit, watches_needed


def test_the_smaller_limit_applies_and_unreadable_files_are_skipped(tmp_path):
    system, user = tmp_path / "system", tmp_path / "user"
    system.write_text("8192\n")
    user.write_text("100\n")
    files = ((system, "fs.inotify.max_user_watches"), (user, "user.max_inotify_watches"),
             (tmp_path / "missing", "a.missing.one"))
    assert watch_limit(files) == (100, "user.max_inotify_watches")
    assert watch_limit(files[2:]) is None


def test_a_deep_folder_counts_every_folder_below_it(tmp_path):
    for name in ("a/b/c", "a/x", "__pycache__"):
        (tmp_path / "src" / name).mkdir(parents=True)  # the recursive watch skips nothing
    flat = [tmp_path, tmp_path / "conf"]
    assert watches_needed(flat, [tmp_path / "src"], 1000) == 2 + 6  # src, a, b, c, x, __pycache__
    assert watches_needed(flat, [tmp_path / "src"], 3) == 4  # stops past the limit


def test_over_the_limit_says_the_file_the_value_and_the_fix(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    limit = tmp_path / "max_user_watches"
    limit.write_text("2\n")
    why = over_limit([tmp_path], [tmp_path / "src"], ((limit, "fs.inotify.max_user_watches"),))
    assert "above the inotify limit (fs.inotify.max_user_watches = 2): watching by polling instead" in why
    assert "sudo sysctl --system" in why and "watch_ignore" in why
    limit.write_text("3\n")
    assert over_limit([tmp_path], [tmp_path / "src"], ((limit, "fs.inotify.max_user_watches"),)) is None
