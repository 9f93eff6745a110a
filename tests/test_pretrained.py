"""gan.pretrained: the CERN download (corrupt cache fetched again, size bounded), extrapolation warnings."""

import hashlib
import io

import pytest

from gan import pretrained
from gan.weights import WeightFileError

PAYLOAD = b"pretend CERN weights" * 100


@pytest.fixture
def cern(tmp_path, monkeypatch):
    """No CERN weights anywhere, a cache in tmp_path, and a fake server serving PAYLOAD (pinned)."""
    served = {"body": PAYLOAD, "calls": 0}

    def urlopen(url, timeout):
        served["calls"] += 1
        return io.BytesIO(served["body"])

    monkeypatch.delenv("CALOGAN_CERN_WEIGHTS", raising=False)
    monkeypatch.setenv("CALOGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CALOGAN_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setattr(pretrained, "CERN_SHA256", hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setattr(pretrained.urllib.request, "urlopen", urlopen)
    return served


def test_download_is_checked_and_cached(cern):
    path = pretrained.fetch_cern_weights()
    assert path.read_bytes() == PAYLOAD and cern["calls"] == 1
    assert pretrained.fetch_cern_weights() == path and cern["calls"] == 1  # cached
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_a_corrupt_cached_download_is_fetched_again(cern):
    path = pretrained.fetch_cern_weights()
    path.write_bytes(PAYLOAD[:100])  # truncated, as after a full disk
    with pytest.raises(WeightFileError, match="fetches it again"):
        pretrained.find_cern_weights()
    assert pretrained.fetch_cern_weights() == path and path.read_bytes() == PAYLOAD and cern["calls"] == 2


def test_an_oversized_download_is_refused(cern, monkeypatch):
    monkeypatch.setattr(pretrained, "CERN_MAX_BYTES", len(PAYLOAD) - 1)
    with pytest.raises(WeightFileError, match="download exceeds"):
        pretrained.fetch_cern_weights()
    assert not (pretrained.cache_dir()).exists() or not any(pretrained.cache_dir().iterdir())


def test_a_wrong_download_is_refused(cern):
    cern["body"] = b"something else"
    with pytest.raises(WeightFileError, match="sha256 differs"):
        pretrained.fetch_cern_weights()
    assert not any(pretrained.cache_dir().iterdir())


@pytest.mark.parametrize(("model", "lo", "hi", "warned"), [
    ("default", 10, 250, False), ("default", 5000, 6000, True), ("cern2017", 100, 500, False),
    ("cern2017", 10, 250, True), ("mine.h5", 5, 100, True)])
def test_extrapolation_warning(model, lo, hi, warned):
    message = pretrained.extrapolation_warning(model, lo, hi)
    assert (message is not None) == warned
    if model == "mine.h5":
        assert "assumed" in message


def test_shared_folder_is_configured_not_found_from_the_source_file(tmp_path, monkeypatch):
    monkeypatch.delenv("CALOGAN_SHARED", raising=False)
    repo = tmp_path / "checkout"
    (repo / "sub" / "deeper").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    assert pretrained.shared_dir(repo / "sub" / "deeper") == tmp_path / "shared"  # beside the repository
    assert pretrained.shared_dir(tmp_path / "elsewhere") == tmp_path / "shared"  # no repository: ../shared
    monkeypatch.chdir(repo / "sub")
    assert pretrained.shared_dir() == tmp_path / "shared"
    monkeypatch.setenv("CALOGAN_SHARED", str(tmp_path / "mine"))
    assert pretrained.shared_dir() == tmp_path / "mine"
    assert pretrained.shared_data_file("x.h5") == tmp_path / "mine" / "data" / "x.h5"
