"""Weight initialisations shared by networks and engines (torch only, no model zoo)."""
from __future__ import annotations

import torch
from torch import nn


def xavier_init(model: nn.Module, gain: float = 1.0) -> nn.Module:
    """The DD code's initialisation: Xavier-normal conv/linear weights (gain), zero biases."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_normal_(m.weight, gain=gain)
                if m.bias is not None:
                    m.bias.zero_()
    return model
