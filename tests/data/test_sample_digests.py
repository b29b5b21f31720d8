"""Every sample store is built the same on every machine: a fresh download (the generated twin) and
preprocess of each dataset gives the content digest committed in sample_store_digests.json. A
machine whose libraries build a different store fails here instead of silently changing the
tables. After a deliberate change to a twin or a reader, the failure prints the new digest."""
import copy
import json
from pathlib import Path

import pytest

from pipeline.data import prepare
from pipeline.data.store import content_digest

DIGESTS = json.loads((Path(__file__).with_name("sample_store_digests.json")).read_text())


def test_every_sample_dataset_has_a_digest(params):
    assert sorted(DIGESTS) == sorted(params["datasets"])


@pytest.mark.parametrize("dataset", sorted(DIGESTS))
def test_a_fresh_sample_store_has_the_committed_digest(params, tmp_path, dataset):
    p = copy.deepcopy(params)
    assert p["profile"] == "sample" and p["data"]["source"] == "sample"
    p["data"]["root"] = str(tmp_path / "data")
    prepare.download(p, dataset)
    digest = content_digest(prepare.preprocess(p, dataset))
    assert digest == DIGESTS[dataset], f"{dataset}: a fresh sample store has content digest {digest}"
