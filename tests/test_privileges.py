"""Under sudo, rustkm works in the invoking user's cache and hands it back to them; a cache the
user cannot write is a clear error, not a PermissionError traceback."""

from __future__ import annotations

import os
import pwd

import pytest

from rustkm.cache import cache_root, hand_over
from rustkm.errors import RustkmError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as sudo does")


@needs_root
def test_under_sudo_the_cache_is_the_invoking_users(monkeypatch, tmp_path):
    real = pwd.getpwnam("nobody")
    home = tmp_path / "home"
    user = pwd.struct_passwd((real.pw_name, "x", real.pw_uid, real.pw_gid, "", str(home),
                              "/bin/sh"))
    monkeypatch.setattr(pwd, "getpwnam", lambda name: user)
    monkeypatch.delenv("RUSTKM_CACHE", raising=False)
    monkeypatch.setenv("SUDO_USER", "nobody")
    assert cache_root() == (home / ".cache" / "rustkm").resolve()


@needs_root
def test_what_root_made_is_handed_to_the_user_but_the_root_filesystem(tmp_path):
    user = pwd.getpwnam("nobody")
    (tmp_path / "store" / "kernels" / "k").mkdir(parents=True)
    (tmp_path / "store" / "kernels" / "k" / "vmlinux").write_bytes(b"x")
    rootfs = tmp_path / "toolchain" / "trixie" / "root" / "usr"
    rootfs.mkdir(parents=True)
    (rootfs / "rustc").write_bytes(b"x")
    (tmp_path / "toolchain" / "trixie" / "complete").write_text("")
    hand_over(tmp_path, user.pw_uid, user.pw_gid)
    assert (tmp_path / "store" / "kernels" / "k" / "vmlinux").stat().st_uid == user.pw_uid
    assert (tmp_path / "toolchain" / "trixie" / "complete").stat().st_uid == user.pw_uid
    assert (tmp_path / "toolchain" / "trixie" / "root").stat().st_uid == 0
    assert (rootfs / "rustc").stat().st_uid == 0


@needs_root
def test_a_cache_the_user_cannot_write_is_a_clear_error(tmp_path):
    cache = tmp_path / "cache"
    (cache / "store").mkdir(parents=True)
    tmp_path.chmod(0o755)
    user = pwd.getpwnam("nobody")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # as the user, with this interpreter (the venv may be root's alone)
        os.close(read)
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.environ["RUSTKM_CACHE"] = str(cache)
        try:
            cache_root()
            message = b"no error"
        except RustkmError as e:
            message = str(e).encode()
        except BaseException as e:  # noqa: BLE001 (reported to the parent)
            message = repr(e).encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        message = answer.read().decode()
    os.waitpid(child, 0)
    assert "is not writable by this user" in message and "chown" in message


def test_the_sandbox_is_read_only_with_a_minimal_dev():
    from rustkm.toolchain import ensure_toolchain

    tc = ensure_toolchain()
    out = tc.run(["sh", "-c", "touch /usr/x 2>&1; ls /dev"], check=False).stdout
    assert "Read-only file system" in out
    assert "sda" not in out and "vda" not in out and "null" in out


def test_cache_root_error_is_a_rustkm_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("RUSTKM_CACHE", str(blocker / "cache"))
    with pytest.raises((RustkmError, OSError)):
        cache_root()
