"""adapt.py's merged vocabulary, built once: cached by its inputs, reused when they are the same and rebuilt when
any changes, learned on a byte-capped sample, and built once when several processes ask at the same time
(pipeline/build_once.py), also when the process that was building it is killed."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import adapt
import tokenizer
from conftest import BASE_VOCAB, ROOT, base_docs, corpus
from pipeline import build_once, documents


@pytest.fixture
def texts(tmp_path):
    """Adapting text of two languages, one file each."""
    paths = {}
    for lang, script, seed in (("gr", "greek", 4), ("th", "thai", 5)):
        paths[lang] = str(tmp_path / f"{lang}.txt")
        with open(paths[lang], "w", encoding="utf-8") as f:
            f.write("\n\n".join(corpus(script, seed, 120, spaces=script != "thai")) + "\n")
    return paths


def test_the_same_inputs_reuse_it_and_any_other_input_builds_anew(base, texts, tmp_path, capsys):
    """Fails if cached_vocabulary rebuilds for the same inputs, or reuses a vocabulary built from other inputs."""
    cache = str(tmp_path / "cache")
    first = adapt.cached_vocabulary(base, texts, 200, 0, cache)
    assert "merged vocabulary: learned 200 new tokens" in capsys.readouterr().out
    again = adapt.cached_vocabulary(base, texts, 200, 0, cache)
    assert "merged vocabulary: reused" in capsys.readouterr().out
    assert again.fingerprint() == first.fingerprint()
    # what every run learned before, without the cache
    assert first.fingerprint() == adapt.extend_vocabulary(base, texts, 200, 0).fingerprint()
    assert len([f for f in os.listdir(cache) if f.endswith(".tiktoken")]) == 1

    def builds(*args):
        adapt.cached_vocabulary(*args, cache)
        return "learned" in capsys.readouterr().out

    assert builds(base, texts, 150, 0)  # other merges
    assert builds(base, texts, 200, 20_000)  # a sample (smaller than the text)
    assert builds(tokenizer.train(base_docs(), BASE_VOCAB - 10), texts, 200, 0)  # another base vocabulary
    assert builds(base, {"gr": texts["gr"]}, 200, 0)  # other languages
    with open(texts["th"], "a", encoding="utf-8") as f:
        f.write("\nกขค\n")  # the text changed
    assert builds(base, texts, 200, 0)
    assert not builds(base, texts, 200, 0)


def test_it_is_learned_on_an_even_sample_of_at_most_max_bytes(base, texts, monkeypatch):
    """Each language gives an equal share of the cap; 0 reads all the text. Fails if the cap is ignored."""
    seen = []
    monkeypatch.setattr(tokenizer, "extend", lambda base, docs, n_new: seen.append(list(docs)) or base)
    sizes = {lang: os.path.getsize(path) for lang, path in texts.items()}
    adapt.extend_vocabulary(base, texts, 10, 0)
    adapt.extend_vocabulary(base, texts, 10, min(sizes.values()))
    everything, sample = (sum(len(d.encode()) for d in docs) for docs in seen)
    assert everything > sum(sizes.values()) * 0.95 and sample <= min(sizes.values())
    of_file = [set(documents.read_documents(path)) for path in texts.values()]
    by_lang = [sum(len(d.encode()) for d in seen[1] if d in docs) for docs in of_file]
    assert all(0 < n <= min(sizes.values()) // 2 for n in by_lang), by_lang


def test_processes_asking_at_once_build_it_once(tmp_path, capsys):
    """While one builds, another waits for it and loads what it built. Fails without the lock (both build)."""
    path, builds, results = str(tmp_path / "thing.txt"), [], {}
    started = threading.Event()

    def build():
        builds.append(1)
        started.set()
        time.sleep(0.3)
        return "built"

    def save(obj, to):
        with documents.atomic_open(to) as f:
            f.write(obj)

    def ask(name):
        results[name] = build_once.build_once(path, build, lambda p: open(p).read(), save)

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    started.wait()
    ask("second")
    first.join()
    assert builds == [1] and results == {"first": ("built", False), "second": ("built", True)}
    assert "waiting for another process to build" in capsys.readouterr().out


def test_a_build_killed_midway_leaves_nothing_and_blocks_nothing(tmp_path):
    """The kernel drops a dead process's lock: the next process builds. Fails if the lock outlives its holder."""
    path = str(tmp_path / "thing.txt")
    script = (f"import sys, time; sys.path.insert(0, {ROOT!r}); from pipeline import build_once; "
              f"build_once.build_once({path!r}, lambda: time.sleep(3600), None, None)")
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        while not os.path.exists(path + ".lock") or not locked(path + ".lock"):
            assert time.time() < deadline and child.poll() is None, "the child never took the lock"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not locked(path + ".lock")  # else the build below would wait forever
    obj, reused = build_once.build_once(path, lambda: "x", lambda p: open(p).read(),
                                        lambda obj, to: open(to, "w").write(obj))
    assert (obj, reused) == ("x", False)
    assert sorted(os.listdir(tmp_path)) == ["thing.txt", "thing.txt.lock"]


def locked(lock_path):
    import fcntl

    with open(lock_path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
