"""Tests of multi-worker runs (neural_style.cli.distribute: TF_CONFIG, tf.distribute.MultiWorkerMirroredStrategy):
the cluster a command joins, the check that workers agree, a lost worker as one line, and both commands run as two
worker processes on localhost ports, CPU only.

Each two-worker run starts two subprocesses with their own TF_CONFIG and waits for both with a hard timeout, so a
hang fails the test instead of blocking the suite. Bad input (a malformed TF_CONFIG, a task index out of range,
nothing to split) is refused before TensorFlow is imported. The TF_CONFIG parser itself is tested in
test_cluster.py, the shards of the training data in test_train.py.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from absl import flags
from conftest import (
    CHANNELS,
    IMPORTS_MARKER,
    he_scaled,
    make_workspace,
    photo_array,
    probe_env,
    style_array,
    tf_config,
    train_style_array,
    write_vgg_mat,
)
from PIL import Image

from neural_style.cli import distribute
from neural_style.cluster import Cluster, parse_tf_config
from neural_style.errors import NeuralStyleError

HARD_TIMEOUT = 120  # seconds: a run that takes longer has hung
TRAIN = "import sys; from neural_style.cli import neural_style_train as m; sys.argv[0] = 'neural-style-train'; m()"
TINY_TRAIN = (
    *("--base_filters=4", "--residual_blocks=1", "--image_size=16", "--batch_size=2", "--seed=0"),
    *("--content_layers=relu2_2", "--style_layers=relu1_2,relu2_2", "--print_every=1", "--worker_timeout=30"),
)


# ------------------------------------------------------------------------------------------------- in process


def distribute_flags(*argv: str) -> flags.FlagValues:
    """Fresh --strategy and --worker_timeout flags with ``argv`` parsed."""
    fv = flags.FlagValues()
    distribute.define_flags(fv, "test_cli_distribute", strategy=True)
    fv(["prog", *argv])
    return fv


def test_the_flags_and_their_defaults() -> None:
    fv = distribute_flags()
    assert (fv.strategy, fv.worker_timeout) == ("auto", 60.0)
    assert distribute.STRATEGIES == ("auto", "multiworker", "mirrored", "none")
    with pytest.raises(flags.IllegalFlagValueError):
        distribute_flags("--strategy=ps")


def test_cluster_of_each_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: TF_CONFIG with two tasks or more; multiworker: any TF_CONFIG, and needs one; mirrored and none ignore
    it, even a malformed one. A cluster turns TensorFlow's own error log off (level 3) when the command's 2 is set."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    fv = distribute_flags()
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.cluster_of(fv, "auto") is None
    with pytest.raises(NeuralStyleError) as info:
        distribute.cluster_of(fv, "multiworker")
    assert str(info.value) == (
        "--strategy multiworker needs TF_CONFIG, which lists the workers (see the README: running across machines); "
        "or choose --strategy auto, mirrored or none"
    )
    monkeypatch.setenv("TF_CONFIG", tf_config([5000], 0))
    assert distribute.cluster_of(fv, "auto") is None  # one task: nothing to spread
    one = distribute.cluster_of(fv, "multiworker")
    assert one is not None and (one.size, one.rank) == (1, 0)
    monkeypatch.setenv("TF_CONFIG", tf_config([5000, 5001], 1))
    two = distribute.cluster_of(fv, "auto")
    assert two == Cluster((("worker", ("localhost:5000", "localhost:5001")),), "worker", 1)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert distribute.cluster_of(fv, "mirrored") is None and distribute.cluster_of(fv, "none") is None


@pytest.mark.parametrize("timeout", ["0", "-1", "nan"])
def test_worker_timeout_must_be_positive(timeout: str) -> None:
    with pytest.raises(NeuralStyleError) as info:
        distribute.cluster_of(distribute_flags(f"--worker_timeout={timeout}"), "none")
    assert str(info.value) == (f"--worker_timeout is {float(timeout)}; give the seconds to wait, more than 0")


def test_workers_that_disagree_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The all-gathered rows of hashes of two workers (two replicas each): the chief's, then worker 1's with another
    --style_weight. The first differing setting and worker are named; equal rows pass."""
    cluster = parse_tf_config(tf_config([5000, 5001], 0))
    assert cluster is not None
    settings = {"--seed": 0, "--style_weight": 500.0, "--styles": ["a.png"]}
    rows: list[list[int]] = []
    monkeypatch.setattr(distribute, "_all_gather", lambda strategy, values: rows.append(values) or [values] * 4)
    distribute.check_agreement(None, cluster, {**settings, "--style_weight": 3.0})  # type: ignore[arg-type]
    distribute.check_agreement(None, cluster, settings)  # type: ignore[arg-type]
    other, mine = rows
    assert len(mine) == 128 and mine[4:] == [0] * 124 and other[1] == mine[1] and other[2] != mine[2]
    monkeypatch.setattr(distribute, "_all_gather", lambda strategy, values: [mine, mine, other, other])
    with pytest.raises(NeuralStyleError) as info:
        distribute.check_agreement(None, cluster, settings, what="the training data")  # type: ignore[arg-type]
    assert str(info.value) == (
        "the workers disagree on the training data: --style_weight differs between the chief (localhost:5000) and "
        "worker 1 (localhost:5001); start every worker with the same flags and files"
    )


