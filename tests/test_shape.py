"""The shape checks of the JSON files read back: mirror.shape.problem, and the receipt and inventory loaders
that use it (a damaged file is one UsageError naming the field, never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mirror import shape
from mirror.delta import INVENTORY_FORMAT, load_baseline
from mirror.errors import UsageError
from mirror.receipt import RECEIPT_FORMAT, Receipt

SHAPE = {"id": str, "n?": int, "tags": [str], "map?": {str: (str, None)}, "sub?": {"flag": bool}}


@pytest.mark.parametrize("doc, found", [
    ({"id": "a", "tags": []}, None),
    ({"id": "a", "tags": ["x"], "n": 3, "map": {"k": None, "j": "v"}, "sub": {"flag": False}, "extra": 1}, None),
    ([], "the top level is not an object"),
    ({"tags": []}, "id is missing"),
    ({"id": 1, "tags": []}, "id is not a string"),
    ({"id": "a", "tags": "x"}, "tags is not a list"),
    ({"id": "a", "tags": ["x", 2]}, "tags[1] is not a string"),
    ({"id": "a", "tags": [], "n": True}, "n is not a number"),               # a bool is no number here
    ({"id": "a", "tags": [], "map": {"k": 5}}, "map.k is not a string"),
    ({"id": "a", "tags": [], "sub": {}}, "sub.flag is missing"),
    ({"id": "a", "tags": [], "sub": {"flag": "yes"}}, "sub.flag is not true or false"),
])
def test_problem_names_the_first_field_that_does_not_fit(doc: Any, found: str | None) -> None:
    assert shape.problem(doc, SHAPE) == found


def receipt_doc() -> dict[str, Any]:
    return {"format": RECEIPT_FORMAT, "target": {"registry": "harbor.corp", "base": "airgap-images"},
            "hosts": {"docker.io": "docker.io"}, "bundles": ["b1"], "blobs": ["sha256:aa"],
            "artifacts": [{"kind": "image", "source": "docker.io/library/nginx:1.25", "digest": "sha256:bb",
                           "target": "harbor.corp/airgap-images/docker.io/library/nginx:1.25"}]}


def write(tmp_path: Path, doc: Any) -> Path:
    p = tmp_path / "f.json"
    p.write_text(json.dumps(doc))
    return p


def test_receipt_loads_and_tolerates_keys_a_newer_tool_adds(tmp_path: Path) -> None:
    doc = receipt_doc()
    doc["target"]["added_later"] = True
    doc["artifacts"][0]["added_later"] = 1
    r = Receipt.load(write(tmp_path, doc))
    assert r.target.base == "airgap-images" and r.artifacts[0].digest == "sha256:bb"


@pytest.mark.parametrize("damage, found", [
    (lambda d: d.update(target="harbor.corp"), "target is not an object"),
    (lambda d: d["artifacts"][0].pop("digest"), "artifacts[0].digest is missing"),
    (lambda d: d.update(hosts=["docker.io"]), "hosts is not an object"),
    (lambda d: d.update(blobs=3), "blobs is not a list"),
])
def test_damaged_receipt_is_one_usage_error(tmp_path: Path, damage: Any, found: str) -> None:
    doc = receipt_doc()
    damage(doc)
    for load in (Receipt.load, load_baseline):
        with pytest.raises(UsageError) as e:
            load(str(write(tmp_path, doc)))
        assert e.value.what == f"the receipt is damaged: {found}" and "import --receipt" in e.value.hint


@pytest.mark.parametrize("damage, found", [
    ({"blobs": "sha256:aa"}, "blobs is not a list"),
    ({"platforms": [["sha256:aa", "linux/amd64"]]}, "platforms is not an object"),
    ({"repositories": {"r": {"tags": ["1.0"]}}}, "repositories.r.tags is not an object"),
])
def test_damaged_inventory_is_one_usage_error(tmp_path: Path, damage: dict[str, Any], found: str) -> None:
    doc = {"format": INVENTORY_FORMAT, "target": {"registry": "h", "base": "b"}, "blobs": ["sha256:aa"],
           "platforms": {"sha256:aa": "linux/amd64"}, "repositories": {"r": {"tags": {"1.0": "sha256:bb"}}}}
    assert load_baseline(str(write(tmp_path, doc))).blobs == {"sha256:aa"}
    with pytest.raises(UsageError) as e:
        load_baseline(str(write(tmp_path, {**doc, **damage})))
    assert e.value.what == f"the inventory is damaged: {found}" and "airgap-mirror inventory" in e.value.hint
