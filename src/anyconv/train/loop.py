"""The training loop: data, model, optimiser, schedule; metrics, checkpoints and exact resume."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..data import DataSplits, load_dataset
from ..models import count_params, create_model, with_torch_layers
from . import distributed as D
from .checkpoint import load_checkpoint, remove_stale_temps, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .progress import Progress
from .report import plot_curves, write_metrics

PrintFn = Callable[..., Any]


def load_data(cfg: TrainConfig) -> DataSplits:
    """The run's dataset: ``cfg.data`` (a path) or ``cfg.dataset`` (a name)."""
    if cfg.data is not None:
        return load_dataset(cfg.data)
    if cfg.dataset == "mnist1d" and cfg.num_samples is not None:
        return load_dataset("mnist1d", num_samples=cfg.num_samples)
    return load_dataset(cfg.dataset)


def build_model(cfg: TrainConfig, in_channels: int, num_classes: int) -> torch.nn.Module:
    """``create_model`` for the config (with torch's layers when ``cfg.layers == "torch"``)."""
    model = create_model(cfg.model, in_channels=in_channels, num_classes=num_classes, algorithm=cfg.algorithm)
    return with_torch_layers(model) if cfg.layers == "torch" else model


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Stepped once per batch: cosine to 0 over the run, or x0.1 at 1/3 and 2/3 of it."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.1)
    return None


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on ``(x, y)``."""
    was = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch):
        xb, yb = x[i : i + batch].to(device), y[i : i + batch].to(device)
        out = model(xb)  # (b, classes)
        loss += F.cross_entropy(out, yb, reduction="sum").item()
        correct += int((out.argmax(1) == yb).sum())
    model.train(was)
    n = max(len(y), 1)
    return loss / n, correct / n


def _check_fit(cfg: TrainConfig, model: torch.nn.Module, data: DataSplits, device: torch.device) -> None:
    """One eval-mode forward of two samples (no RNG use, no BN update): a clear error if they do not fit."""
    try:
        with torch.no_grad():
            out = model.eval()(data.x[:2].to(device))
    except (ValueError, RuntimeError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(
            f"train: model {cfg.model!r} does not take {data.name} samples of shape {data.sample_shape}: {first}"
        ) from e
    if out.shape != (min(2, len(data.x)), data.num_classes):
        raise ValueError(f"train: model {cfg.model!r} gives outputs {tuple(out.shape)}; expected (N, {data.num_classes})")


def default_run_dir(cfg: TrainConfig) -> str:
    data = os.path.basename(os.path.normpath(cfg.data)) if cfg.data else cfg.dataset
    return os.path.join("runs", f"{cfg.model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}")


def train(
    cfg: TrainConfig, resume: str | None = None, print_fn: PrintFn = print,
    on_step: Callable[[int], None] | None = None, overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` (or continue the checkpoint ``resume``) and return the final metrics.

    With ``resume``, the config comes from the checkpoint (``overrides`` may change e.g.
    ``epochs`` or ``device``) and the run continues at the saved batch of the saved epoch with
    the saved RNG, optimizer and scheduler states: the result is the uninterrupted run's.
    Resuming removes the run folder's stale ``last.pt.tmp<pid>`` files (left by a kill during a
    save; see :func:`~anyconv.train.checkpoint.remove_stale_temps`).
    ``on_step(global_step)`` is called after every optimiser step (tests use it to interrupt).

    Returns:
        ``{"run_dir", "test_acc", "test_loss", "epochs", "steps", "train_time_s", "params", "history"}``.

    Examples:
        >>> import tempfile
        >>> cfg = TrainConfig(epochs=1, num_samples=100, batch_size=20, progress=False, out=tempfile.mkdtemp())
        >>> r = train(cfg, print_fn=lambda *a: None)
        >>> r["steps"], {"config.json", "last.pt", "metrics.csv", "metrics.jsonl"} <= set(os.listdir(r["run_dir"]))
        (4, True)
    """
    ckpt = load_checkpoint(resume) if resume else None
    if ckpt is not None:
        cfg = TrainConfig.from_dict({**ckpt["config"], **(overrides or {})})
        run_dir = str(resume) if os.path.isdir(str(resume)) else os.path.dirname(os.path.abspath(str(resume)))
        remove_stale_temps(os.path.join(run_dir, "last.pt"))  # left by a kill during a save
    else:
        run_dir = cfg.out or default_run_dir(cfg)
        cfg = cfg.replace(out=run_dir)
    ctx = D.setup(cfg.device)
    try:
        return _train(cfg, ctx, run_dir, ckpt, print_fn, on_step)
    finally:
        if ctx.world > 1:
            D.teardown()


