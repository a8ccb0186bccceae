"""Tests of multi-worker runs (TF_CONFIG, tf.distribute.MultiWorkerMirroredStrategy): neural_style.cluster, the
dataset's shards, and both commands run as two worker processes on localhost ports, CPU only.

Each two-worker run starts two subprocesses with their own TF_CONFIG and waits for both with a hard timeout, so a
hang fails the test instead of blocking the suite. Bad input (a malformed TF_CONFIG, a task index out of range,
nothing to split) is refused before TensorFlow is imported.
"""

from __future__ import annotations

import json
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
from conftest import (
    CHANNELS,
    IMPORTS_MARKER,
    he_scaled,
    make_workspace,
    photo_array,
    probe_env,
    style_array,
    train_style_array,
    write_vgg_mat,
)
from PIL import Image

from neural_style.cluster import Cluster, parse_tf_config
from neural_style.errors import NeuralStyleError
from neural_style.train import make_dataset, shard_policy

HARD_TIMEOUT = 120  # seconds: a run that takes longer has hung
TRAIN = "import sys; from neural_style.cli import neural_style_train as m; sys.argv[0] = 'neural-style-train'; m()"
TINY_TRAIN = (
    *("--base_filters=4", "--residual_blocks=1", "--image_size=16", "--batch_size=2", "--seed=0"),
    *("--content_layers=relu2_2", "--style_layers=relu1_2,relu2_2", "--print_every=1", "--worker_timeout=30"),
)


def tf_config(ports: Sequence[int], index: int) -> str:
    return json.dumps(
        {"cluster": {"worker": [f"localhost:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    )


# ------------------------------------------------------------------------------------------------- TF_CONFIG


def test_parse_tf_config_ranks_the_chief_first() -> None:
    assert parse_tf_config(None) is None and parse_tf_config("  ") is None
    two = parse_tf_config(tf_config([1000, 1001], 1))
    assert two == Cluster((("worker", ("localhost:1000", "localhost:1001")),), "worker", 1)
    assert (two.size, two.rank, two.is_chief, two.address) == (2, 1, False, "localhost:1001")
    assert two.task_name(0) == "the chief (localhost:1000)" and two.task_name(1) == "worker 1 (localhost:1001)"
    config = {"cluster": {"worker": ["b:2", "c:3"], "chief": ["a:1"]}, "task": {"type": "worker", "index": 1}}
    three = parse_tf_config(json.dumps(config))
    assert three is not None
    assert (three.addresses, three.rank, three.is_chief) == (("a:1", "b:2", "c:3"), 2, False)
    chief = parse_tf_config(json.dumps({**config, "task": {"type": "chief", "index": 0}}))
    assert chief is not None and chief.is_chief and chief.rank == 0


@pytest.mark.parametrize(
    ("config", "mention"),
    [
        ('{"cluster": {"worker": ["a:1"]', "not valid JSON"),
        ("[1, 2]", '"cluster" object'),
        ('{"cluster": {"worker": ["a:1"]}}', '"task" object'),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker"}}', '"ps" job'),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', '"a"'),
        ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "a:1 twice"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "index 2 is out of range"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": -1}}', "index -1 is out of range"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', 'type "chief"'),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}', "whole number"),
    ],
)
def test_parse_tf_config_rejects(config: str, mention: str) -> None:
    with pytest.raises(NeuralStyleError, match="^TF_CONFIG") as info:
        parse_tf_config(config)
    assert mention in str(info.value)


# ------------------------------------------------------------------------------------------------- sharding


def test_shards_by_data_interleave_the_common_stream(tmp_path: Path) -> None:
    """With few files, worker k of 2 keeps crops k, k + 2, ... of the stream every worker draws with the seed."""
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(photo_array(20, 24, i)).save(paths[-1])
    assert shard_policy(3, 2) == "data" and shard_policy(20, 2) == "file" and shard_policy(19, 2) == "data"
    whole = [b.numpy() for b in make_dataset(paths, 8, 1, seed=5).take(6)]
    shards = [[b.numpy() for b in make_dataset(paths, 8, 1, seed=5, shard=(2, k)).take(3)] for k in (0, 1)]
    np.testing.assert_array_equal(np.concatenate(shards[0]), np.concatenate(whole[0::2]))
    np.testing.assert_array_equal(np.concatenate(shards[1]), np.concatenate(whole[1::2]))


def test_shards_by_file_read_their_own_files(tmp_path: Path) -> None:
    """With 10 files per worker or more, worker k of 2 reads files k, k + 2, ... only (uniform images: grey 10 i)."""
    paths = []
    for i in range(20):
        paths.append(str(tmp_path / f"{i:02d}.png"))
        Image.new("RGB", (12, 12), (10 * i,) * 3).save(paths[-1])
    for k in (0, 1):
        greys = {int(round(float(b.numpy().mean()))) for b in make_dataset(paths, 8, 1, seed=1, shard=(2, k)).take(40)}
        assert greys == {10 * i for i in range(k, 20, 2)}


# ------------------------------------------------------------------------------------------------- bad input


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


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


def test_killing_a_worker_stops_the_others_and_a_rerun_resumes(tmp_path: Path) -> None:
    """The chief killed after its first checkpoint: worker 1 exits 1 with one line; both run again resume."""
    work, env = _train_inputs(tmp_path)
    ports = _free_ports(2)
    processes = _start([*TRAIN_ARGS, "--steps=100000", "--checkpoint_every=4"], ports, work, env)
    deadline = time.monotonic() + HARD_TIMEOUT
    while not list((work / "m_checkpoints").glob("ckpt-*.index")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "no checkpoint written"
        time.sleep(0.2)
    processes[0].send_signal(signal.SIGKILL)
    (_, (status, _, err)) = _finish(processes)
    assert status == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("neural-style-train: error: another worker failed, exited or did not answer"), err
    assert "the last checkpoint is in m_checkpoints: start every worker again to resume from it" in err
    saved = max(int(p.stem.split("-")[1]) for p in (work / "m_checkpoints").glob("ckpt-*.index"))

    ports = _free_ports(2)
    runs = _finish(_start([*TRAIN_ARGS, f"--steps={saved + 2}"], ports, work, env))
    for status, out, err in runs:
        assert status == 0, err
        assert f"Resuming from step {saved} " in out and f"Step {saved + 2:6d}/{saved + 2}" in out
    assert (work / "m.keras").exists()


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
