import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.files import FileStore, InvalidKey, LocalFileStore, StoredFile

ROOT = Path(__file__).resolve().parents[2]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_stores_bytes_under_their_content_hash(tmp_path):
    store = LocalFileStore(tmp_path)
    data = b"%PDF-1.4 pretend"
    sha = hashlib.sha256(data).hexdigest()

    stored = store.put(data, "application/pdf", "pdf")

    assert stored == StoredFile(
        key=f"{sha[:2]}/{sha[2:4]}/{sha}.pdf",
        sha256=sha,
        size=len(data),
        content_type="application/pdf",
    )
    assert store.exists(stored.key)
    assert store.open(stored.key) == data
    assert store.path(stored.key) == tmp_path.resolve() / sha[:2] / sha[2:4] / f"{sha}.pdf"
    assert (store.path(stored.key).stat().st_mode & 0o777) == 0o644


def test_second_put_of_same_bytes_is_a_noop_with_the_same_key(tmp_path):
    store = LocalFileStore(tmp_path)
    first = store.put(b"same bytes", "image/png", "png")
    before = store.path(first.key).stat()

    second = store.put(b"same bytes", "image/png", ".PNG")

    assert second == first
    after = store.path(first.key).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _files(tmp_path) == [store.path(first.key)]


def test_different_bytes_get_different_keys(tmp_path):
    store = LocalFileStore(tmp_path)
    assert store.put(b"a", "text/plain", "txt").key != store.put(b"b", "text/plain", "txt").key
    assert len(_files(tmp_path)) == 2


def test_truncated_file_under_a_key_is_repaired_by_the_next_put(tmp_path):
    store = LocalFileStore(tmp_path)
    stored = store.put(b"complete content", "text/plain", "txt")
    store.path(stored.key).write_bytes(b"compl")

    store.put(b"complete content", "text/plain", "txt")

    assert store.open(stored.key) == b"complete content"


def test_failed_write_leaves_neither_final_nor_temp_file(tmp_path, monkeypatch):
    store = LocalFileStore(tmp_path)

    def boom(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        store.put(b"data", "text/plain", "txt")
    assert _files(tmp_path) == []


def test_process_killed_mid_write_never_leaves_a_file_under_the_final_name(tmp_path):
    # The child is SIGKILLed right before the rename, after the bytes were written.
    child = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from core.files import LocalFileStore
        os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        LocalFileStore({str(tmp_path)!r}).put(b"x" * 100000, "text/plain", "txt")
    """)
    proc = subprocess.run([sys.executable, "-c", child], timeout=60)
    assert proc.returncode == -9

    store = LocalFileStore(tmp_path)
    sha = hashlib.sha256(b"x" * 100000).hexdigest()
    key = f"{sha[:2]}/{sha[2:4]}/{sha}.txt"
    assert not store.exists(key)
    assert all(p.name.startswith(".tmp-") for p in _files(tmp_path))

    assert store.put(b"x" * 100000, "text/plain", "txt").key == key
    assert store.open(key) == b"x" * 100000


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "/etc/passwd",
        "ab/../../x.pdf",
        "ab//x.pdf",
        "./x.pdf",
        "ab/.",
        "C:/x.pdf",
        "ab\\x.pdf",
        "",
        "ab/x\x00.pdf",
    ],
)
def test_keys_outside_the_store_are_rejected(tmp_path, key):
    store = LocalFileStore(tmp_path)
    with pytest.raises(InvalidKey):
        store.path(key)
    with pytest.raises(InvalidKey):
        store.open(key)
    with pytest.raises(InvalidKey):
        store.exists(key)


def test_symlinked_directory_cannot_escape_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    root = tmp_path / "store"
    root.mkdir()
    (root / "ab").symlink_to(outside)
    with pytest.raises(InvalidKey):
        LocalFileStore(root).open("ab/secret.txt")


@pytest.mark.parametrize("ext", ["", "p/ng", "../x", "a.b", "toolongextension"])
def test_bad_extensions_are_rejected(tmp_path, ext):
    with pytest.raises(ValueError):
        LocalFileStore(tmp_path).put(b"x", "text/plain", ext)


def test_open_missing_key_raises_file_not_found(tmp_path):
    store = LocalFileStore(tmp_path)
    with pytest.raises(FileNotFoundError):
        store.open("ab/cd/" + "ab" * 32 + ".pdf")


def test_local_store_satisfies_the_protocol(tmp_path):
    assert isinstance(LocalFileStore(tmp_path), FileStore)