def _train(
    cfg: TrainConfig, ctx: D.Context, run_dir: str, ckpt: dict[str, Any] | None, print_fn: PrintFn,
    on_step: Callable[[int], None] | None,
) -> dict[str, Any]:
    data = load_data(cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.in_channels, data.num_classes).to(ctx.device)
    _check_fit(cfg, model, data, ctx.device)
    opt = _optimizer(cfg, model)
    local_batch = cfg.batch_size // ctx.world
    sampler = D.ResumableSampler(len(data.y), ctx, cfg.seed)
    per_rank = sampler.num_samples  # examples per rank and epoch
    steps = math.ceil(per_rank / local_batch)
    sched = _scheduler(cfg, opt, steps * cfg.epochs)
    epoch, start_batch, step = 0, 0, 0
    history: list[dict[str, Any]] = []
    running = [0.0, 0.0, 0.0, 0.0]  # loss sum, correct, count, seconds (this rank, this epoch)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        epoch, start_batch, step = ckpt["epoch"], ckpt["batch"], ckpt["step"]
        if sched is not None and ckpt["config"].get("epochs") == cfg.epochs and ckpt.get("scheduler"):
            sched.load_state_dict(ckpt["scheduler"])
        elif sched is not None:  # --epochs changed on resume: the new schedule, at the step reached
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] = cfg.lr
            sched = _scheduler(cfg, opt, steps * cfg.epochs)
            assert sched is not None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(step):
                    sched.step()
        history = list(ckpt["history"])
        running = list(ckpt["running"][ctx.rank]) if ctx.rank < len(ckpt["running"]) else running
        set_rng_state(ckpt["rng"][min(ctx.rank, len(ckpt["rng"]) - 1)])
    net = D.wrap_model(model, ctx)
    if ctx.is_main:
        os.makedirs(run_dir, exist_ok=True)
        cfg.save(os.path.join(run_dir, "config.json"))
        verb = "resuming" if ckpt is not None else "training"
        print_fn(
            f"{verb} {cfg.model} ({count_params(model):,} parameters, {cfg.layers} layers, algorithm={cfg.algorithm}) "
            f"on {data.name}: {len(data.y)} train / {len(data.y_test)} test, {ctx.world} process(es) on {ctx.device}; "
            f"run folder {run_dir}"
        )

    def checkpoint(ep: int, batch: int) -> None:
        # every rank's running sums and RNG state are gathered so that each rank resumes its own
        run_all, rng_all = [running], [rng_state()]
        if ctx.world > 1:
            run_all, rng_all = [None] * ctx.world, [None] * ctx.world  # type: ignore[list-item]
            torch.distributed.all_gather_object(run_all, list(running))
            torch.distributed.all_gather_object(rng_all, {k: v for k, v in rng_state().items()})
        if ctx.is_main:
            save_checkpoint(os.path.join(run_dir, "last.pt"), {
                "config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else {}, "epoch": ep, "batch": batch,
                "step": step, "history": history, "running": run_all, "rng": rng_all, "data": data.describe(),
            })

    try:
        while epoch < cfg.epochs:
            sampler.set_epoch(epoch)
            sampler.start = start_batch * local_batch
            order = torch.tensor(list(sampler), dtype=torch.int64)  # this rank's remaining indices
            bar = Progress(steps - start_batch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress and ctx.is_main)
            net.train()
            for b in range(start_batch, steps):
                t0 = time.perf_counter()
                idx = order[(b - start_batch) * local_batch : (b - start_batch + 1) * local_batch]
                xb, yb = data.x[idx].to(ctx.device), data.y[idx].to(ctx.device)
                out = net(xb)  # (b, classes)
                loss = F.cross_entropy(out, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                step += 1
                value = loss.item()
                running[0] += value * len(idx)
                running[1] += int((out.argmax(1) == yb).sum())
                running[2] += len(idx)
                running[3] += time.perf_counter() - t0
                bar.update(1, loss=value)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and b + 1 < steps:
                    checkpoint(epoch, b + 1)
                if on_step is not None:
                    on_step(step)
            bar.close()
            loss_sum, correct, count, _ = D.all_reduce_sum(running, ctx)
            seconds = running[3]
            epoch += 1
            start_batch = 0
            running = [0.0, 0.0, 0.0, 0.0]
            if ctx.is_main:
                test_loss, test_acc = evaluate(model, data.x_test, data.y_test, ctx.device)
                history.append({
                    "epoch": epoch, "step": step, "lr": opt.param_groups[0]["lr"],
                    "train_loss": loss_sum / max(count, 1), "train_acc": correct / max(count, 1),
                    "test_loss": test_loss, "test_acc": test_acc, "epoch_time_s": seconds,
                    "samples_per_s": count / seconds if seconds else 0.0,
                })
                write_metrics(run_dir, history)
                r = history[-1]
                print_fn(
                    f"epoch {epoch:3d}/{cfg.epochs}  train loss {r['train_loss']:.4f} acc {100 * r['train_acc']:5.1f}%  "
                    f"test loss {test_loss:.4f} acc {100 * test_acc:5.1f}%  {seconds:.2f}s"
                )
            checkpoint(epoch, 0)
    except KeyboardInterrupt:
        if ctx.is_main:
            print_fn(f"interrupted; continue with: anyconv train --resume {run_dir}")
        raise
    return _finish(cfg, ctx, run_dir, model, data, history, step, print_fn)


def _finish(
    cfg: TrainConfig, ctx: D.Context, run_dir: str, model: torch.nn.Module, data: DataSplits,
    history: list[dict[str, Any]], step: int, print_fn: PrintFn,
) -> dict[str, Any]:
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test, ctx.device)
    result = {
        "run_dir": run_dir, "test_acc": test_acc, "test_loss": test_loss, "epochs": cfg.epochs, "steps": step,
        "train_time_s": sum(r["epoch_time_s"] for r in history), "params": count_params(model), "history": history,
    }
    if ctx.is_main:
        with open(os.path.join(run_dir, "result.json"), "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in result.items() if k != "history"}, f, indent=2)
        png = plot_curves(run_dir, history) if history else None
        print_fn(
            f"final test accuracy {100 * test_acc:.2f}% (loss {test_loss:.4f}) after {cfg.epochs} epochs, "
            f"{result['train_time_s']:.1f}s training; checkpoint {os.path.join(run_dir, 'last.pt')}"
            + (f", curves {png}" if png else "")
        )
    return result
