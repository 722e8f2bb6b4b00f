"""Write the torchvision state_dict manifests (``<model>.json``: key -> shape, published parameter count).

The keys and shapes are written from torchvision's architecture definitions
(``torchvision/models/{alexnet,vgg,resnet,mobilenetv2,mobilenetv3}.py``), independently of
anyconv's model code; the parameter counts are the ones torchvision publishes in its weight
tables (``num_params`` of ``*_Weights.IMAGENET1K_V1``). Run ``python tests/manifests/generate.py``.
"""

from __future__ import annotations

import json
import os

PUBLISHED = {
    "alexnet": 61100840, "vgg11": 132863336, "vgg11_bn": 132868840, "vgg13": 133047848, "vgg13_bn": 133053736,
    "vgg16": 138357544, "vgg16_bn": 138365992, "vgg19": 143667240, "vgg19_bn": 143678248,
    "resnet18": 11689512, "resnet34": 21797672, "resnet50": 25557032, "resnet101": 44549160,
    "resnet152": 60192808, "mobilenet_v2": 3504872, "mobilenet_v3_small": 2542856, "mobilenet_v3_large": 5483032,
}


class Keys(dict):  # key -> shape
    def conv(self, p: str, cin: int, cout: int, k: int, groups: int = 1, bias: bool = True) -> None:
        self[f"{p}.weight"] = [cout, cin // groups, k, k]
        if bias:
            self[f"{p}.bias"] = [cout]

    def bn(self, p: str, c: int) -> None:
        for n in ("weight", "bias", "running_mean", "running_var"):
            self[f"{p}.{n}"] = [c]
        self[f"{p}.num_batches_tracked"] = []

    def linear(self, p: str, i: int, o: int) -> None:
        self[f"{p}.weight"] = [o, i]
        self[f"{p}.bias"] = [o]


def alexnet() -> Keys:
    k = Keys()
    for i, (a, b, s) in zip((0, 3, 6, 8, 10), ((3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3))):
        k.conv(f"features.{i}", a, b, s)
    k.linear("classifier.1", 9216, 4096)
    k.linear("classifier.4", 4096, 4096)
    k.linear("classifier.6", 4096, 1000)
    return k


VGG = {11: "64 M 128 M 256 256 M 512 512 M 512 512 M", 13: "64 64 M 128 128 M 256 256 M 512 512 M 512 512 M",
       16: "64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M",
       19: "64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M"}


def vgg(depth: int, bn: bool) -> Keys:
    k, i, c = Keys(), 0, 3
    for tok in VGG[depth].split():
        if tok == "M":
            i += 1
            continue
        k.conv(f"features.{i}", c, int(tok), 3)
        if bn:
            k.bn(f"features.{i + 1}", int(tok))
        i += 3 if bn else 2
        c = int(tok)
    k.linear("classifier.0", 25088, 4096)
    k.linear("classifier.3", 4096, 4096)
    k.linear("classifier.6", 4096, 1000)
    return k


def resnet(blocks: list[int], bottleneck: bool) -> Keys:
    k = Keys()
    k.conv("conv1", 3, 64, 7, bias=False)
    k.bn("bn1", 64)
    exp, cin = (4 if bottleneck else 1), 64
    for stage, (n, w) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
        for j in range(n):
            p = f"layer{stage}.{j}"
            if bottleneck:
                for q, (a, b, s) in enumerate(((cin, w, 1), (w, w, 3), (w, w * 4, 1)), start=1):
                    k.conv(f"{p}.conv{q}", a, b, s, bias=False)
                    k.bn(f"{p}.bn{q}", b)
            else:
                k.conv(f"{p}.conv1", cin, w, 3, bias=False)
                k.bn(f"{p}.bn1", w)
                k.conv(f"{p}.conv2", w, w, 3, bias=False)
                k.bn(f"{p}.bn2", w)
            if j == 0 and (stage > 1 or cin != w * exp):
                k.conv(f"{p}.downsample.0", cin, w * exp, 1, bias=False)
                k.bn(f"{p}.downsample.1", w * exp)
            cin = w * exp
    k.linear("fc", 512 * exp, 1000)
    return k


def mobilenet_v2() -> Keys:
    k = Keys()
    k.conv("features.0.0", 3, 32, 3, bias=False)
    k.bn("features.0.1", 32)
    i, cin = 1, 32
    for t, c, n, _ in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for _ in range(n):
            h, p, q = cin * t, f"features.{i}.conv", 0
            if t != 1:
                k.conv(f"{p}.0.0", cin, h, 1, bias=False)
                k.bn(f"{p}.0.1", h)
                q = 1
            k.conv(f"{p}.{q}.0", h, h, 3, groups=h, bias=False)
            k.bn(f"{p}.{q}.1", h)
            k.conv(f"{p}.{q + 1}", h, c, 1, bias=False)
            k.bn(f"{p}.{q + 2}", c)
            i, cin = i + 1, c
    k.conv(f"features.{i}.0", 320, 1280, 1, bias=False)
    k.bn(f"features.{i}.1", 1280)
    k.linear("classifier.1", 1280, 1000)
    return k


def _div8(v: float) -> int:
    n = max(8, int(v + 4) // 8 * 8)
    return n + 8 if n < 0.9 * v else n


# torchvision mobilenetv3.py tables: input, kernel, expanded, out, SE, (activation), stride
V3 = {
    "large": ("16 3 16 16 0,16 3 64 24 0,24 3 72 24 0,24 5 72 40 1,40 5 120 40 1,40 5 120 40 1,40 3 240 80 0,"
              "80 3 200 80 0,80 3 184 80 0,80 3 184 80 0,80 3 480 112 1,112 3 672 112 1,112 5 672 160 1,"
              "160 5 960 160 1,160 5 960 160 1", 1280),
    "small": ("16 3 16 16 1,16 3 72 24 0,24 3 88 24 0,24 5 96 40 1,40 5 240 40 1,40 5 240 40 1,40 5 120 48 1,"
              "48 5 144 48 1,48 5 288 96 1,96 5 576 96 1,96 5 576 96 1", 1024),
}


def mobilenet_v3(size: str) -> Keys:
    table, last = V3[size]
    k = Keys()
    k.conv("features.0.0", 3, 16, 3, bias=False)
    k.bn("features.0.1", 16)
    rows = [[int(v) for v in row.split()] for row in table.split(",")]
    for i, (cin, ks, e, cout, se) in enumerate(rows, start=1):
        p, q = f"features.{i}.block", 0
        if e != cin:
            k.conv(f"{p}.0.0", cin, e, 1, bias=False)
            k.bn(f"{p}.0.1", e)
            q = 1
        k.conv(f"{p}.{q}.0", e, e, ks, groups=e, bias=False)
        k.bn(f"{p}.{q}.1", e)
        q += 1
        if se:
            s = _div8(e // 4)
            k.conv(f"{p}.{q}.fc1", e, s, 1)
            k.conv(f"{p}.{q}.fc2", s, e, 1)
            q += 1
        k.conv(f"{p}.{q}.0", e, cout, 1, bias=False)
        k.bn(f"{p}.{q}.1", cout)
    c = rows[-1][3]
    k.conv(f"features.{len(rows) + 1}.0", c, 6 * c, 1, bias=False)
    k.bn(f"features.{len(rows) + 1}.1", 6 * c)
    k.linear("classifier.0", 6 * c, last)
    k.linear("classifier.3", last, 1000)
    return k


def manifests() -> dict[str, Keys]:
    out: dict[str, Keys] = {"alexnet": alexnet(), "mobilenet_v2": mobilenet_v2(),
                            "mobilenet_v3_large": mobilenet_v3("large"), "mobilenet_v3_small": mobilenet_v3("small")}
    for d in VGG:
        out[f"vgg{d}"], out[f"vgg{d}_bn"] = vgg(d, False), vgg(d, True)
    for d, (blocks, bott) in {18: ([2, 2, 2, 2], False), 34: ([3, 4, 6, 3], False), 50: ([3, 4, 6, 3], True),
                              101: ([3, 4, 23, 3], True), 152: ([3, 8, 36, 3], True)}.items():
        out[f"resnet{d}"] = resnet(blocks, bott)
    return out


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for name, keys in manifests().items():
        count = sum(_numel(s) for key, s in keys.items() if not key.endswith(("running_mean", "running_var", "num_batches_tracked")))
        if count != PUBLISHED[name]:
            raise SystemExit(f"{name}: manifest has {count} parameters, torchvision publishes {PUBLISHED[name]}")
        with open(os.path.join(here, f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump({"model": name, "num_params": PUBLISHED[name], "state_dict": dict(keys)}, f, indent=0)
            f.write("\n")


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    main()
