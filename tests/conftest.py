"""Shared fixtures: a private cache per test session, real data from ../shared/data, CPU options."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CARDS = Path(__file__).resolve().parent / "cards"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Keep the user's ~/.cache untouched; share one cache across the session (datasets, networks)."""
    cache = tmp_path_factory.mktemp("ddbench-cache")
    old = os.environ.get("DDBENCH_CACHE")
    os.environ["DDBENCH_CACHE"] = str(cache)
    os.environ.setdefault("DDBENCH_RESULTS", str(tmp_path_factory.mktemp("ddbench-results")))  # never the user's store
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield cache
    if old is None:
        os.environ.pop("DDBENCH_CACHE", None)
    else:
        os.environ["DDBENCH_CACHE"] = old


@pytest.fixture(autouse=True)
def restore_method_registry():
    """Methods a test registers (the README's class-means, test plug-ins) never leak into other tests."""
    from ddbench.distill.registry import registry_snapshot, restore_registry

    saved = registry_snapshot()
    yield
    restore_registry(saved)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist.npz").is_file():
        if os.environ.get("CI"):  # CI provides ../shared/data: a missing copy is a broken run, not a skip
            pytest.fail(f"real datasets not found at {SHARED_DATA}; CI must run beside ../shared/data")
        pytest.skip(f"real datasets not found at {SHARED_DATA} (CI provides ../shared/data)")
    return SHARED_DATA


@pytest.fixture
def card_ipc1():
    from ddbench.kinds import load_protocol

    return load_protocol(str(CARDS / "digits-ipc1.toml"))


@pytest.fixture
def opts(tmp_path):
    from ddbench.store.results import ResultStore
    from ddbench.sweep.evaluate import EvalOptions

    return EvalOptions(device=torch.device("cpu"), store=ResultStore(tmp_path / "lb"), progress=False)


class _Killed(Exception):
    """How `killable` stops a training, as a kill would."""


@pytest.fixture
def killable(monkeypatch):
    """`killable(fn, kill_at_step=None, optimizer=torch.optim.SGD)` calls fn() counting the steps of `optimizer`'s
    instances and stops it before step `kill_at_step` + 1 as a kill would; returns (fn's result, or None where it was
    stopped; the steps made)."""

    def run(fn, kill_at_step: int | None = None, optimizer: type = torch.optim.SGD):
        steps = 0
        original = optimizer.step

        def counted(self, *args, **kwargs):
            nonlocal steps
            if steps == kill_at_step:
                raise _Killed
            steps += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(optimizer, "step", counted)
        try:
            return fn(), steps
        except _Killed:
            return None, steps
        finally:
            monkeypatch.setattr(optimizer, "step", original)

    return run


@pytest.fixture
def killed_and_resumed(killable, monkeypatch):
    """`killed_and_resumed(method, card, train, opts, kill_at_step, optimizer=SGD)` distils once uninterrupted, then
    again from scratch stopped at `optimizer` step `kill_at_step` as a kill would (saving after every iteration) and once
    more, resuming; returns (the uninterrupted set, the resumed set, iterations saved at the kill, optimizer steps of the
    whole run and of the resumed part, the plan's distillation task at the kill)."""
    from ddbench.engine import resume
    from ddbench.engine.resume import epochs_saved
    from ddbench.sweep.build import build_distill_sweep
    from ddbench.sweep.evaluate import distill_cached, set_cache_path
    from ddbench.sweep.options import resume_path

    def run(method, card, train, opts, kill_at_step: int, optimizer: type = torch.optim.SGD):
        monkeypatch.setattr(resume, "RESUME_EVERY_S", 0.0)
        path = set_cache_path(method, card, train, 0, opts)
        path.unlink(missing_ok=True)
        resume_path(path).unlink(missing_ok=True)
        reference, all_steps = killable(lambda: distill_cached(method, card, train, 0, opts), None, optimizer)
        path.unlink()
        killed, _ = killable(lambda: distill_cached(method, card, train, 0, opts), kill_at_step, optimizer)
        assert killed is None and not path.exists()
        saved = epochs_saved(resume_path(path))
        task = next(t for t in build_distill_sweep(method, card, 0, opts).graph.tasks.values() if t.stage == "distill")
        resumed, rest = killable(lambda: distill_cached(method, card, train, 0, opts), None, optimizer)
        assert not resume_path(path).exists()  # a finished distillation leaves no resume file
        return reference, resumed, saved, all_steps, rest, task

    return run


BASELINES = ["random", "herding", "kcenter", "forgetting"]


@pytest.fixture(scope="session")
def ipc1_means(tmp_path_factory):
    """Mean accuracy of each baseline on the digits IPC 1 card (5 seeds, 300 epochs): shared by the
    baseline tests and by MTT's, whose bar is the best baseline, not its own starting point."""
    import statistics

    from ddbench.distill.registry import create_method
    from ddbench.kinds import load_protocol
    from ddbench.store.results import ResultStore
    from ddbench.sweep.evaluate import EvalOptions, evaluate_method

    card = load_protocol(str(CARDS / "digits-ipc1.toml"))
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(tmp_path_factory.mktemp("lb")), progress=False)
    means = {m: statistics.mean(r["accuracy"] for r in evaluate_method(create_method(m), card, opts)) for m in BASELINES}
    print(f"\ndigits IPC 1 baselines (mean over 5 seeds): {means}")
    return means


# Test tiers. `pytest -m "not slow"` is the developer's loop (under 3 minutes on 2 cores); CI runs everything.
# A test is slow when it needs one of the expensive shared fixtures (each trains many networks) or is listed here.
SLOW_FIXTURES = {"ipc1_means", "quick_results", "scores", "native_results", "mtt_and_init", "site", "browser"}
TIERS = {  # node id prefix -> markers
    "tests/test_ray.py": ("ray", "slow"),
    "tests/test_site.py": ("browser", "slow"),
    "tests/test_campaign.py::test_the_device_rehearsal_passes_offline": ("subprocess", "slow"),
    "tests/test_campaign.py::test_the_device_branch_sends_every_step_to_cuda_with_the_data_and_its_budget": ("subprocess",),
    "tests/test_campaign.py::test_steps_that_do_not_fit_the_budget_are_skipped_and_said": ("subprocess",),
    "tests/test_campaign.py::test_a_missing_optional_package_skips_its_step_with_a_reason": ("subprocess",),
    "tests/test_cli.py::test_interrupted_and_killed_runs_resume_without_loss_or_duplicates": ("subprocess", "slow"),
    "tests/test_cli.py::test_a_kill_during_distillation_keeps_the_finished_experts": ("subprocess", "slow"),
    "tests/test_cli.py::test_a_kill_after_the_teacher_keeps_it_and_the_rerun_trains_no_teacher": ("subprocess", "slow"),
    "tests/test_readme.py::test_first_readme_command_runs_the_main_job": ("subprocess", "slow"),
    "tests/test_trust.py::test_the_readme_first_command_never_writes_into_the_checkout": ("subprocess",),
    "tests/test_trust.py::test_verify_reproduces_a_digits_row_bitwise": ("slow",),
    "tests/test_crossarch.py::test_the_digits_cross_arch_card_produces_the_matrix": ("slow",),
    "tests/test_cheap_refusals.py::test_typos_are_refused_without_importing_the_model_zoo": ("subprocess",),
    "tests/test_clock.py": ("subprocess",),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(TIERS.get(item.nodeid, ())) | {m for prefix, marks in TIERS.items()
                                                     if item.nodeid.startswith(prefix + "::") for m in marks}
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            names.add("slow")
        for name in sorted(names):
            item.add_marker(getattr(pytest.mark, name))
