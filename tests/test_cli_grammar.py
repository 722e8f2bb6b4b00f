"""The command line speaks one language: sizes, op names, one-short inputs, errors, models/datasets.

Every subcommand gets a table of bad arguments (exit 2, one line on stderr naming the flag, no
traceback); every size flag takes ``5``, ``5x5`` and ``5,5``; an input one size short of the
layer's batched rank is one sample; expected values come from torch or from the zoo's models.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import anyconv
from anyconv.cli import main


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as e:  # argparse's own errors
        status = int(e.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["train", "--epochs", "1", "--num-samples", "100", "--out", str(out), "--no-progress"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("files")
    torch.save(anyconv.models.create_model("cifar_cnn").state_dict(), d / "cifar.pt")
    np.save(d / "s7.npy", np.zeros(7, np.float32))
    return {"cifar_weights": str(d / "cifar.pt"), "s7": str(d / "s7.npy"), "dir": str(d)}


BAD = [
    (["summary", "cifar_cnn", "--input", "3xa"], "--input"),
    (["summary", "cifar_cnn", "--input", "0x3"], "--input"),
    (["summary", "cifar_cnn", "--input", "1x2x3x4x5x6"], "--input"),
    (["summary", "cifar_cnn", "--input", "3x32x32", "--threads", "0"], "--threads"),
    (["norm", "cifar_cnn", "--input", "3x32x32", "--tol", "0"], "--tol"),
    (["norm", "cifar_cnn", "--input", "3,a"], "--input"),
    (["shape", "nope", "--input", "1x3x8x8", "--kernel", "3"], "OP"),
    (["shape", "conv2d", "--input", "1x3x8x8", "--kernel", "0"], "--kernel"),
    (["shape", "conv2d", "--input", "1x3x4x4", "--kernel", "9"], "--kernel"),
    (["shape", "conv2d", "--input", "1x3x8x8", "--kernel", "3", "--want", "a"], "--want"),
    (["shape", "conv2d", "--input", "1x3x8x8", "--kernel", "3", "--then", "blah 2"], "--then"),
    (["shape", "conv", "--input", "8x8", "--kernel", "3"], "--input"),
    (["shape", "conv2d", "--input", "1x2x3x4x5x6", "--kernel", "3"], "--input"),
    (["plot", "signal", "--signal", "1,2,a"], "--signal"),
    (["plot", "signal", "--kernel", "x"], "--kernel"),
    (["plot", "filter", "--size", "3x4"], "--size"),
    (["plot", "features", "--model", "lenet5", "--input-size", "2x2x2"], "--input-size"),
    (["plot", "features", "--model", "lenet5", "--input-size", "9"], "--input-size"),
    (["plot", "kernels", "--model", "lenet5", "--weights", "{cifar_weights}"], "--weights"),
    (["train", "--model", "resnet18"], "--model"),
    (["train", "--dataset", "digits", "--model", "mnist1d_cnn"], "--model"),
    (["train", "--model", "nope"], "--model"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "--algorithm", "winograd", "--epochs", "1", "--num-samples", "100", "--out", "{dir}/w"], "--algorithm"),
    (["eval", "{run}", "--threads", "0"], "--threads"),
    (["predict", "{run}", "--threads", "-1"], "--threads"),
    (["predict", "{run}", "--top", "0"], "--top"),
    (["predict", "{run}", "{s7}"], "inputs"),
    (["bench", "--threads", "0"], "--threads"),
    (["models", "zzz"], "filter"),
    (["datasets", "--bogus"], "--bogus"),
    (["demo", "--tolerance", "-1"], "--tolerance"),
    (["playground", "--port", "70000"], "--port"),
    (["doctor", "--bogus"], "--bogus"),
    (["animate", "--input-size", "a", "--out", "{dir}/a.gif"], "--input-size"),
]


@pytest.mark.parametrize("argv, flag", BAD, ids=[" ".join(a[:2]) + f" {f}" for a, f in BAD])
def test_bad_argument_is_one_line_exit_2_naming_the_flag(argv, flag, run_dir, files, capsys):
    argv = [a.format(run=run_dir, **files) for a in argv]
    status, out, err = cli(argv, capsys)
    assert status == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert flag in err and "Traceback" not in err, err
    assert err.startswith(f"anyconv {argv[0]}"), err


def test_no_message_talks_about_shapes_the_user_never_typed(capsys):
    # the reported messages: channels of a misread input, a weight of zero channels
    status, _, err = cli(["train", "--model", "resnet18"], capsys)
    assert status == 2 and "channels" not in err and "2-D" in err and "1-D" in err
    status, _, err = cli(["train", "--algorithm", "winograd", "--num-samples", "100", "--epochs", "1",
                          "--out", "/tmp/anyconv-never-written-w"], capsys)
    assert status == 2 and "does not take" not in err and "3-tap" in err
    status, _, err = cli(["shape", "conv2d", "--input", "32x32", "--kernel", "3"], capsys)
    assert status == 0 and "weight" not in err and "1x1x32x32" in err


@pytest.mark.parametrize("form", ["5", "5x5", "5,5"])
def test_size_forms_are_accepted_everywhere(form, tmp_path, capsys):
    ref = tuple(torch.nn.functional.conv2d(torch.zeros(1, 1, 9, 9), torch.zeros(1, 1, 5, 5)).shape)
    status, out, _ = cli(["shape", "conv2d", "--input", "1x1x9x9", "--kernel", form], capsys)
    assert status == 0 and f"-> {list(ref)}" in out
    status, out, _ = cli(["shape", "conv2d", "--input", "1x1x5x5", "--kernel", "3", "--want", form], capsys)
    assert status == 0 and "-> [1, 1, 5, 5]" in out
    status, out, _ = cli(["shape", "max_pool2d", "--input", form, "--kernel", "2", "--stride", form], capsys)
    ref = tuple(torch.nn.functional.max_pool2d(torch.zeros(1, 1, 5, 5), 2, 5).shape)
    assert status == 0 and f"-> {list(ref)}" in out
    status, out, err = cli(["plot", "filter", "--size", form.replace("5", "16"), "-o", str(tmp_path / "f.png")], capsys)
    assert status == 0 and (tmp_path / "f.png").exists(), err
    status, out, err = cli(["plot", "features", "--model", "lenet5", "--input-size", form.replace("5", "28"),
                            "-o", str(tmp_path / "g.png")], capsys)
    assert status == 0 and (tmp_path / "g.png").exists(), err
    status, ref_table, _ = cli(["summary", "cifar_cnn", "--input", "1x3x16x16"], capsys)
    full = {"5": "16", "5x5": "1x3x16x16", "5,5": "1,3,16,16"}[form]  # "16": every spatial dim, 3 channels
    status, out, err = cli(["summary", "cifar_cnn", "--input", full], capsys)
    assert status == 0 and out == ref_table and "[1, 32, 14, 14]" in out, err


@pytest.mark.parametrize("op, torch_fn", [("conv2d", None), ("Conv2d", None), ("maxpool2d", "max_pool2d"),
                                          ("MaxPool2d", "max_pool2d"), ("avg_pool2d", "avg_pool2d")])
def test_one_short_input_is_one_sample(op, torch_fn, capsys):
    x = torch.zeros(1, 3, 8, 8)
    ref = (torch.nn.functional.conv2d(x, torch.zeros(3, 3, 3, 3)) if torch_fn is None
           else getattr(torch.nn.functional, torch_fn)(x, 3)).shape
    status, out, err = cli(["shape", op, "--input", "3x8x8", "--kernel", "3"], capsys)
    assert status == 0 and f"-> {list(ref)}" in out, (out, err)
    assert "one sample" in err and "1x3x8x8" in err


@pytest.mark.parametrize("command", ["summary", "norm"])
def test_one_short_model_input_equals_batch_1(command, capsys):
    extra = ["--depth", "1"] if command == "summary" else []
    torch.manual_seed(0)
    status, batched, _ = cli([command, "cifar_cnn", "--input", "1x3x16x16", *extra], capsys)
    assert status == 0
    torch.manual_seed(0)
    status, one, err = cli([command, "cifar_cnn", "--input", "3x16x16", *extra], capsys)
    assert status == 0 and "one sample" in err
    assert one == batched


def test_one_short_summary_of_the_reported_resnet18(capsys):
    status, out, err = cli(["summary", "resnet18", "--input", "3x64x64", "--depth", "1"], capsys)
    assert status == 0 and "one sample" in err, err
    assert "[1, 1000]" in out


def test_predict_takes_one_unbatched_signal(run_dir, tmp_path, capsys):
    x = np.random.RandomState(0).rand(40).astype(np.float32)
    np.save(tmp_path / "one.npy", x)
    np.save(tmp_path / "batch.npy", x.reshape(1, 1, 40))
    status, one, err = cli(["predict", run_dir, str(tmp_path / "one.npy")], capsys)
    assert status == 0, err
    status, batch, err = cli(["predict", run_dir, str(tmp_path / "batch.npy")], capsys)
    assert status == 0 and one.split(":", 1)[1] == batch.split(":", 1)[1]


def test_threads_flag_sets_torch_threads(capsys):
    before = torch.get_num_threads()
    try:
        assert cli(["norm", "cifar_cnn", "--input", "3x16x16", "--threads", "1", "--max-iter", "5"], capsys)[0] == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_models_lists_the_zoo_with_shapes_that_run(capsys):
    status, out, _ = cli(["models"], capsys)
    rows = {line.split()[0]: line.split() for line in out.strip().splitlines()}
    assert status == 0 and set(rows) == set(anyconv.models.list_models())
    for name in ("lenet5", "cifar_cnn", "mnist1d_cnn", "unet"):
        model = anyconv.models.create_model(name).eval()
        shape = tuple(int(v) for v in rows[name][1].split("x"))
        assert int(rows[name][2].replace(",", "")) == sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *shape))  # the listed input shape is one the model takes


def test_datasets_lists_what_the_readers_give(capsys):
    status, out, _ = cli(["datasets"], capsys)
    rows = {line.split()[0]: line.split() for line in out.strip().splitlines()}
    assert status == 0 and {"mnist1d", "digits"} <= set(rows)
    sample = anyconv.data.load_dataset("mnist1d", num_samples=100).sample_shape
    assert rows["mnist1d"][1] == "x".join(map(str, sample))


def test_explain_algorithm_sizes_are_readable_and_rejections_marked():
    text = anyconv.explain_algorithm(torch.randn(1, 1, 20000), torch.randn(1, 1, 2001), backward=False)
    assert not re.search(r"\d{6,} bytes", text), text
    assert "scratch budget (128 MiB, half the 256 MiB workspace limit)" in text
    text = anyconv.explain_algorithm(torch.randn(1, 2048, 8, 8), torch.randn(8, 2048, 7, 7), backward=False)
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("im2col"))
    err, bound = (float(v) for v in re.findall(r"\d\.\de-\d\d", line)[:2])
    assert err > bound and "ABOVE" in line


def test_dir_anyconv_is_the_api():
    names = set(dir(anyconv))
    assert set(anyconv.__all__) <= names
    assert not {"Any", "annotations", "importlib"} & names
    assert all(not n.startswith("_") or n == "__version__" for n in names)


def test_bench_prints_the_machine_and_no_profiler_noise(capfd):
    # the %peak column is relative to the measured matmul rate unless --peak-gflops is given; the profiler's
    # C++ side writes a USDT line to fd 2 per profiled call: silenced
    from anyconv.cli import main

    assert main(["bench", "large_dw.dw31x31_64_56", "--mode", "forward", "--repeats", "1"]) == 0
    out, err = capfd.readouterr()
    assert out.startswith("cpu: ") and "thread(s)" in out.splitlines()[0]
    assert "relative to" in out and "Zen" not in out
    assert "USDT" not in out + err
