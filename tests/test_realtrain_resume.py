"""Long real-data trainings (the coresets' selection networks, robustness's full-data networks) resume after an
interruption and end with the network an uninterrupted run makes."""
from __future__ import annotations

import pytest
import torch

from ddbench.data import load_dataset
from ddbench.data.space import ImageSpace
from ddbench.engine import realtrain
from ddbench.engine.realtrain import RealTrainRecipe, train_on_real
from ddbench.engine.resume import epochs_saved, recorded_training_seconds, seconds_saved

RECIPE = RealTrainRecipe(epochs=4, batch_size=256)  # digits: 5 steps per epoch


class Killed(Exception):
    pass


def _train(resume, killable, kill_at_step: int | None = None) -> tuple[torch.nn.Module | None, int]:
    """Train convnetd1 on digits (stopped at `kill_at_step` as a kill would stop it); (the network, SGD steps made)."""
    train = load_dataset("digits")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    return killable(lambda: train_on_real("convnetd1", train, space, RECIPE, 0, torch.device("cpu"), progress=False,
                                          resume=resume, resume_every_s=0.0), kill_at_step)


def test_an_interrupted_training_resumes_where_it_saved_and_ends_with_the_same_network(tmp_path, killable):
    reference, all_steps = _train(None, killable)
    state = tmp_path / "net.resume.pt"
    killed, done = _train(state, killable, kill_at_step=12)  # in the third epoch: two epochs saved
    assert killed is None and done == 12 and state.is_file()
    resumed, rest = _train(state, killable)
    assert all_steps == 20 and rest == 10  # epochs 3 and 4 only
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert not state.exists()  # a finished training leaves no resume file


def test_a_damaged_resume_file_is_trained_from_the_start(tmp_path, killable, caplog):
    state = tmp_path / "net.resume.pt"
    state.write_bytes(b"not a checkpoint")
    model, steps = _train(state, killable)
    assert model is not None and steps == 20 and "training from the start" in caplog.text and not state.exists()


def test_the_cached_network_resumes_through_its_own_file(tmp_path, monkeypatch):
    """cached_real_network names the resume file beside the network it will write, so a rerun finds it."""
    seen = {}

    def record(*args, **kwargs):
        seen["resume"] = kwargs["resume"]
        raise Killed

    monkeypatch.setattr(realtrain, "train_on_real", record)
    train = load_dataset("digits")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    path = realtrain.real_network_path("convnetd1", train, space, RECIPE, 0, tmp_path)
    with pytest.raises(Killed):
        realtrain.cached_real_network("convnetd1", train, space, RECIPE, 0, torch.device("cpu"), tmp_path, progress=False)
    assert seen["resume"] == path.with_name(path.stem + ".resume.pt")


def test_the_plan_prices_only_the_epochs_an_interrupted_training_has_left(tmp_path, killable):
    """A selection network killed after 2 of its 4 epochs is planned at half its steps and FLOPs, and says so."""
    from ddbench.distill.artefacts import selection_artefact

    train = load_dataset("digits")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    fresh = selection_artefact("convnetd1", train, space, RECIPE, 0, tmp_path)
    network = realtrain.real_network_path("convnetd1", train, space, RECIPE, 0, tmp_path)
    network.parent.mkdir(parents=True)
    _train(realtrain.resume_path(network), killable, kill_at_step=12)  # two epochs saved
    resumed = selection_artefact("convnetd1", train, space, RECIPE, 0, tmp_path)
    assert epochs_saved(realtrain.resume_path(network)) == 2 and fresh.steps == 20 and resumed.steps == 10
    assert resumed.flops == pytest.approx(fresh.flops / 2) and "resumes after 2 of 4 epochs" in resumed.label
    assert resumed.key == fresh.key  # the same task: only its price changed
    realtrain.resume_path(network).write_bytes(b"damaged")  # unreadable: priced as a training from the start
    assert selection_artefact("convnetd1", train, space, RECIPE, 0, tmp_path).steps == 20


def test_a_selection_network_records_its_training_seconds_the_interrupted_runs_included(tmp_path, killable):
    """The network file records its training time, with the seconds the killed runs had saved, and the selection
    task reads it back: a coreset's make cost then counts its selection network (it recorded nothing before)."""
    import time

    from ddbench.distill.artefacts import selection_artefact

    train = load_dataset("digits")
    space = ImageSpace(tuple(train.mean), tuple(train.std))
    network = realtrain.real_network_path("convnetd1", train, space, RECIPE, 0, tmp_path)
    network.parent.mkdir(parents=True)
    resume = realtrain.resume_path(network)
    _train(resume, killable, kill_at_step=12)  # two epochs saved
    state = torch.load(resume, weights_only=True)
    torch.save({**state, "seconds": 1000.0}, resume)  # the killed runs' time, made large enough to see
    assert seconds_saved(resume) == 1000.0 and selection_artefact("convnetd1", train, space, RECIPE, 0, tmp_path).seconds is None
    start = time.perf_counter()
    realtrain.cached_real_network("convnetd1", train, space, RECIPE, 0, torch.device("cpu"), tmp_path, progress=False)
    rest = time.perf_counter() - start
    recorded = recorded_training_seconds(network)
    assert recorded is not None and 1000.0 < recorded <= 1000.0 + rest
    assert selection_artefact("convnetd1", train, space, RECIPE, 0, tmp_path).seconds == pytest.approx(recorded)
