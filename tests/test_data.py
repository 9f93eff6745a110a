"""Tests of gan.data: reading, validating and atomically writing shower files."""

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan.data import ShowerFileError, Showers, ShowerWriter, count_showers, iter_showers, read_showers, write_showers

SMALL = (5, 5, 4)  # grid for tests where the 25^3 geometry is not the point
SHARED_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "g4_electrons_10-250GeV.h5"


def fake(n, cells=SMALL, seed=0, extras=True):
    """n plausible showers: sparse non-negative cells, energies 10-250 GeV."""
    rng = np.random.default_rng(seed)
    ecal = rng.exponential(0.01, (n, *cells)).astype(np.float32)
    ecal[rng.random(ecal.shape) < 0.7] = 0
    energy = rng.uniform(10, 250, n).astype(np.float32)
    if not extras:
        return Showers(ecal, energy)
    return Showers(ecal, energy, g4_cpu_s=rng.uniform(0.03, 0.9, n).astype(np.float32),
                   theta=rng.uniform(1.0, 2.1, n).astype(np.float32))


def raw_file(path, **datasets):
    """An HDF5 file holding exactly ``datasets`` (no checks), for foreign or broken layouts."""
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f[name] = data
    return path


def assert_same(a: Showers, b: Showers):
    np.testing.assert_array_equal(a.ecal, b.ecal)
    np.testing.assert_array_equal(a.energy, b.energy)
    for name in ("g4_cpu_s", "theta"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------- round trips and layouts


def test_round_trip_project_layout(tmp_path):
    showers = fake(20, cells=(25, 25, 25))
    path = tmp_path / "out.h5"
    write_showers(path, showers, generator="unit test", attrs={"seed": 7, "note": "tiny"})
    back = read_showers(path)
    assert_same(back, showers)
    assert back.ecal.dtype == back.energy.dtype == np.float32
    assert back.ecal.shape == (20, 25, 25, 25) and back.ecal.flags.c_contiguous
    with h5py.File(path) as f:
        assert sorted(f) == ["ECAL", "energy", "g4_cpu_s", "theta"]
        ecal = f["ECAL"]
        assert ecal.dtype == np.float32 and ecal.chunks == (16, 25, 25, 25)
        assert ecal.compression == "gzip" and ecal.shuffle
        assert f.attrs["generator"] == "unit test" and f.attrs["seed"] == 7 and f.attrs["note"] == "tiny"
        assert "GeV" in f.attrs["units"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]  # no temporary file left


def test_round_trip_pair_with_channel_axis_and_float64(tmp_path):
    showers = fake(6, extras=False)
    path = tmp_path / "pair.h5"
    write_showers(path, (showers.ecal[..., None].astype(np.float64), showers.energy.astype(np.float64)),
                  cells=SMALL)
    back = read_showers(path, cells=SMALL)
    assert_same(back, showers)
    assert back.g4_cpu_s is None and back.theta is None


def test_overwrites_existing_target(tmp_path):
    path = tmp_path / "out.h5"
    write_showers(path, fake(4, seed=1), cells=SMALL)
    write_showers(path, fake(3, seed=2), cells=SMALL)
    assert_same(read_showers(path, cells=SMALL), fake(3, seed=2))


def test_reads_cern_eleescan_layout(tmp_path):
    showers = fake(7, cells=(25, 25, 25), extras=False)
    target = np.zeros((7, 4))
    target[:, 1] = showers.energy
    path = raw_file(tmp_path / "EleEscan_1_1.h5", ECAL=showers.ecal.astype(np.float64), target=target)
    back = read_showers(path)
    assert_same(back, showers)
    assert back.ecal.dtype == np.float32 and back.energy.dtype == np.float32


def test_reads_cern_angle_layout_with_channel_axis(tmp_path):
    showers = fake(9, cells=(25, 25, 25), extras=False)
    theta = np.linspace(1.0, 2.0, 9)
    path = raw_file(tmp_path / "angle.h5", ECAL=showers.ecal[..., None], energy=showers.energy[:, None],
                    theta=theta)
    back = read_showers(path)
    assert back.ecal.shape == (9, 25, 25, 25)
    np.testing.assert_array_equal(back.ecal, showers.ecal)
    np.testing.assert_array_equal(back.energy, showers.energy)
    np.testing.assert_array_equal(back.theta, theta.astype(np.float32))
    assert back.g4_cpu_s is None


def test_other_grid_only_when_asked(tmp_path):
    showers = fake(3, cells=(6, 6, 5))
    path = tmp_path / "wide.h5"
    write_showers(path, showers, cells=(6, 6, 5))
    with pytest.raises(ShowerFileError, match=r"wide\.h5: ECAL has shape \(3, 6, 6, 5\) but expected "
                       r"\(N, 25, 25, 25\)"):
        read_showers(path)
    assert_same(read_showers(path, cells=(6, 6, 5)), showers)
    assert_same(read_showers(path, cells=None), showers)


# ----------------------------------------------------------------------------- selection and streaming


@pytest.fixture
def forty(tmp_path):
    showers = fake(40)
    path = tmp_path / "forty.h5"
    write_showers(path, showers, cells=SMALL)
    return path, showers


def test_energy_range_and_max_events(forty):
    path, showers = forty
    lo, hi = 50.0, 150.0
    mask = (showers.energy >= lo) & (showers.energy <= hi)
    assert 0 < mask.sum() < 40
    assert_same(read_showers(path, energy_range=(lo, hi), cells=SMALL), showers.select(mask))
    assert count_showers(path, energy_range=(lo, hi), cells=SMALL) == mask.sum()
    assert count_showers(path, cells=SMALL) == 40
    assert count_showers(path, energy_range=(300, 400), cells=SMALL) == 0
    assert_same(read_showers(path, max_events=7, cells=SMALL), showers.select(slice(0, 7)))
    assert_same(read_showers(path, energy_range=(lo, hi), max_events=3, cells=SMALL),
                showers.select(np.flatnonzero(mask)[:3]))
    assert_same(read_showers(path, start=30, cells=SMALL), showers.select(slice(30, None)))
    late = np.flatnonzero(mask & (np.arange(40) >= 20))[:2]
    assert_same(read_showers(path, start=20, energy_range=(lo, hi), max_events=2, cells=SMALL),
                showers.select(late))
    with pytest.raises(ShowerFileError, match=r"forty\.h5: no events at or after event 40 \(of 40\)"):
        read_showers(path, start=40, cells=SMALL)
    # bounds are inclusive
    e = float(showers.energy[5])
    assert_same(read_showers(path, energy_range=(e, e), cells=SMALL), showers.select([5]))


def test_streaming_chunk_sizes_and_concatenation(forty):
    path, showers = forty
    batches = list(iter_showers(path, chunk_size=6, cells=SMALL))
    assert [len(b) for b in batches] == [6] * 6 + [4]
    assert_same(Showers.concatenate(batches), read_showers(path, cells=SMALL))
    assert_same(Showers.concatenate(batches), showers)


def test_selection_spanning_chunk_boundaries(tmp_path):
    showers = fake(70)
    showers.energy[:] = 20.0
    picked = [3, 15, 16, 17, 31, 32, 33, 34, 47, 48, 66, 69]  # around the 16-event HDF5 chunks
    showers.energy[picked] = 200.0
    path = tmp_path / "sel.h5"
    write_showers(path, showers, cells=SMALL)
    for chunk_size in (1, 2, 5, 12, 100):
        batches = list(iter_showers(path, chunk_size=chunk_size, energy_range=(100, 300), cells=SMALL))
        assert [len(b) for b in batches[:-1]] == [chunk_size] * (len(batches) - 1)
        assert_same(Showers.concatenate(batches), showers.select(picked))


@pytest.fixture
def ecal_reads(monkeypatch):
    """Records the row range of every read of an ECAL dataset."""
    reads = []
    original = h5py.Dataset.__getitem__

    def recording(self, key):
        if self.name == "/ECAL":
            assert isinstance(key, slice), key
            reads.append((key.start, key.stop))
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    return reads


def test_reads_only_the_needed_rows(tmp_path, ecal_reads):
    showers = fake(160)
    showers.energy[:] = 20.0
    showers.energy[[150, 152, 159]] = 200.0
    path = tmp_path / "big.h5"
    write_showers(path, showers, cells=SMALL)

    assert_same(read_showers(path, energy_range=(100, 300), chunk_size=2, cells=SMALL),
                showers.select([150, 152, 159]))
    assert ecal_reads and all(start >= 150 and stop <= 160 for start, stop in ecal_reads)

    ecal_reads.clear()
    count_showers(path, cells=SMALL)
    assert ecal_reads == []

    ecal_reads.clear()
    batches = iter_showers(path, chunk_size=8, cells=SMALL)
    assert ecal_reads == []  # nothing read before the first batch is asked for
    assert_same(next(batches), showers.select(slice(0, 8)))
    batches.close()
    assert ecal_reads == [(0, 8)]

    ecal_reads.clear()
    read_showers(path, max_events=5, chunk_size=4, cells=SMALL)
    assert ecal_reads == [(0, 4), (4, 5)]


def test_sparse_selection_reads_small_slabs(tmp_path, ecal_reads):
    showers = fake(200)
    showers.energy[:] = 20.0
    picked = list(range(0, 200, 40))  # far apart: one small slab each
    showers.energy[picked] = 200.0
    path = tmp_path / "sparse.h5"
    write_showers(path, showers, cells=SMALL)
    assert_same(read_showers(path, energy_range=(100, 300), cells=SMALL), showers.select(picked))
    assert sum(stop - start for start, stop in ecal_reads) == len(picked)


@pytest.fixture(scope="module")
def property_file(tmp_path_factory):
    rng = np.random.default_rng(3)
    showers = fake(45, seed=3)
    showers.energy[:] = rng.choice([10.0, 50.0, 100.0, 100.5, 180.0, 250.0], 45)  # ties on the bounds
    path = tmp_path_factory.mktemp("prop") / "prop.h5"
    write_showers(path, showers, cells=SMALL)
    return path, showers


@settings(max_examples=40, deadline=None)
@given(lo=st.sampled_from([5.0, 10.0, 50.0, 75.0, 100.0, 100.5, 180.0, 250.0]),
       width=st.floats(0, 260, allow_nan=False), chunk_size=st.integers(1, 50),
       max_events=st.none() | st.integers(1, 50))
def test_selection_matches_numpy_mask(property_file, lo, width, chunk_size, max_events):
    path, showers = property_file
    hi = lo + width
    wanted = np.flatnonzero((showers.energy >= lo) & (showers.energy <= hi))[:max_events]
    kwargs = dict(energy_range=(lo, hi), max_events=max_events, chunk_size=chunk_size, cells=SMALL)
    if len(wanted) == 0:
        with pytest.raises(ShowerFileError, match="no events with energy in"):
            read_showers(path, **kwargs)
        return
    batches = list(iter_showers(path, **kwargs))
    assert all(len(b) == chunk_size for b in batches[:-1]) and 0 < len(batches[-1]) <= chunk_size
    assert_same(Showers.concatenate(batches), showers.select(wanted))
    assert_same(read_showers(path, **kwargs), showers.select(wanted))


# ----------------------------------------------------------------------------- bad files


def _valid(path, n=10, cells=(25, 25, 25), **change):
    showers = fake(n, cells=cells, seed=4, extras=False)
    data = {"ECAL": showers.ecal, "energy": showers.energy, **change}
    return raw_file(path, **{k: v for k, v in data.items() if v is not None})


def _with_cell(value, event, cell=(1, 2, 3)):
    ecal = fake(10, cells=(25, 25, 25), seed=4, extras=False).ecal
    ecal[(event, *cell)] = value
    return ecal


def _truncated(path):
    write_showers(path, fake(40, cells=(25, 25, 25)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_chunks(path):
    write_showers(path, fake(64, cells=(25, 25, 25)))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    return path


BAD_FILES = {
    "no_ecal": (lambda p: _valid(p, ECAL=None, foo=np.zeros(3)),
                "missing dataset 'ECAL' (found: energy, foo)"),
    "no_energy": (lambda p: _valid(p, energy=None), "missing dataset 'energy'"),
    "ecal_3d": (lambda p: _valid(p, ECAL=np.zeros((10, 25, 25), np.float32)),
                "ECAL has shape (10, 25, 25) but expected (N, 25, 25, 25)"),
    "ecal_grid": (lambda p: _valid(p, ECAL=np.zeros((10, 51, 51, 25), np.float32)),
                  "ECAL has shape (10, 51, 51, 25) but expected (N, 25, 25, 25)"),
    "ecal_channels": (lambda p: _valid(p, ECAL=np.zeros((10, 25, 25, 25, 2), np.float32)),
                      "ECAL has shape (10, 25, 25, 25, 2) but expected"),
    "nan": (lambda p: _valid(p, ECAL=_with_cell(np.nan, 7)),
            "ECAL contains NaN/inf in event 7 at cell (1, 2, 3) (value nan)"),
    "inf": (lambda p: _valid(p, ECAL=_with_cell(np.inf, 8)),
            "ECAL contains NaN/inf in event 8 at cell (1, 2, 3) (value inf)"),
    "negative_cell": (lambda p: _valid(p, ECAL=_with_cell(-0.3, 4)),
                      "negative cell energy -0.3 GeV in event 4 at cell (1, 2, 3)"),
    "negative_energy": (lambda p: _valid(p, energy=np.array([50, 60, -5, 70, 80, 90, 1, 2, 3, 4], np.float32)),
                        "primary energy must be > 0 GeV (event 2: -5.0)"),
    "zero_energy": (lambda p: _valid(p, energy=np.array([50, 60, 70, 80, 90, 0, 1, 2, 3, 4], np.float32)),
                    "primary energy must be > 0 GeV (event 5: 0.0)"),
    "nan_energy": (lambda p: _valid(p, energy=np.array([50, 60, 70, np.nan, 9, 1, 1, 2, 3, 4], np.float32)),
                   "primary energy is NaN/inf (event 3: nan)"),
    "empty": (lambda p: _valid(p, ECAL=np.zeros((0, 25, 25, 25), np.float32), energy=np.zeros(0, np.float32)),
              "file is empty (0 events)"),
    "length_mismatch": (lambda p: _valid(p, energy=np.full(9, 50, np.float32)),
                        "ECAL has 10 events but energy has 9"),
    "cpu_mismatch": (lambda p: _valid(p, g4_cpu_s=np.ones(11, np.float32)),
                     "ECAL has 10 events but g4_cpu_s has 11"),
    "bad_target": (lambda p: _valid(p, energy=None, target=np.ones(10)),
                   "target has shape (10,) but expected (N, 4)"),
    "string_energy": (lambda p: _valid(p, energy=np.array([b"x"] * 10)), "energy has dtype"),
    "truncated": (_truncated, "not a readable HDF5 file (truncated or corrupt)"),
    "garbage": (lambda p: p.write_bytes(b"this is not HDF5\n" * 200) and p,
                "not a readable HDF5 file (truncated or corrupt)"),
    "corrupt_chunks": (_corrupt_chunks, "(truncated or corrupt file)"),
    "missing": (lambda p: p, "file not found"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_raises_shower_file_error(tmp_path, case):
    make, phrase = BAD_FILES[case]
    path = tmp_path / f"bad_{case}.h5"
    make(path)
    with pytest.raises(ShowerFileError) as err:
        read_showers(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert phrase in message
    assert err.value.path == str(path)
    assert err.value.__cause__ is None  # no h5py traceback chained to it


def test_layout_errors_raise_when_iter_showers_is_called(tmp_path):
    path = _valid(tmp_path / "x.h5", energy=None)
    with pytest.raises(ShowerFileError, match="missing dataset 'energy'"):
        iter_showers(path)
    with pytest.raises(ShowerFileError, match="missing dataset 'energy'"):
        count_showers(path)


def test_nothing_in_energy_range(forty):
    path, _ = forty
    with pytest.raises(ShowerFileError, match=r"forty\.h5: no events with energy in \[300, 400\] GeV"):
        read_showers(path, energy_range=(300, 400), cells=SMALL)


def test_bad_cell_error_names_absolute_event_and_skips_unread_events(tmp_path):
    showers = fake(30)
    showers.ecal[3, 0, 0, 0] = np.nan
    showers.ecal[21, 0, 0, 0] = np.inf
    showers.energy[:] = 20.0
    showers.energy[20:] = 200.0
    path = raw_file(tmp_path / "late.h5", ECAL=showers.ecal, energy=showers.energy)
    batches = iter_showers(path, chunk_size=4, energy_range=(100, 300), cells=SMALL)
    with pytest.raises(ShowerFileError, match=r"NaN/inf in event 21 "):
        list(batches)
    assert len(read_showers(path, energy_range=(100, 300), max_events=1, cells=SMALL)) == 1
    with pytest.raises(ShowerFileError, match=r"NaN/inf in event 3 "):
        read_showers(path, chunk_size=2, cells=SMALL)


def test_error_is_a_value_error_and_pickles(tmp_path):
    err = ShowerFileError(tmp_path / "a.h5", "file not found")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == f"{tmp_path / 'a.h5'}: file not found"


def test_bad_arguments():
    with pytest.raises(ValueError, match="chunk_size"):
        iter_showers("whatever.h5", chunk_size=0)
    with pytest.raises(ValueError, match="max_events"):
        read_showers("whatever.h5", max_events=0)
    with pytest.raises(ValueError, match="start"):
        read_showers("whatever.h5", start=-1)
    with pytest.raises(ValueError, match="energy_range"):
        read_showers("whatever.h5", energy_range=(200, 100))


# ----------------------------------------------------------------------------- writing: checks and atomicity


BAD_DATA = {
    "nan": (lambda s: s.ecal.__setitem__((2, 0, 0, 0), np.nan), "ECAL contains NaN/inf in event 2"),
    "inf": (lambda s: s.ecal.__setitem__((1, 0, 0, 0), np.inf), "ECAL contains NaN/inf in event 1"),
    "negative_cell": (lambda s: s.ecal.__setitem__((3, 1, 1, 1), -0.3), "negative cell energy -0.3 GeV in event 3"),
    "negative_energy": (lambda s: s.energy.__setitem__(4, -5.0), "primary energy must be > 0 GeV (event 4: -5.0)"),
    "nan_theta": (lambda s: s.theta.__setitem__(0, np.nan), "theta contains NaN/inf in event 0"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_write_rejects_bad_data_without_touching_disk(tmp_path, case):
    spoil, phrase = BAD_DATA[case]
    showers = fake(6)
    spoil(showers)
    path = tmp_path / "target.h5"
    with pytest.raises(ShowerFileError, match="target.h5: ") as err:
        write_showers(path, showers, cells=SMALL)
    assert phrase in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_bad_shapes(tmp_path):
    path = tmp_path / "target.h5"
    showers = fake(4)
    with pytest.raises(ShowerFileError, match=r"target\.h5: ECAL has shape \(4, 5, 5, 4\) but expected "
                       r"\(N, 25, 25, 25\)"):
        write_showers(path, showers)
    with pytest.raises(ShowerFileError, match="target.h5: ECAL has 4 events but energy has 3"):
        write_showers(path, (showers.ecal, showers.energy[:3]), cells=SMALL)
    with pytest.raises(ShowerFileError, match="target.h5: nothing to write"):
        write_showers(path, (showers.ecal[:0], showers.energy[:0]), cells=SMALL)
    with pytest.raises(ShowerFileError, match="cannot store attribute 'bad'"):
        write_showers(path, showers, cells=SMALL, attrs={"bad": {"nested": 1}})
    with pytest.raises(TypeError):
        write_showers(path, showers.ecal, cells=SMALL)
    assert list(tmp_path.iterdir()) == []


def test_writer_streams_batches(tmp_path):
    path = tmp_path / "stream.h5"
    parts = [fake(n, seed=n) for n in (5, 16, 1, 9)]
    with ShowerWriter(path, cells=SMALL, generator="stream test") as writer:
        for part in parts:
            writer.append(part.ecal[..., None], part.energy, g4_cpu_s=part.g4_cpu_s, theta=part.theta)
            assert not path.exists()  # only published on a clean exit
        assert len(writer) == 31
    assert_same(read_showers(path, cells=SMALL), Showers.concatenate(parts))
    with h5py.File(path) as f:
        assert f["ECAL"].chunks == (16, *SMALL) and f.attrs["generator"] == "stream test"
    assert [p.name for p in tmp_path.iterdir()] == ["stream.h5"]


def test_writer_nan_in_second_batch_leaves_nothing(tmp_path):
    path = tmp_path / "stream.h5"
    bad = fake(4, seed=2)
    bad.ecal[1, 2, 2, 2] = np.nan
    with pytest.raises(ShowerFileError, match=r"stream\.h5: ECAL contains NaN/inf in event 6 "), \
            ShowerWriter(path, cells=SMALL) as writer:
        writer.append(fake(5).ecal, fake(5).energy)
        writer.append(bad.ecal, bad.energy)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failure", ["user_error", "bad_batch", "h5py_error", "no_events", "field_mismatch"])
def test_failed_write_keeps_existing_target(tmp_path, monkeypatch, failure):
    path = tmp_path / "keep.h5"
    write_showers(path, fake(3, seed=9), cells=SMALL)
    before = path.read_bytes()
    good = fake(5)
    with pytest.raises((ShowerFileError, RuntimeError)), ShowerWriter(path, cells=SMALL) as writer:
        if failure == "no_events":
            pass  # exit cleanly without appending anything
        elif failure == "user_error":
            writer.append(good.ecal, good.energy)
            raise RuntimeError("interrupted by the caller")
        elif failure == "bad_batch":
            writer.append(good.ecal, -good.energy)
        elif failure == "field_mismatch":
            writer.append(good.ecal, good.energy, theta=good.theta)
            writer.append(good.ecal, good.energy)
        else:
            writer.append(good.ecal, good.energy)

            def disk_full(self, key, value):
                raise OSError("No space left on device")

            monkeypatch.setattr(h5py.Dataset, "__setitem__", disk_full)
            writer.append(good.ecal, good.energy)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.h5"]


def test_writer_broken_by_a_failed_write_refuses_to_publish(tmp_path, monkeypatch):
    path = tmp_path / "half.h5"
    good = fake(5)
    def io_error(self, key, value):
        raise OSError("I/O error")

    with pytest.raises(ShowerFileError, match="an earlier append failed"), \
            ShowerWriter(path, cells=SMALL) as writer:
        writer.append(good.ecal, good.energy)
        with monkeypatch.context() as m, pytest.raises(ShowerFileError, match="cannot write: I/O error"):
            m.setattr(h5py.Dataset, "__setitem__", io_error)
            writer.append(good.ecal, good.energy)
    assert list(tmp_path.iterdir()) == []


def test_writer_misuse(tmp_path):
    writer = ShowerWriter(tmp_path / "w.h5", cells=SMALL)
    good = fake(2)
    with pytest.raises(RuntimeError, match="inside its 'with' block"):
        writer.append(good.ecal, good.energy)
    with pytest.raises(TypeError, match="unknown per-event field"), ShowerWriter(tmp_path / "w.h5", cells=SMALL) as w:
        w.append(good.ecal, good.energy, phi=good.energy)
    with pytest.raises(ShowerFileError, match=r"w\.h5: cannot create file"), \
            ShowerWriter(tmp_path / "no_such_dir" / "w.h5"):
        pass
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- Showers


def test_showers_container():
    a, b = fake(3, seed=1), fake(4, seed=2)
    both = Showers.concatenate([a, b])
    assert len(both) == 7
    assert_same(both.select(slice(3, None)), b)
    assert_same(both.select(np.array([True, False, True, False, False, False, False])), a.select([0, 2]))
    with pytest.raises(ValueError, match="different optional fields"):
        Showers.concatenate([a, fake(2, extras=False)])
    with pytest.raises(ValueError, match="nothing to concatenate"):
        Showers.concatenate([])
    with pytest.raises(ValueError, match="ECAL has 3 events but energy has 2"):
        Showers(a.ecal, a.energy[:2])
    with pytest.raises(ValueError, match="ECAL has shape"):
        Showers(a.ecal[0], a.energy)


# ----------------------------------------------------------------------------- the shared Geant4 file


@pytest.mark.shared
def test_reads_shared_geant4_file():
    if not SHARED_FILE.exists():
        pytest.skip(f"shared Geant4 data set not present at {SHARED_FILE}")
    showers = read_showers(SHARED_FILE, max_events=32, chunk_size=16)
    assert showers.ecal.shape == (32, 25, 25, 25) and showers.ecal.dtype == np.float32
    assert showers.energy.shape == (32,) and showers.g4_cpu_s.shape == (32,)
    assert showers.theta is None
    assert np.all((showers.energy >= 10) & (showers.energy <= 250))  # GeV
    sampling = showers.ecal.sum(axis=(1, 2, 3)) / showers.energy  # both in GeV
    assert 0.02 < sampling.mean() < 0.03
    assert np.all(showers.g4_cpu_s > 0)
    assert count_showers(SHARED_FILE) >= 32
