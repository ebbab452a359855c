"""pipeline/runtime.py's first-run guards: --deterministic on a torch without inductor's deterministic switch,
and device=auto on a machine whose NVIDIA GPU this torch cannot use."""

import os
import shutil

import pytest
import torch

from conftest import ROOT
from pipeline import runtime


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
