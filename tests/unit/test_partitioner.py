from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from chat_events.producers.partitioner import CachedMurmur2Partitioner


@given(st.binary(min_size=1, max_size=100), st.integers(min_value=1, max_value=64))
def test_same_partition_as_the_default_partitioner(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert CachedMurmur2Partitioner()(key, partitions, partitions) == expected
    assert CachedMurmur2Partitioner()(key, partitions, partitions) == expected  # cached path
