"""Profile switch and device helper."""
import pytest
import torch

import recon_lib as rl


def test_quick_is_the_default(monkeypatch):
    monkeypatch.delenv("RECON_PROFILE", raising=False)
    assert rl.profile() == "quick" and rl.pick(quick=1, full=2) == 1


def test_full_profile(monkeypatch):
    monkeypatch.setenv("RECON_PROFILE", "FULL")
    assert rl.pick(quick=1, full=2) == 2


def test_typo_in_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("RECON_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick"):
        rl.profile()


def test_device_is_cuda_exactly_when_available():
    assert rl.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_seed_everything_makes_runs_repeatable():
    rl.seed_everything(3)
    a = torch.rand(3)
    rl.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_progress_bar_honours_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert rl.progress_bar(range(3)).disable
    monkeypatch.setenv("TQDM_DISABLE", "")
    assert not rl.progress_bar(range(3), file=open("/dev/null", "w")).disable
    assert rl.progress_bar(range(3), enabled=False).disable


def test_intra_op_threads_restores_the_callers_setting():
    before = torch.get_num_threads()
    with rl.runtime.intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), rl.runtime.intra_op_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with rl.runtime.intra_op_threads(None):
        assert torch.get_num_threads() == before


def test_threads_for_small_cpu_problems_only():
    small, large = rl.runtime.SMALL_PROBLEM - 1, rl.runtime.SMALL_PROBLEM
    assert rl.runtime.threads_for(small) == 1 and rl.runtime.threads_for(small, "cpu") == 1
    assert rl.runtime.threads_for(large) is None
    assert rl.runtime.threads_for(small, "cuda") is None


def test_small_problem_uses_one_thread_and_native_convolutions_then_restores():
    before = (torch.get_num_threads(), torch.backends.mkldnn.enabled)
    with rl.runtime.small_problem(100):
        assert torch.get_num_threads() == 1 and not torch.backends.mkldnn.enabled
    assert (torch.get_num_threads(), torch.backends.mkldnn.enabled) == before
    with pytest.raises(RuntimeError), rl.runtime.small_problem(100):
        raise RuntimeError("boom")
    assert (torch.get_num_threads(), torch.backends.mkldnn.enabled) == before
    with rl.runtime.small_problem(rl.runtime.SMALL_PROBLEM):  # large: the caller's settings
        assert (torch.get_num_threads(), torch.backends.mkldnn.enabled) == before
