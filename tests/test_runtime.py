"""pipeline/runtime.py's first-run guards: --deterministic on a torch without inductor's deterministic switch,
device=auto on a machine whose NVIDIA GPU this torch cannot use, and out_dir's hygiene (a killed save's
temporary file removed, the folder synced after a rename, the log rewritten atomically on resume)."""

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from pipeline import documents, runtime


class OldInductorConfig:
    """torch._inductor.config as torch 2.5-2.9 has it: no `deterministic`, and setting a key it lacks raises,
    as torch's config module does."""

    def __setattr__(self, name, value):
        raise AttributeError(f"torch._inductor.config.{name} does not exist")


def test_deterministic_works_on_a_torch_without_inductors_switch(monkeypatch, capsys):
    """Fails if set_deterministic sets inductor_config.deterministic unguarded (AttributeError on torch < 2.10)."""
    import torch._inductor

    monkeypatch.setattr(torch._inductor, "config", OldInductorConfig())
    # torch 2.5-2.9's switch, which did not touch inductor (2.10's sets inductor's deterministic itself)
    monkeypatch.setattr(torch, "use_deterministic_algorithms",
                        lambda mode, warn_only=False: torch._C._set_deterministic_algorithms(mode, warn_only=warn_only))
    try:
        runtime.set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert "--compile=false" in capsys.readouterr().err  # says what still varies, and the way out
    finally:
        runtime.set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled() and not capsys.readouterr().err


@pytest.fixture
def gpu_host_without_cuda(monkeypatch):
    """A machine with an NVIDIA driver (nvidia-smi on the PATH) where torch.cuda.is_available() is False."""
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else which(name))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("cuda_build", ["13.0", None])
def test_auto_device_on_a_gpu_host_torch_cannot_use_warns_and_names_the_fix(gpu_host_without_cuda, monkeypatch,
                                                                            capsys, cuda_build):
    """Fails if resolve_device('auto') falls back to the CPU silently."""
    monkeypatch.setattr(torch.version, "cuda", cuda_build)
    assert runtime.resolve_device("auto") == "cpu"
    err = capsys.readouterr().err
    assert err.startswith("warning: an NVIDIA GPU is present") and err.count("\n") == 1, err
    # a CUDA build on an old driver: the README's install line for older drivers; a CPU build: the default build
    assert (runtime.OLDER_DRIVER_INSTALL in err) == (cuda_build is not None)
    assert ("CPU-only build" in err) == (cuda_build is None)
    with pytest.raises(SystemExit, match="driver may be too old" if cuda_build else "CPU-only"):
        runtime.resolve_device("cuda")


def test_the_warnings_install_line_is_the_readmes():
    """The line the warning prints is the one the README's "Two commands" section gives for older drivers."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert f"`{runtime.OLDER_DRIVER_INSTALL}`" in section


def test_auto_device_without_any_nvidia_gpu_says_nothing(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os.path, "exists", lambda path: False if path == "/proc/driver/nvidia" else True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.resolve_device("auto") == "cpu"
    assert capsys.readouterr().err == ""


# ---- out_dir hygiene: stale temporaries, durable renames, the log rewritten atomically -----------------

def dead_pid():
    """The id of a process that has exited (reused only after the kernel cycles through every other id)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_new_or_resumed_run_removes_the_temporaries_of_killed_saves(tmp_path, capsys):
    """Fails if prepare_out_dir leaves a killed save's ckpt.pt.<pid>.tmp (or removes a live process's)."""
    import train

    stale, live = tmp_path / f"ckpt.pt.{dead_pid()}.tmp", tmp_path / f"log.jsonl.{os.getppid()}.tmp"
    stale.write_bytes(b"x" * 1000)
    live.write_bytes(b"y")
    runtime.prepare_out_dir(str(tmp_path), train.TrainConfig(out_dir=str(tmp_path)), "train")
    assert not stale.exists() and live.exists()
    assert f"removed {stale}" in capsys.readouterr().out


def test_an_atomic_write_syncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    """Fails if atomic_open does not fsync the folder once the file has its name (the rename could be lost)."""
    events, real_replace, real_fsync = [], os.replace, os.fsync
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("rename", b)), real_replace(a, b)))

    def fsync(fd):
        events.append(("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file", os.fstat(fd).st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with documents.atomic_open(str(tmp_path / "a.txt")) as f:
        f.write("text")
    assert [e[0] for e in events] == ["fsync file", "rename", "fsync folder"]
    assert events[-1][1] == os.stat(tmp_path).st_ino


def test_the_log_is_rewritten_atomically_on_resume(tmp_path, monkeypatch):
    """A crash while the resumed run rewrites log.jsonl leaves the old log whole. Fails if Log rewrites it in
    place (open(path, "w"))."""
    path = tmp_path / "log.jsonl"
    old = "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(6))
    path.write_text(old)
    real = runtime.atomic_open

    @contextlib.contextmanager
    def crashing(target, mode="w"):  # the disk fills up after the first line
        with real(target, mode) as f:
            class HalfWritten:
                def writelines(self, lines):
                    f.write(lines[0])
                    raise OSError("no space left on device")
            yield HalfWritten()

    monkeypatch.setattr(runtime, "atomic_open", crashing)
    with pytest.raises(OSError):
        runtime.Log(str(tmp_path), resume_step=3)
    assert path.read_text() == old and os.listdir(tmp_path) == ["log.jsonl"]
    monkeypatch.setattr(runtime, "atomic_open", real)
    runtime.Log(str(tmp_path), resume_step=3)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [0, 1, 2]
