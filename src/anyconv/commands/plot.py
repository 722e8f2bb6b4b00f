"""``anyconv plot``: write PNG figures of 1-D/2-D convolution and of a model's kernels and feature maps."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._grammar import flag_error, numbers_type, sizes_type

EPILOG = """examples:
  anyconv plot signal --out signal.png                      signal 1..9, kernel [2, 1, 2], 4 paddings
  anyconv plot signal --signal 0,1,0,0,3,0 --kernel 1,-1 --out diff.png
  anyconv plot filter --preset sobel --preset blur --out filters.png
  anyconv plot kernels --model lenet5 --out kernels.png     (random init; add --weights FILE for trained ones)
  anyconv plot features --model lenet5 --weights runs/x/last.pt --out features.png

filter presets: identity, edge, edge_x, blur, box_blur, sharpen, sobel_x, sobel_y, sobel.
--weights takes an anyconv checkpoint (its model state is loaded into --model) or a state_dict;
these hold only tensors and plain data and are read with torch.load(weights_only=True).
A whole pickled torch module (then --model is not needed) loads only with --trust-pickle:
unpickling runs whatever code the file names, so use it only for files you wrote yourself."""

WHAT = ("signal", "filter", "kernels", "features")


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot",
        help="write PNG plots: a signal through paddings, image filters, a model's kernels/feature maps",
        description="Write a matplotlib figure (PNG, or SVG/PDF by suffix). Every number comes from anyconv.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("what", choices=WHAT, help="which figure")
    p.add_argument("--out", "-o", default=None, help="output file (default <what>.png)")
    p.add_argument("--signal", type=numbers_type("--signal"), default=None, help="signal: numbers, e.g. 1,2,3,4")
    p.add_argument("--kernel", type=numbers_type("--kernel"), default=None, help="signal: kernel numbers, e.g. 2,1,2")
    p.add_argument("--preset", action="append", default=None, help="filter: a preset (repeatable)")
    p.add_argument("--size", type=sizes_type("--size"), default=(64,),
                   help="filter: size of the square synthetic image, 64 or 64x64 (default 64)")
    p.add_argument("--model", default=None, help="kernels/features: a model name of anyconv.models")
    p.add_argument("--weights", default=None, help="kernels/features: checkpoint, state_dict or pickled module")
    p.add_argument("--trust-pickle", action="store_true",
                   help="load --weights with full unpickling (needed for a whole pickled module); "
                        "RISK: unpickling runs any code the file contains - only for files you wrote yourself")
    p.add_argument("--in-channels", type=int, default=None, help="kernels/features: model input channels")
    p.add_argument("--input-size", type=sizes_type("--input-size"), default=None,
                   help="features: spatial input size, 28x28, 28,28 or 28 (default 28x28; 1-D models: 40)")
    p.add_argument("--max-layers", type=int, default=8)
    p.add_argument("--per-layer", type=int, default=8)
    p.set_defaults(func=run)
    return p


def _load_weights(path: str, trust_pickle: bool) -> Any:
    """``--weights``: tensors and plain data only, unless the user vouches for the file."""
    import torch

    from ..cli import CommandError
    from ..train.checkpoint import UnsafePickleError, damage, read_torch_file

    if not trust_pickle:
        try:
            return read_torch_file(path, "--weights")
        except UnsafePickleError as e:
            raise CommandError(
                f"--weights {path!r} holds more than tensors and plain data ({e.detail}); unpickling it "
                "could run code: if you trust the file (you wrote it yourself), --trust-pickle loads it"
            ) from None
    if not os.path.isfile(path):
        open(path, "rb").close()  # the platform's one-line OSError: does not exist, is a folder, ...
    why = damage(path)
    if why is not None:
        raise CommandError(f"--weights {path!r} {why}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)  # the user vouched for it
    except Exception as e:  # noqa: BLE001 - unpickling the user's file can fail with any error
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CommandError(f"--weights {path!r} cannot be loaded ({type(e).__name__}: {first[:200]})") from e


def _misfit(module: Any, state: dict[str, Any]) -> str:
    """Why ``state`` does not load into ``module``, in a few words: missing, unexpected, misshapen keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shaped = [k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    parts = [f"{len(v)} {what} key(s), e.g. {v[0]}" for what, v in
             (("missing", missing), ("unexpected", extra), ("misshapen", shaped)) if v]
    return "; ".join(parts) or "its tensors do not load"


def _model(args: argparse.Namespace) -> Any:
    import torch

    from ..cli import CommandError

    module = None
    state = None
    if args.weights:
        obj = _load_weights(args.weights, args.trust_pickle)
        if isinstance(obj, torch.nn.Module):
            module = obj
        elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
            state = obj["model"]
            cfg = obj.get("config")
            if args.model is None and isinstance(cfg, dict) and isinstance(cfg.get("model"), str):
                args.model = cfg["model"]
        elif isinstance(obj, dict):
            state = obj
        else:
            raise CommandError(f"--weights {args.weights}: not a checkpoint, state_dict or torch module")
    if module is None:
        if args.model is None:
            raise CommandError("`--model` must name a model of anyconv.models (or give --weights with a module)")
        from ..models import create_model

        kwargs = {} if args.in_channels is None else {"in_channels": args.in_channels}
        module = create_model(args.model, **kwargs)
        if state is not None:
            try:
                module.load_state_dict(state)
            except RuntimeError as e:
                raise CommandError(f"`--weights` must hold weights of --model {args.model} ({_misfit(module, state)}); "
                                   f"got --weights={args.weights!r}") from e
    return module.eval()


def _input(model: Any, args: argparse.Namespace) -> Any:
    import torch

    from ..viz.model_plots import conv_layers
    from ..viz.plots import synthetic_image

    first = conv_layers(model)[0][1] if conv_layers(model) else None
    if first is None:
        return None
    w: Any = first.weight
    n = w.dim() - 2
    c = int(w.shape[1]) * int(getattr(first, "groups", 1))
    if "Transpose" in type(first).__name__:
        c = int(w.shape[0])
    size: tuple[int, ...] = args.input_size or ((40,) if n == 1 else (28,) * n)
    size = size * n if len(size) == 1 else size
    if len(size) != n:
        flag_error("--input-size", "x".join(map(str, size)), f"1 or {n} sizes for this {n}-D model")
    if n == 2:
        img = synthetic_image(max(8, max(size)))[: size[0], : size[1]]
        x = img.float().expand(c, *img.shape)
    else:
        t = torch.linspace(0, 6.28, size[-1])
        x = (torch.sin(3 * t) + (t > 3).float()).expand(c, *size)
    return x.unsqueeze(0).contiguous()


def run(args: argparse.Namespace) -> int:
    out = args.out or f"{args.what}.png"
    if args.what == "signal":
        from ..viz.plots import plot_signal

        plot_signal(args.signal, args.kernel, path=out)
    elif args.what == "filter":
        from ..viz.plots import plot_filter, synthetic_image

        presets = args.preset or ["edge", "blur", "sobel"]
        if len(set(args.size)) != 1:
            flag_error("--size", "x".join(map(str, args.size)), "one size (the image is square), e.g. 64 or 64x64")
        plot_filter(synthetic_image(args.size[0]), presets, path=out)
    else:
        from ..viz.model_plots import plot_feature_maps, plot_kernels

        model = _model(args)
        if args.what == "kernels":
            plot_kernels(model, path=out, max_layers=args.max_layers, per_layer=args.per_layer)
        else:
            x = _input(model, args)
            try:
                plot_feature_maps(model, x, path=out, max_layers=args.max_layers, per_layer=args.per_layer)
            except (RuntimeError, ValueError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                size = "x".join(map(str, x.shape[2:])) if x is not None else "?"
                flag_error("--input-size", size, f"a spatial size the model takes (it raised: {first})")
    print(f"wrote {out}")
    return 0
