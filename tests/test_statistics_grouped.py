"""pipeline.statistics.grouped.by_group against the pandas groupby it stands in for."""

import numpy as np
import pandas as pd

from pipeline.statistics.grouped import KEYS, by_group


def test_by_group_is_pandas_groupby():
    """The same keys and frames (rows, index, columns) as ``groupby(KEYS, sort=False)`` on
    random tables: missing keys, no group column, repeated and shuffled index, empty."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(0, 40))
        frame = pd.DataFrame(
            {
                "outcome": rng.choice(["a", "b", None, "c"], n),
                "score": rng.choice(["x", "y"], n),
                "pre_value": rng.normal(size=n),
                "post_value": rng.normal(size=n),
            },
            index=rng.integers(0, 10, n),
        )
        if trial % 2:
            frame["group"] = rng.choice(["all", "g1", np.nan], n).astype(object)
            expected = frame
        else:
            expected = frame.assign(group="all")
        ours = list(by_group(frame))
        theirs = list(expected.groupby(KEYS, sort=False))
        assert len(ours) == len(theirs)
        for (key, rows), (their_key, their_rows) in zip(ours, theirs):
            assert key == dict(zip(KEYS, their_key))
            pd.testing.assert_frame_equal(rows, their_rows, check_exact=True)