def test_a_lost_worker_is_one_line() -> None:
    """TensorFlow's multi-line collective errors become one line naming the cause; other errors pass unchanged."""
    import tensorflow as tf

    cluster = parse_tf_config(tf_config([5000, 5001], 1))
    unhealthy = (
        "Collective ops is aborted by: task /job:worker/replica:0/task:0 is unhealthy (stopped sending heartbeats):\n"
        "/job:worker/replica:0/task:0\nAdditional GRPC error information"
    )
    with pytest.raises(NeuralStyleError) as info, distribute.lost_workers(cluster, 30, "start every worker again"):
        raise tf.errors.UnavailableError(None, None, unhealthy)
    assert not info.value.usage
    assert str(info.value) == (
        "another worker failed, exited or did not answer within --worker_timeout 30 s (UnavailableError: task "
        "/job:worker/replica:0/task:0 is unhealthy (stopped sending heartbeats): /job:worker/replica:0/task:0); "
        "start every worker again"
    )
    with pytest.raises(NeuralStyleError) as info, distribute.lost_workers(cluster, 2.5, "hint"):
        raise tf.errors.DeadlineExceededError(None, None, "Collective timed out\nDeadline Exceeded after 2.5 s")
    assert str(info.value) == (
        "another worker failed, exited or did not answer within --worker_timeout 2.5 s (DeadlineExceededError: "
        "Deadline Exceeded after 2.5 s); hint"
    )
    with pytest.raises(tf.errors.InvalidArgumentError), distribute.lost_workers(cluster, 30, "hint"):
        raise tf.errors.InvalidArgumentError(None, None, "a bug, not a peer")
    with pytest.raises(tf.errors.UnavailableError), distribute.lost_workers(None, 30, "hint"):
        raise tf.errors.UnavailableError(None, None, unhealthy)


# ------------------------------------------------------------------------------------------------- bad input


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "config", "extra", "mention"),
    [
        ("train", '{"cluster": {"worker": ["a:1", "b:2"]}', [], "TF_CONFIG is not valid JSON"),
        ("train", tf_config([1, 2], 2), [], "TF_CONFIG task index 2 is out of range"),
        ("train", "", ["--strategy=multiworker"], "--strategy multiworker needs TF_CONFIG"),
        ("train", tf_config([1, 2], 0), ["--worker_timeout=0"], "--worker_timeout is 0"),
        ("style", tf_config([1, 2], 5), ["--blend_sweep=2"], "TF_CONFIG task index 5 is out of range"),
        ("style", tf_config([1, 2], 0), [], "a single image has nothing to split"),
        ("style", tf_config([1, 2], 0), ["--sweep_style_weights=10"], "1 candidate, too few to split"),
        ("style", tf_config([1, 2], 0), ["--blend_sweep=4", "--batch_size=1"], "--batch_size 1 must be at least 2"),
        ("style", tf_config([1, 2], 0), ["--blend_sweep=2", "--devices=/cpu:0,/cpu:1"], "--devices none"),
    ],
)
def test_bad_cluster_is_one_error_line_before_tensorflow(
    tmp_path: Path, import_probe: Path, command: str, config: str, extra: list[str], mention: str
) -> None:
    ws = make_workspace(tmp_path)
    Image.fromarray(style_array(seed=1)).save(ws.work / "style2.png")
    (ws.work / "data").mkdir()
    Image.fromarray(photo_array(20, 20, 0)).save(ws.work / "data" / "a.png")
    marker = ws.root / IMPORTS_MARKER
    env = probe_env({**ws.env, "TF_CONFIG": config}, import_probe, marker)
    if command == "train":
        argv = [sys.executable, "-c", TRAIN, "--network=vgg.mat", "--style=style.png", "--data=data"]
        argv += ["--model_out=m.keras", *extra]
    else:
        args = ws.args(*extra)
        args[1] = "--styles=style.png,style2.png"
        argv = [sys.executable, "-m", "neural_style", *args]
    result = subprocess.run(argv, cwd=ws.work, env=env, capture_output=True, text=True, timeout=HARD_TIMEOUT)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert mention in lines[0], lines[0]
    assert marker.read_text() == "", "TF_CONFIG is checked before TensorFlow is imported"
    assert sorted(p.name for p in ws.work.iterdir()) == ["content.png", "data", "style.png", "style2.png", "vgg.mat"]


