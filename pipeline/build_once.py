"""
A file that several processes need and any of them could make, made once: named by a hash of everything it
is made from, made by one process under a lock while the others wait, written atomically, and reused by
every later process with the same inputs. adapt.py's merged vocabulary is one: run.sh starts an expand run
per budget and head recipe at once, and all of them learn the same merges on the same text.
"""
import contextlib
import hashlib
import json
import os


def inputs_key(inputs):
    """A short hash of a JSON-able description of everything a file is made from (lists keep their order)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def file_stamp(path):
    """A file as an input: its real path, size and modification time. Hashing gigabytes of text would cost
    much of what the cache saves; rewriting or replacing a file changes its time."""
    info = os.stat(path)
    return {"path": os.path.realpath(path), "bytes": info.st_size, "mtime_ns": info.st_mtime_ns}


def build_once(path, build, load, save):
    """(the object at path, True) if path exists; else (build(), False), saved at path by save(obj, path),
    which must write atomically (a temporary file, then a rename). Processes that ask for the same path at
    the same time build it once: one builds, the others wait, then load it."""
    if os.path.exists(path):  # no lock needed: an atomically written file is whole or absent
        return load(path), True
    with exclusive(path + ".lock", f"waiting for another process to build {path}"):
        if os.path.exists(path):
            return load(path), True
        obj = build()
        save(obj, path)
        return obj, False


@contextlib.contextmanager
def exclusive(lock_path, waiting_note):
    """An exclusive lock on lock_path (flock, which the kernel releases when its holder dies, so a killed
    build never blocks the next; the lock file itself stays, empty). Without fcntl (Windows) there is no
    lock: two processes may then both build, and the atomic write keeps the file whole either way."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    with open(lock_path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"note: {waiting_note}", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
