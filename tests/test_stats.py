"""Which differences are real: the statistics on hand-made rows with known answers, the leaderboard's columns and
`ddbench compare` over two stores."""
from __future__ import annotations

import math

import pytest

from ddbench.cli import main
from ddbench.kinds import load_protocol
from ddbench.publish import stats
from ddbench.publish.leaderboard import render
from ddbench.store.results import ResultStore
from ddbench.store.rows import ROW_SCHEMA, build_row

WINNER = [80.0, 81.0, 79.0, 80.5, 79.5]
LOSER = [a - 5 + d for a, d in zip(WINNER, [0.2, -0.1, 0.1, -0.2, 0.0])]  # 5 points worse on every seed
TIED = [a + d for a, d in zip(WINNER, [0.5, -0.5, 0.4, -0.4, 0.1])]  # the same up to seed noise


def _by_seed(values):
    return dict(enumerate(values))


def test_estimate_and_holm_on_known_numbers():
    e = stats.estimate([1, 2, 3, 4, 5])
    assert e.mean == 3 and e.std == pytest.approx(math.sqrt(2)) and e.n == 5
    assert (e.low, e.high) == pytest.approx((3 - 2.7764451 * math.sqrt(2.5) / math.sqrt(5), 3 + 2.7764451 * math.sqrt(2.5) / math.sqrt(5)))
    assert math.isnan(stats.estimate([4.0]).low)  # one seed: no interval
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_a_clear_winner_is_its_own_group_and_surely_best():
    p = stats.paired("a", "b", _by_seed(WINNER), _by_seed(LOSER))
    assert p.n == 5 and p.diff == pytest.approx(5.0) and p.low > 4.5 and p.high < 5.5 and p.p_t < 1e-4
    assert p.p_a_better == 1.0
    ranking = stats.rank({"a": _by_seed(WINNER), "b": _by_seed(LOSER)})
    assert ranking.order == ["a", "b"] and ranking.group == {"a": 1, "b": 2} and ranking.p_best == {"a": 1.0, "b": 0.0}


def test_a_tie_within_noise_shares_the_group_and_the_probability():
    p = stats.paired("a", "c", _by_seed(WINNER), _by_seed(TIED))
    assert p.low < 0 < p.high and p.p_t > 0.5
    ranking = stats.rank({"a": _by_seed(WINNER), "c": _by_seed(TIED), "b": _by_seed(LOSER)})
    assert ranking.group == {"c": 1, "a": 1, "b": 2}
    assert 0.2 < ranking.p_best["a"] < 0.8 and 0.2 < ranking.p_best["c"] < 0.8 and ranking.p_best["b"] == 0.0


def test_pairing_uses_only_the_shared_seeds():
    p = stats.paired("a", "b", {0: 10.0, 1: 12.0, 2: 11.0}, {1: 11.0, 2: 10.0, 7: 0.0})
    assert p.n == 2 and p.diff == pytest.approx(1.0)


def test_verdicts_inside_and_outside_the_interval_and_other_recipes():
    ours = stats.estimate(WINNER)  # 80.0 ± 0.71, CI about [78.8, 81.2]
    assert stats.verdict(ours, 80.9, same_recipe=True) == stats.REPRODUCED  # inside the CI
    assert stats.verdict(ours, 81.0, same_recipe=True) == stats.REPRODUCED  # within max(1 std, 1 point)
    assert stats.verdict(ours, 83.0, same_recipe=True) == stats.NOT_REPRODUCED
    assert stats.verdict(ours, 80.0, same_recipe=False) == stats.OTHER_RECIPE


def _rows(card, method: str, values: list[float]) -> list[dict]:
    return [build_row(schema=ROW_SCHEMA, method=method, method_config={}, run_id=f"cfg-{method}", set_id=f"{method}{s}",
                      distill_seed=s, protocol=card.id, protocol_version=card.version, protocol_hash=card.hash,
                      protocol_standard=True, dataset=card.dataset, ipc=card.ipc, arch="convnet", seed=s, accuracy=v, n_test=10000,
                      ddbench_version="0", git_sha="x", torch_version="t", device="cpu", wall_time_s=1.0, peak_mem_mb=1.0,
                      timestamp="now", precision="fp32")
            for s, v in enumerate(values)]


def test_compare_reads_two_stores_and_the_leaderboard_shows_groups_and_verdicts(tmp_path, capsys):
    card = load_protocol("mnist-ipc10")
    ResultStore(tmp_path / "one").append(_rows(card, "herding", WINNER))
    ResultStore(tmp_path / "two").append(_rows(card, "random", LOSER))
    assert main(["compare", "herding", "random", "--protocol", "mnist-ipc10", "--results", str(tmp_path / "one"),
                 str(tmp_path / "two")]) == 0
    out = capsys.readouterr().out
    assert "herding − random: +5.00 points over 5 shared seed(s)" in out and "a real difference at 5%" in out
    assert main(["compare", "herding", "kcenter", "--protocol", "mnist-ipc10", "--results", str(tmp_path / "one")]) == 2
    assert "no standard rows of 'kcenter'" in capsys.readouterr().err
    both = ResultStore(tmp_path / "both")
    both.append(_rows(card, "herding", WINNER) + _rows(card, "random", LOSER))
    text = render(both)
    line = {r.split("|")[2].strip(): [c.strip() for c in r.split("|")] for r in text.splitlines() if "| convnet" in r}
    assert line["herding"][6:8] == ["1", "1.00"] and line["random"][6:8] == ["2", "0.00"]  # group, P(best)
    assert "other recipe" in line["random"][9]  # DC's published random number used DC's own recipe