# ------------------------------------------------------------------------------------------------- two workers


def _start(argv: Sequence[str], ports: Sequence[int], cwd: Path, env: dict[str, str], **per_worker: list[str]):
    """Starts one process per port (worker i with TF_CONFIG index i and ``per_worker[f"w{i}"]`` appended)."""
    return [
        subprocess.Popen(
            [*argv, *per_worker.get(f"w{i}", [])],
            cwd=cwd,
            env={**env, "TF_CONFIG": tf_config(ports, i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(len(ports))
    ]


def _finish(processes: Sequence[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of each process; kills them all and fails if one is not done in time."""
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=HARD_TIMEOUT)
            results.append((process.returncode, out, err))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
            process.communicate()
        pytest.fail("a worker hung")
    return results


def _train_inputs(root: Path) -> tuple[Path, dict[str, str]]:
    """A work directory with the tiny network, a style and four photos; the environment of a run there."""
    work = root / "work"
    (work / "data").mkdir(parents=True)
    for i, (height, width) in enumerate([(40, 48), (36, 36), (50, 34), (33, 45)]):
        Image.fromarray(photo_array(height, width, i)).save(work / "data" / f"{i}.png")
    Image.fromarray(train_style_array()).save(work / "style.png")
    write_vgg_mat(work / "vgg.mat", channels=CHANNELS, tamper=he_scaled)
    (root / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "TF_CONFIG")}
    env.update(NEURAL_STYLE_CACHE=str(root / "cache"), TMPDIR=str(root / "tmp"), CUDA_VISIBLE_DEVICES="")
    return work, env


TRAIN_ARGS = [sys.executable, "-c", TRAIN, "--network=vgg.mat", "--style=style.png", "--data=data"]
TRAIN_ARGS += ["--model_out=m.keras", *TINY_TRAIN]


def _losses(out: str) -> list[float]:
    return [float(x) for x in re.findall(r"^Step +\d+/\d+  loss (\S+)", out, re.MULTILINE)]


@pytest.mark.slow
def test_two_workers_train_and_resume(tmp_path: Path) -> None:
    """10 steps on 2 workers: both report the same falling losses; the chief alone writes one model and one
    checkpoint directory; a second run resumes at step 10 on both; workers with other settings are refused."""
    work, env = _train_inputs(tmp_path)
    inputs = sorted(p.name for p in work.iterdir())
    ports = _free_ports(2)
    (chief, worker) = _finish(_start([*TRAIN_ARGS, "--steps=10", "--checkpoint_every=5"], ports, work, env))
    assert chief[0] == 0 and chief[2] == "", chief
    assert worker[0] == 0 and worker[2] == "", worker
    assert "on 2 workers (2 replicas; this is the chief, images sharded by data), global batch 4" in chief[1]
    losses = _losses(chief[1])
    assert len(losses) == 10 and losses == _losses(worker[1])  # one model, the same global mean
    assert max(losses[-3:]) < losses[0] / 2, losses
    assert "Wrote m.keras after 10 steps" in chief[1] and "the chief writes m.keras" in worker[1]
    assert sorted(p.name for p in work.iterdir()) == sorted([*inputs, "m.keras", "m_checkpoints"])
    assert sorted(p.name for p in (work / "m_checkpoints").glob("*.index")) == ["ckpt-10.index", "ckpt-5.index"]
    assert list((tmp_path / "tmp").iterdir()) == []

    ports = _free_ports(2)
    (chief, worker) = _finish(_start([*TRAIN_ARGS, "--steps=12", "--overwrite"], ports, work, env))
    assert chief[0] == 0 and worker[0] == 0, (chief, worker)
    for out in (chief[1], worker[1]):
        assert "Resuming from step 10 (m_checkpoints/ckpt-10)" in out and "Step     11/12" in out
        assert "Step      1/" not in out
    assert {p.name for p in (work / "m_checkpoints").glob("*.index")} == {f"ckpt-{k}.index" for k in (5, 10, 12)}

    ports = _free_ports(2)
    runs = _finish(_start([*TRAIN_ARGS, "--steps=14", "--overwrite"], ports, work, env, w1=["--style_weight=3"]))
    for status, _, err in runs:
        assert status == 2 and len(err.splitlines()) == 1, err
        assert "the workers disagree on settings: --style_weight differs between the chief" in err


@pytest.mark.slow
def test_a_worker_that_is_not_there_is_one_error_line(tmp_path: Path) -> None:
    """Worker 1 of 2 alone: one line naming the chief it cannot reach, exit 1, within --worker_timeout."""
    work, env = _train_inputs(tmp_path)
    ports = _free_ports(2)  # the chief's never opens
    worker = subprocess.run(
        [*TRAIN_ARGS, "--steps=2", "--worker_timeout=3"],
        cwd=work,
        env={**env, "TF_CONFIG": tf_config(ports, 1)},
        capture_output=True,
        text=True,
        timeout=HARD_TIMEOUT,
    )
    assert worker.returncode == 1, worker
    assert worker.stderr == (
        f"neural-style-train: error: could not reach the chief (localhost:{ports[0]}) within --worker_timeout 3 s; "
        "start every worker TF_CONFIG lists, with its own task index, and check the addresses and ports\n"
    )
    assert not (work / "m_checkpoints").exists() and not (work / "m.keras").exists()


@pytest.mark.slow
def test_killing_a_worker_stops_the_others_and_a_rerun_resumes(tmp_path: Path) -> None:
    """The chief killed after its first checkpoint: worker 1 exits 1 with one line; both run again resume."""
    work, env = _train_inputs(tmp_path)
    ports = _free_ports(2)
    processes = _start([*TRAIN_ARGS, "--steps=100000", "--checkpoint_every=4"], ports, work, env)
    deadline = time.monotonic() + HARD_TIMEOUT
    state = work / "m_checkpoints" / "checkpoint"  # names the newest complete checkpoint; written after its files
    while not state.exists():
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "no checkpoint written"
        time.sleep(0.2)
    processes[0].send_signal(signal.SIGKILL)
    (_, (status, _, err)) = _finish(processes)
    assert status == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("neural-style-train: error: another worker failed, exited or did not answer"), err
    assert "the last checkpoint is in m_checkpoints: start every worker again to resume from it" in err
    saved = int(re.findall(r'^model_checkpoint_path: "ckpt-(\d+)"', state.read_text(), re.MULTILINE)[0])

    ports = _free_ports(2)
    runs = _finish(_start([*TRAIN_ARGS, f"--steps={saved + 2}"], ports, work, env))
    for status, out, err in runs:
        assert status == 0, err
        assert f"Resuming from step {saved} " in out and f"Step {saved + 2:6d}/{saved + 2}" in out
    assert (work / "m.keras").exists()


@pytest.mark.slow
def test_a_sweep_over_two_workers_equals_one_process(tmp_path: Path) -> None:
    """4 blends over 2 workers: the chief writes the same images (within 1 grey level) and reports the same
    losses (1e-4) as one process with the same seed; worker 1 writes nothing."""
    ws = make_workspace(tmp_path)
    Image.fromarray(style_array(seed=1)).save(ws.work / "style2.png")
    env = {**ws.env, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)

    def argv(output: str) -> list[str]:
        args = ws.args("--blend_sweep=4", "--iterations=4", "--seed=3", "--worker_timeout=30", output=Path(output))
        args[1] = "--styles=style.png,style2.png"
        return [sys.executable, "-m", "neural_style", *args]

    (ws.work / "one").mkdir()
    (ws.work / "two").mkdir()
    (single,) = _finish([subprocess.Popen(argv("one/out.png"), cwd=ws.work, env=env, stdout=-1, stderr=-1, text=True)])
    chief, worker = _finish(_start(argv("two/out.png"), _free_ports(2), ws.work, env))
    for status, _, err in (single, chief, worker):
        assert status == 0 and err == "", err
    names = ["out_1-0.png", "out_0.667-0.333.png", "out_0.333-0.667.png", "out_0-1.png", "out_sheet.png"]
    assert sorted(p.name for p in (ws.work / "two").iterdir()) == sorted(names)
    for name in names:
        one = np.asarray(Image.open(ws.work / "one" / name), np.int32)
        two = np.asarray(Image.open(ws.work / "two" / name), np.int32)
        assert one.shape == two.shape and np.abs(one - two).max() <= 1, name

    def saved(out: str) -> dict[str, float]:
        return {m[0]: float(m[1]) for m in re.findall(r"\[(\S+)\] (?:saved|final) image.*?total loss (\S+)", out)}

    assert len(saved(single[1])) == 4
    for label, loss in saved(single[1]).items():
        assert saved(chief[1])[label] == pytest.approx(loss, rel=1e-4)
        assert saved(worker[1])[label] == pytest.approx(loss, rel=1e-4)
    assert "final image (the chief writes it)" in worker[1]
