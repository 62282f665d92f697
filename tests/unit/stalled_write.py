"""A write(2) that stops halfway through its copy, as a preempted or throttled writer does.

The kernel copies a write's buffer into the file page by page while it holds the
file's lock; a reader that does not take that lock (ext4, tmpfs) sees the pages
copied so far. To stop a write at exactly that point, the second half of its
buffer is a page registered with userfaultfd and left missing: the copy faults
there and waits, lock held, until the test fills the page in.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PAGE = mmap.PAGESIZE
_SYSCALL = {"x86_64": 323, "aarch64": 282}  # userfaultfd(2)
_API, _FEATURES_NONE, _MODE_MISSING, _PAGEFAULT = 0xAA, 0, 1, 0x12


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (0xAA << 8) | nr


_UFFDIO_API, _UFFDIO_REGISTER, _UFFDIO_COPY = _iowr(0x3F, 24), _iowr(0x00, 32), _iowr(0x03, 40)
_libc = ctypes.CDLL(None, use_errno=True)


def _ioctl(fd: int, request: int, arg: ctypes.Array[ctypes.c_char]) -> None:
    if _libc.ioctl(fd, ctypes.c_ulong(request), arg) != 0:
        raise OSError(ctypes.get_errno(), "userfaultfd ioctl failed")


def _userfaultfd() -> int:
    number = _SYSCALL.get(platform.machine())
    fd = -1 if number is None else _libc.syscall(number, os.O_CLOEXEC)
    if fd < 0:  # kernel-mode faults need root or vm.unprivileged_userfaultfd=1
        pytest.skip(f"userfaultfd is not available here (errno {ctypes.get_errno()})")
    _ioctl(fd, _UFFDIO_API, ctypes.create_string_buffer(struct.pack("QQQ", _API, 0, 0), 24))
    return fd


@contextmanager
def stalled_write(path: str, first: bytes, rest: bytes) -> Iterator[threading.Event]:
    """Write ``first + rest`` over the start of *path* in one write(2) from a thread.

    On entry *first* (whole pages) is already in the file and the write is stopped
    inside the kernel before *rest* (one page); it goes on when the yielded event
    is set, or when the block exits. The file's lock is held all that time.
    """
    assert len(first) % PAGE == 0 and len(rest) == PAGE
    uffd = _userfaultfd()
    buffer = mmap.mmap(-1, len(first) + PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buffer[: len(first)] = first  # those pages are present; the last one stays missing
    base = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    missing = base + len(first)
    register = struct.pack("QQQQ", missing, PAGE, _MODE_MISSING, 0)
    _ioctl(uffd, _UFFDIO_REGISTER, ctypes.create_string_buffer(register, 32))
    release, stopped = threading.Event(), threading.Event()

    def serve_the_fault() -> None:
        msg = os.read(uffd, 32)
        assert msg[0] == _PAGEFAULT and struct.unpack_from("Q", msg, 16)[0] & ~(PAGE - 1) == missing
        stopped.set()
        release.wait()
        source = ctypes.create_string_buffer(rest, PAGE)
        copy = struct.pack("QQQQq", missing, ctypes.addressof(source), PAGE, 0, 0)
        _ioctl(uffd, _UFFDIO_COPY, ctypes.create_string_buffer(copy, 40))

    fd = os.open(path, os.O_WRONLY)
    server = threading.Thread(target=serve_the_fault)
    writer = threading.Thread(target=os.pwrite, args=(fd, buffer, 0))
    server.start()
    writer.start()
    try:
        assert stopped.wait(10), "the write never reached its missing page"
        yield release
    finally:
        release.set()
        server.join()
        writer.join()
        os.close(fd)
        os.close(uffd)


def set_when_blocked(event: threading.Event, thread: threading.Thread) -> threading.Thread:
    """Set *event* once *thread* sleeps uninterruptibly (waiting for a lock in the
    kernel), or after 10 s; the returned watcher is already started."""

    def watch() -> None:
        state = f"/proc/self/task/{thread.native_id}/stat"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and thread.is_alive():
            with open(state) as f:
                if f.read().rpartition(")")[2].split()[0] == "D":
                    break
        event.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher
