"""BEARD's summary scores of one attacked network (Zhou et al., "BEARD: Benchmarking the Adversarial Robustness for
Dataset Distillation", arXiv 2411.09265): Robustness Ratio (RR), Attack Efficiency ratio (AE) and their weighted sum,
the Comprehensive Robustness-Efficiency Index (CREI), all in %.

The formulas are those of the authors' code (zhouzhengqd/BEARD, `Code/metrics/white_box/auto_metrics.py`, its default
`metrics_type = "beard"` and `alpha = 0.5`), applied to one network's clean accuracy and its accuracies and seconds
under each attack:

    RR   = 100 · (1 − (clean − mean attacked) / (clean − min attacked))     (0 when clean = min attacked)
    AE   = 100 · (mean attack s − clean s) / (max attack s − clean s)      (0 when max attack s = clean s)
    CREI = α · RR + (1 − α) · AE

BEARD pools targeted and untargeted FGSM, PGD, PGD-L2, C&W, DeepFool and AutoAttack; ddbench's cards run untargeted
FGSM, PGD and APGD-CE, so the scores share BEARD's definition but not its attack set, and AE, a ratio of wall times,
moves with the machine's load.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping

ALPHA = 0.5  # BEARD's default weight of RR in CREI


def robustness_ratio(clean: float, attacked: list[float]) -> float:
    """RR (%): where the attacked accuracies' mean lies between the worst attack's (0) and the clean accuracy (100)."""
    if not attacked:
        raise ValueError("RR needs at least one attacked accuracy")
    worst = min(attacked)
    if clean == worst:
        return 0.0
    return 100.0 * (1.0 - (clean - statistics.mean(attacked)) / (clean - worst))


def attack_efficiency(clean_seconds: float, attack_seconds: list[float]) -> float:
    """AE (%): where the attacks' mean time lies between the clean pass and the slowest attack."""
    if not attack_seconds:
        raise ValueError("AE needs at least one attack time")
    slowest = max(attack_seconds)
    if slowest == clean_seconds:
        return 0.0
    return 100.0 * (statistics.mean(attack_seconds) - clean_seconds) / (slowest - clean_seconds)


def crei(rr: float, ae: float, alpha: float = ALPHA) -> float:
    """CREI (%): α · RR + (1 − α) · AE."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return alpha * rr + (1.0 - alpha) * ae


def beard_scores(adversarial: Mapping) -> dict[str, float]:
    """RR, and AE and CREI where the clean pass was timed, from a row's `adversarial` field."""
    accuracy, seconds = adversarial["accuracy"], adversarial.get("seconds", {})
    attacks = [name for name in accuracy if name != "clean"]
    out = {"rr": robustness_ratio(accuracy["clean"], [accuracy[a] for a in attacks])}
    if "clean" in seconds and all(a in seconds for a in attacks):
        out["ae"] = attack_efficiency(seconds["clean"], [seconds[a] for a in attacks])
        out["crei"] = crei(out["rr"], out["ae"])
    return {k: round(v, 4) for k, v in out.items()}
