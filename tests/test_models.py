"""Architectures: the ConvNet family in timm's registry, small-input adaptation, wildcard expansion."""
from __future__ import annotations

import pytest
import timm
import torch

from ddbench.core.errors import DDBenchError
from ddbench.models import TESTED_ARCHS, create_network, expand_archs

SIZES = [(1, 8), (1, 28), (3, 32), (3, 64)]
HEAVY = {"resnet50", "vit_small_patch16_224", "efficientnet_b0", "resnet34", "convnetw512"}


@pytest.mark.parametrize("arch", sorted(TESTED_ARCHS))
def test_tested_archs_build_and_train_a_step(arch):
    """Everything `ddbench list archs` advertises builds, runs forward and backward at its sizes."""
    for channels, size in SIZES:
        tested = TESTED_ARCHS[arch]
        if not tested.min_px <= size <= tested.max_px or (arch in HEAVY and size == 64):
            continue
        model = create_network(arch, num_classes=7, in_chans=channels, img_size=size)
        out = model(torch.randn(2, channels, size, size))
        assert out.shape == (2, 7)
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_convnet_matches_the_field():
    model = timm.create_model("convnet", num_classes=10, in_chans=3, img_size=32)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(convs) == 3 and all(c.out_channels == 128 and c.kernel_size == (3, 3) for c in convs)
    assert all(n.num_groups == n.num_channels == 128 for n in norms)  # instance norm as GroupNorm(C, C)
    assert model.classifier.in_features == 128 * 4 * 4
    mnist = create_network("convnet", 10, 1, 28)
    assert mnist.features[0].padding == (3, 3) and mnist.classifier.in_features == 128 * 4 * 4
    tiny = create_network("convnetd4", 200, 3, 64)
    assert tiny.classifier.in_features == 128 * 4 * 4


def test_resnet_gets_a_small_input_stem():
    model = create_network("resnet18", 10, 3, 32)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_expand_archs_wildcards_and_lists():
    names = expand_archs("convnet*,resnet18")
    assert names[-1] == "resnet18" and "convnetd4" in names and "convnet" in names
    assert expand_archs(["convnet", "convnet"]) == ["convnet"]
    with pytest.raises(DDBenchError, match="unknown architecture 'convnot'"):
        expand_archs("convnot")
    with pytest.raises(DDBenchError, match="matches no architecture"):
        expand_archs("zzz*")



def test_wildcards_match_tested_archs_and_collapse_image_size_twins():
    """'vit_tiny*' once meant five timm models, two of them the same network after img_size adaptation."""
    assert expand_archs("vit_tiny*") == ["vit_tiny_patch16_224"]
    everything = expand_archs("timm:vit_tiny*")  # all of timm, on request
    assert "vit_tiny_patch16_224" in everything and "vit_tiny_patch16_384" not in everything and len(everything) > 1
    assert expand_archs("vit_tiny_patch16_224,vit_tiny_patch16_384") == ["vit_tiny_patch16_224"]
    with pytest.raises(DDBenchError, match="use 'timm:resnet1"):
        expand_archs("resnet1[0-9][0-9]")  # no tested match: the message names the way to all of timm


def test_arch_too_deep_for_input_is_a_clear_error():
    with pytest.raises(DDBenchError, match="does not fit"):
        create_network("convnetd4", 10, 1, 8)


@pytest.mark.parametrize("arch, chans, size, classes, params", [
    ("resnet18_dc", 3, 32, 10, 11173962), ("resnet18_dc", 1, 28, 10, 11172810),
    ("vgg11_dc", 3, 32, 10, 9231114), ("vgg11_dc", 1, 28, 10, 9229962), ("vgg11_dc", 3, 32, 100, 9277284),
    ("alexnet_dc", 3, 32, 10, 1872202), ("alexnet_dc", 1, 28, 10, 1865802), ("alexnet_dc", 3, 32, 100, 2148772)])
def test_cross_arch_networks_match_the_dc_mtt_code(arch, chans, size, classes, params):
    """Parameter counts of MTT's networks.py (ResNet18, VGG11, AlexNet), read off that code on 2026-12-01,
    where the same weights also gave the same outputs; instance norm throughout ResNet and VGG."""
    model = create_network(arch, classes, chans, size)
    assert sum(p.numel() for p in model.parameters()) == params
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    if arch != "alexnet_dc":
        assert all(n.num_groups == n.num_channels for n in model.modules() if isinstance(n, torch.nn.GroupNorm))
