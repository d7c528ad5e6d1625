"""`ddbench compare A B --protocol P`: the paired comparison of two methods' standard rows on one card."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ddbench.cards.card import ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.publish import stats
from ddbench.publish.leaderboard import current_rows, per_seed
from ddbench.store.results import ResultStore


@dataclass(frozen=True)
class Comparison:
    card: ProtocolCard
    arch: str
    a: stats.Estimate
    b: stats.Estimate
    paired: stats.Paired

    def lines(self) -> list[str]:
        p = self.paired
        out = [f"{self.card.id} ({self.arch}), card v{self.card.version} {self.card.hash}:"]
        for name, e in ((p.a, self.a), (p.b, self.b)):
            ci = f"95% CI [{e.low:.2f}, {e.high:.2f}]" if e.n >= 2 else "one seed: no CI"
            out.append(f"  {name}: {e.mean:.2f} ± {e.std:.2f} over {e.n} seed(s), {ci}")
        out.append(f"  {p.line()}" if p.n else f"  {p.a} and {p.b} share no evaluation seed: no paired test")
        if p.n >= 2:
            significant = p.p_t < stats.ALPHA
            out.append(f"  {'a real difference' if significant else 'tied within noise'} at 5% (paired t over shared seeds)")
        return out


def _method_seeds(seeds: dict[tuple, dict[int, float]], card: ProtocolCard, method: str, arch: str) -> dict[int, float]:
    name, _, run = method.partition("@")
    runs = {k: v for k, v in seeds.items() if k[0] == card.id and k[1] == name and k[3] == arch and k[4] == ""
            and (not run or k[2] == run)}
    if not runs:
        raise DDBenchError(f"no standard rows of '{name}' on card '{card.id}' ({arch}) in the given store(s)")
    if len(runs) > 1:
        ids = ", ".join(sorted(k[2] for k in runs))
        raise DDBenchError(f"'{name}' has several runs on '{card.id}' ({ids}); name one as {name}@RUN")
    return next(iter(runs.values()))


def compare(stores: list[ResultStore], card: ProtocolCard, a: str, b: str, arch: str | None = None) -> Comparison:
    """The paired comparison of methods `a` and `b` (a name, or NAME@RUN_ID) on `card`, from one or more stores."""
    rows: list[dict[str, Any]] = []
    for store in stores:
        if not store.path.is_file():
            raise DDBenchError(f"no result store at {store.path}")
        rows += current_rows(store)[0]
    arch = arch or card.archs[0]
    seeds = per_seed([r for r in rows if (r.get("precision") or "fp32") == card.precision])
    sa, sb = _method_seeds(seeds, card, a, arch), _method_seeds(seeds, card, b, arch)
    return Comparison(card, arch, stats.estimate(list(sa.values())), stats.estimate(list(sb.values())),
                      stats.paired(a, b, sa, sb))
