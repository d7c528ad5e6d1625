"""Protocol kinds: what a card's `kind` means, one registered class each.

- `supervised` (ddbench.kinds.supervised): train fresh networks on the set with the card's recipe, test on the real test split.
- `dd-native` (ddbench.kinds.dd_native): Dataset Distillation's own regime, the set's learned steps.
- `ssl-transfer` (ddbench.kinds.ssl_transfer): pre-train an encoder on the set, probe it on downstream sets.
- `adversarial` (ddbench.kinds.adversarial): the supervised networks, attacked with FGSM, PGD and APGD-CE.
- `privacy` (ddbench.kinds.privacy): the supervised networks, under membership inference.

The interface and the registry live in ddbench.kinds.base; importing this package registers the built-in kinds.
"""
from ddbench.kinds.adversarial import Adversarial
from ddbench.kinds.base import (
                                KINDS,
                                Emit,
                                EvalJob,
                                ProtocolKind,
                                Runtime,
                                base_row,
                                check_fits,
                                get_kind,
                                kind_names,
                                load_protocol,
                                make_row,
                                register_kind,
)
from ddbench.kinds.dd_native import DDNative
from ddbench.kinds.privacy import Privacy
from ddbench.kinds.ssl_transfer import SSLTransfer
from ddbench.kinds.supervised import Supervised, training_space

__all__ = ["KINDS", "Adversarial", "DDNative", "Privacy", "EvalJob", "Emit", "ProtocolKind", "Runtime", "SSLTransfer",
           "Supervised", "base_row",
           "check_fits", "get_kind", "kind_names", "load_protocol", "make_row", "register_kind", "training_space"]
