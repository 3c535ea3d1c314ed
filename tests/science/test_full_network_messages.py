"""The streamed full network's refusal when no node is kept (mfa.engine.analyze_table's sentence,
prefixed with the checkpoint and the network it concerns)."""
import re

import pytest

import neuromfa_native as nm
from paths import DATA


def test_full_network_with_no_kept_node_says_which_network_and_why():
    src = DATA / "neox_tiny" / "step0"
    with pytest.raises(ValueError) as err:
        nm.analyze_sample(src, None, per_layer=None, min_edges=10**6, node_dimension=False)
    assert re.fullmatch(r".*step0, full network: no node kept: no node has min_edges=1000000 weights with "
                        r"1/150 <= \|w\| < 1", str(err.value))
