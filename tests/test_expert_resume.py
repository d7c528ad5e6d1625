"""Expert trajectories (MTT's, MKDT's) resume after an interruption: a killed expert goes on from its last saved epoch
and ends with the trajectory an uninterrupted run makes; the plan prices only its remaining epochs."""
from __future__ import annotations

import pytest
import torch

from ddbench.data import load_dataset
from ddbench.data.space import ImageSpace
from ddbench.distill.artefacts import expert_artefacts
from ddbench.engine import resume
from ddbench.engine.experts import ExpertRecipe, expert_bank, train_experts
from ddbench.engine.resume import epochs_saved

RECIPE = ExpertRecipe(epochs=4, dsa_strategy="color_crop_cutout_scale_rotate")  # digits: 5 steps per epoch


def _train(cache_dir, monkeypatch, killable, seed: int = 0, kill_at_step: int | None = None):
    """Train expert `seed` on digits into `cache_dir`, saving after every epoch (stopped at `kill_at_step` as a kill
    would stop it); (the bank, SGD steps made, the data, its space)."""
    train = load_dataset("digits")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    bank = expert_bank("convnetd1", train, space, RECIPE, cache_dir)
    monkeypatch.setattr(resume, "RESUME_EVERY_S", 0.0)
    _, steps = killable(lambda: train_experts(bank, [seed], 1, "convnetd1", train, space, RECIPE, torch.device("cpu"),
                                              progress=False), kill_at_step)
    return bank, steps, train, space


def test_a_killed_expert_goes_on_from_its_saved_epoch_and_ends_with_the_same_trajectory(tmp_path, monkeypatch, killable):
    reference, all_steps, *_ = _train(tmp_path / "plain", monkeypatch, killable)
    killed, done, *_ = _train(tmp_path / "killed", monkeypatch, killable, kill_at_step=12)  # in the third epoch: two saved
    assert killed.seeds() == [] and done == 12 and epochs_saved(killed.resume_path(0)) == 2
    resumed, rest, *_ = _train(tmp_path / "killed", monkeypatch, killable)
    assert all_steps == 20 and rest == 10  # epochs 3 and 4 only
    assert resumed.length(0) == reference.length(0) == 5  # the initialisation and 4 epochs, the replayed two included
    torch.testing.assert_close(resumed.snapshots(0, *range(5)), reference.snapshots(0, *range(5)), rtol=0, atol=0)
    assert not resumed.resume_path(0).exists()  # a finished expert leaves no resume file


def test_the_plan_prices_only_the_epochs_a_killed_expert_has_left(tmp_path, monkeypatch, killable):
    bank, _, train, space = _train(tmp_path, monkeypatch, killable, seed=1, kill_at_step=12)
    fresh, killed = expert_artefacts(2, "convnetd1", train, space, RECIPE, tmp_path)
    assert fresh.steps == 20 and killed.steps == 10 and killed.flops == pytest.approx(fresh.flops / 2)
    assert "resumes after 2 of 4 epochs" in killed.label and "resumes" not in fresh.label
    bank.resume_path(1).write_bytes(b"damaged")  # unreadable: priced, and trained, from the start
    assert expert_artefacts(2, "convnetd1", train, space, RECIPE, tmp_path)[1].steps == 20


def test_a_resume_file_that_fails_half_way_restores_nothing(tmp_path):
    from ddbench.engine.resume import ResumeFile, TensorState

    pixels, gen = torch.ones(3), torch.Generator().manual_seed(0)
    ResumeFile(tmp_path / "r.pt", every_s=0).save_parts_if_due(2, {"pixels": TensorState(pixels)}, [gen])
    fresh, gens = torch.zeros(3), [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    before = [g.get_state() for g in gens]
    # the pixels load, then the generators do not (two asked for, one saved): everything goes back
    assert ResumeFile(tmp_path / "r.pt").restore_parts({"pixels": TensorState(fresh)}, gens, torch.device("cpu")) == (0, {})
    assert torch.equal(fresh, torch.zeros(3)) and all(torch.equal(g.get_state(), b) for g, b in zip(gens, before))
    assert not (tmp_path / "r.pt").exists()


def test_a_resume_files_saved_epochs_are_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    """A plan asks a distillation's resume file for its saved iterations several times: one read per version, and a
    newer save (or the file's removal) is seen at once."""
    from ddbench.engine.resume import ResumeFile, TensorState

    reads = []
    monkeypatch.setattr(resume, "epochs_saved", lambda path: reads.append(path) or epochs_saved(path))
    file, pixels, gen = ResumeFile(tmp_path / "r.pt", every_s=0), torch.ones(3), torch.Generator().manual_seed(0)
    assert file.epochs_saved() == 0 and reads == []  # no file: nothing to read
    file.save_parts_if_due(2, {"pixels": TensorState(pixels)}, [gen])
    assert [file.epochs_saved() for _ in range(4)] == [2] * 4 and len(reads) == 1
    file.save_parts_if_due(5, {"pixels": TensorState(torch.ones(300))}, [gen])  # another size: new even within a tick
    assert file.epochs_saved() == 5 and len(reads) == 2
    file.path.unlink()
    assert file.epochs_saved() == 0
