"""Model zoo: registry, torchvision manifests, anyconv layers everywhere, forward/backward vs torch's layers."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F

import anyconv
from anyconv.models import create_model, list_models, with_torch_layers

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFESTS = sorted(f[:-5] for f in os.listdir(os.path.join(HERE, "manifests")) if f.endswith(".json"))
API_NAMES = ["lenet5", "cifar_cnn", "mnist1d_cnn", "alexnet", "unet", "mobilenet_v2", "mobilenet_v3_small",
             "mobilenet_v3_large"] + [f"vgg{d}{b}" for d in (11, 13, 16, 19) for b in ("", "_bn")] + [
             f"resnet{d}" for d in (18, 34, 50, 101, 152)]
TORCH_LAYERS = (torch.nn.modules.conv._ConvNd, torch.nn.modules.pooling._MaxPoolNd, torch.nn.modules.pooling._AvgPoolNd,
                torch.nn.modules.pooling._AdaptiveAvgPoolNd, torch.nn.modules.pooling._AdaptiveMaxPoolNd)


def test_list_models_has_every_api_name():
    assert sorted(API_NAMES) == list_models()


def test_manifests_cover_every_torchvision_model():
    assert MANIFESTS == sorted(n for n in API_NAMES if n.startswith(("alexnet", "vgg", "resnet", "mobilenet")))


@pytest.mark.parametrize("name", MANIFESTS)
def test_state_dict_matches_torchvision_manifest(name):
    with open(os.path.join(HERE, "manifests", f"{name}.json")) as f:
        manifest = json.load(f)
    with torch.device("meta"):
        model = create_model(name)
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(manifest["state_dict"])  # same keys, same order
    assert got == manifest["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]


@pytest.mark.parametrize("name", API_NAMES)
def test_every_conv_and_pool_layer_is_anyconv_with_the_algorithm(name):
    with torch.device("meta"):
        model = create_model(name, algorithm="direct")
    layers = [m for m in model.modules() if isinstance(m, TORCH_LAYERS)]
    assert layers, name
    for m in layers:
        assert type(m).__module__.startswith("anyconv.nn"), (name, type(m))
        assert m.algorithm == "direct", (name, type(m))
    # the torch reference swaps every one of them back
    ref = with_torch_layers(model)
    assert all(type(m).__module__.startswith("torch.nn") for m in ref.modules() if isinstance(m, TORCH_LAYERS))


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="resnet18") as e:
        create_model("resnet17")
    assert "create_model" in str(e.value) and "resnet17" in str(e.value)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [({"in_channels": 0}, ValueError, "in_channels"), ({"num_classes": 2.5}, TypeError, "num_classes"),
     ({"algorithm": "nope"}, ValueError, "algorithm"), ({"bogus": 1}, TypeError, "bogus")],
)
def test_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        create_model("cifar_cnn", **kwargs)


def test_name_must_be_str():
    with pytest.raises(TypeError, match="name"):
        create_model(3)  # type: ignore[arg-type]


# (name, input shape, options): small inputs that every model accepts
SMALL = [
    ("lenet5", (2, 1, 28, 28), {}),
    ("cifar_cnn", (2, 3, 16, 16), {}),
    ("mnist1d_cnn", (3, 1, 40), {}),
    ("unet", (2, 1, 16, 16), {}),
    ("resnet18", (1, 3, 32, 32), {"num_classes": 7}),
    ("resnet50", (1, 3, 32, 32), {"num_classes": 7}),
    ("mobilenet_v2", (2, 3, 32, 32), {"num_classes": 7}),
    ("mobilenet_v3_small", (2, 3, 32, 32), {"num_classes": 7}),
    ("alexnet", (1, 3, 63, 63), {"num_classes": 7}),
]


@pytest.mark.parametrize("name, shape, opts", SMALL)
def test_forward_equals_torch_layers_float64(name, shape, opts):
    torch.manual_seed(0)
    model = create_model(name, in_channels=shape[1], **opts).double().eval()
    ref = with_torch_layers(model)
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        y, r = model(x), ref(x)
    assert y.shape == r.shape
    torch.testing.assert_close(y, r, rtol=1e-9, atol=1e-10 * max(1.0, r.abs().max().item()))


@pytest.mark.parametrize("name, shape", [("cifar_cnn", (4, 1, 16, 16)), ("mnist1d_cnn", (4, 1, 40)),
                                         ("unet", (2, 1, 8, 8)), ("mobilenet_v3_small", (2, 3, 32, 32))])
def test_gradients_equal_torch_layers_float64(name, shape):
    torch.manual_seed(1)
    model = create_model(name, in_channels=shape[1]).double().train()
    ref = with_torch_layers(model)
    x = torch.randn(shape, dtype=torch.float64)
    for m in (model, ref):
        torch.manual_seed(5)  # same dropout masks
        m.zero_grad()
        m(x).square().mean().backward()
    for (k, a), (_, b) in zip(model.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-11, msg=k)


def test_resnet_downsample_shortcut_against_hand_written_block():
    torch.manual_seed(2)
    model = create_model("resnet18").double().eval()
    block = model.layer2[0]  # 64 -> 128 channels, stride 2: needs the 1x1 conv shortcut
    assert model.layer1[0].downsample is None and block.downsample is not None
    for bn in (block.bn1, block.bn2, block.downsample[1]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 64, 8, 8, dtype=torch.float64)

    def bn(t, m):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    h = F.relu(bn(F.conv2d(x, block.conv1.weight, stride=2, padding=1), block.bn1))
    h = bn(F.conv2d(h, block.conv2.weight, padding=1), block.bn2)
    short = bn(F.conv2d(x, block.downsample[0].weight, stride=2), block.downsample[1])
    with torch.no_grad():
        torch.testing.assert_close(block(x), F.relu(h + short), rtol=1e-10, atol=1e-12)


def test_bottleneck_widths_and_stride_placement():
    with torch.device("meta"):
        m = create_model("resnet50")
    b = m.layer3[0]
    assert (b.conv1.stride, b.conv2.stride, b.conv3.stride) == ((1, 1), (2, 2), (1, 1))  # v1.5: stride in the 3x3
    assert b.downsample[0].stride == (2, 2) and b.downsample[0].out_channels == 1024


def test_depthwise_convs_use_groups():
    with torch.device("meta"):
        m = create_model("mobilenet_v2")
    dw = m.features[2].conv[1][0]
    assert dw.groups == dw.in_channels == dw.out_channels == 16 * 6  # expansion 6 of 16 channels


def test_published_small_model_sizes():
    # parameter counts written out by hand from the papers / the learning material's table
    count = anyconv.models.count_params
    assert count(create_model("mnist1d_cnn")) == (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)
    assert count(create_model("cifar_cnn")) == 896 + 64 + 18496 + 128 + 650
    assert count(create_model("lenet5")) == 156 + 2416 + 48120 + 10164 + 850


def test_model_outputs_and_input_errors():
    assert create_model("unet", num_classes=3)(torch.zeros(1, 1, 12, 12)).shape == (1, 3, 12, 12)
    with pytest.raises(ValueError, match="divisible by 4"):
        create_model("unet")(torch.zeros(1, 1, 10, 12))
    assert create_model("mnist1d_cnn")(torch.zeros(5, 40)).shape == (5, 10)  # (B, L) signals accepted
    with pytest.raises(ValueError, match="image_size"):
        create_model("lenet5", image_size=8)


def test_torchvision_state_dict_loads_into_anyconv_model():
    torch.manual_seed(3)
    src = with_torch_layers(create_model("resnet18", num_classes=4))  # a model on torch's layers
    dst = create_model("resnet18", num_classes=4)
    dst.load_state_dict(src.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst.eval()(x), src.eval()(x), rtol=1e-4, atol=1e-4)
