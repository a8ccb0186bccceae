"""Tests of the TF_CONFIG parser (neural_style.cluster): the ranks, addresses and names of a cluster's tasks, and the
one-line refusal of every malformed value. No TensorFlow is needed.
"""

from __future__ import annotations

import json

import pytest
from conftest import tf_config

from neural_style.cluster import Cluster, parse_tf_config
from neural_style.errors import NeuralStyleError


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


def test_a_chief_and_two_workers_by_hand() -> None:
    """Rank order is the chief, then the workers in order: worker 0 is rank 1, worker 1 rank 2."""
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "worker", "index": 0}}
    cluster = parse_tf_config(json.dumps(config))
    assert cluster is not None
    assert (cluster.size, cluster.rank, cluster.address, cluster.is_chief) == (3, 1, "b:2", False)
    assert [cluster.task_name(rank) for rank in range(3)] == ["the chief (a:1)", "worker 0 (b:2)", "worker 1 (c:3)"]
    with pytest.raises(IndexError):
        cluster.task_name(3)


def test_one_worker_is_its_own_chief_and_the_index_defaults_to_0() -> None:
    cluster = parse_tf_config('{"cluster": {"worker": ["[::1]:2222"]}, "task": {"type": "worker"}}')
    assert cluster == Cluster((("worker", ("[::1]:2222",)),), "worker", 0)
    assert (cluster.size, cluster.rank, cluster.is_chief, cluster.address) == (1, 0, True, "[::1]:2222")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            '{"cluster": {"chief": ["a:1", "b:2"]}, "task": {"type": "chief"}}',
            'TF_CONFIG cluster has 2 "chief" tasks; give one',
        ),
        (
            '{"cluster": {"worker": ["a:0"]}, "task": {"type": "worker"}}',
            'TF_CONFIG cluster "worker" has "a:0"; each task is a "host:port" address with a port in 1..65535',
        ),
        (
            '{"cluster": {"worker": ["a:65536"]}, "task": {"type": "worker"}}',
            'TF_CONFIG cluster "worker" has "a:65536"; each task is a "host:port" address with a port in 1..65535',
        ),
        (
            '{"cluster": {"worker": [12345]}, "task": {"type": "worker"}}',
            'TF_CONFIG cluster "worker" has 12345; each task is a "host:port" address with a port in 1..65535',
        ),
        (
            '{"cluster": {"worker": []}, "task": {"type": "worker"}}',
            'TF_CONFIG cluster "worker" must be a list of "host:port" addresses',
        ),
        (
            '{"cluster": {}, "task": {"type": "worker"}}',
            'TF_CONFIG cluster lists no "worker" (or "chief") tasks, as in {"cluster": {"worker": ["host1:12345", '
            '"host2:12345"]}, "task": {"type": "worker", "index": 0}}',
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": true}}',
            "TF_CONFIG task index true must be a whole number",
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 3}}',
            'TF_CONFIG task index 3 is out of range: the cluster has 3 "worker" tasks (index 0..2)',
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
            'TF_CONFIG task index 1 is out of range: the cluster has 1 "worker" task (index 0..0)',
        ),
    ],
    ids=[
        "two-chiefs",
        "port-0",
        "port-65536",
        "not-a-string",
        "no-addresses",
        "no-jobs",
        "bool-index",
        "index-3",
        "one-task",
    ],
)
def test_parse_tf_config_messages_by_hand(config: str, message: str) -> None:
    with pytest.raises(NeuralStyleError) as info:
        parse_tf_config(config)
    assert str(info.value) == message
