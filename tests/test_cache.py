"""The on-disk frame cache trusts only complete, verified entries."""

from __future__ import annotations

import pandas as pd

from segmentlab.cache import FrameCache, stable_hash


def frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.5, 2.5], "n": [1, 2], "s": ["a", "b"],
                         "t": pd.to_datetime(["2011-01-01", "2011-02-01"])},
                        index=pd.Index([10, 11], name="customer_id"))


def test_round_trip_keeps_dtypes_and_index(tmp_path):
    cache = FrameCache(tmp_path)
    cache.save("k", {"f": frame()}, {"hello": 1})
    frames, meta = cache.load("k")
    pd.testing.assert_frame_equal(frames["f"], frame())
    assert meta == {"hello": 1}


def test_missing_entry_is_none(tmp_path):
    assert FrameCache(tmp_path).load("absent") is None


def test_corrupt_parquet_is_not_trusted(tmp_path):
    cache = FrameCache(tmp_path)
    cache.save("k", {"f": frame()}, {})
    path = tmp_path / "k.f.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert cache.load("k") is None


def test_entry_without_manifest_is_not_trusted(tmp_path):
    cache = FrameCache(tmp_path)
    cache.save("k", {"f": frame()}, {})
    (tmp_path / "k.json").unlink()  # as if the write was interrupted before the manifest landed
    assert cache.load("k") is None


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_the_customer_summary_is_cached_with_the_data_and_cleaning(tmp_path, transactions):
    from segmentlab.customers import customer_summary
    from segmentlab.schema import Dataset
    from segmentlab.study.experiment import assemble
    from tests.conftest import compose_config

    cfg = compose_config(cache_dir=tmp_path / "cache")
    experiment = assemble(cfg)
    dataset = Dataset(transactions=transactions, ledger=None, data_hash="abc", source="test")
    first = experiment.customer_summary(dataset)
    pd.testing.assert_frame_equal(first, customer_summary(transactions))
    again = experiment.customer_summary(dataset)  # read back from the cache
    pd.testing.assert_frame_equal(again, first)
    assert len(list((tmp_path / "cache" / "customers").glob("*.json"))) == 1
    other = assemble(compose_config("+cleaning.max_quantity=50", cache_dir=tmp_path / "cache"))
    other.customer_summary(dataset)  # another cleaning: another entry
    assert len(list((tmp_path / "cache" / "customers").glob("*.json"))) == 2
