"""A run's landscape vectors: written chunk by chunk, read back in chunks."""

import json
import pathlib
import zlib

import numpy as np
import pytest

from sklandscapes import LandscapeVectorizer, PermutationTest
from sklandscapes.exceptions import DamagedFileWarning
from sklandscapes.experiments import ExperimentError, _folder, _vectors, load_results
from sklandscapes.kernels import feature_weights
from sklandscapes.stats import landscape_norms, mean_landscapes, unit_means

N_LAYERS, N_LEVELS, N_BINS = 3, 2, 11
ROW_BYTES = 8 * N_LAYERS * N_LEVELS * N_BINS
STORED = ["landscapes.crc.json", "landscapes.npy"]


@pytest.fixture
def small_chunks(monkeypatch):
    """3 samples per chunk and panels of 2 chunks: every path runs several times."""
    monkeypatch.setattr(_vectors, "CHUNK_BYTES", 3 * ROW_BYTES)
    monkeypatch.setattr(_vectors, "PANEL_CHUNKS", 2)


def layered_diagrams(rng, n_samples):
    layered = np.empty((n_samples, N_LAYERS, 1), dtype=object)
    for i, layer in np.ndindex(n_samples, N_LAYERS):
        births = rng.random(rng.integers(0, 6)) * 0.5
        layered[i, layer, 0] = np.c_[births, births + rng.random(len(births)) * 0.5]
    return layered


def design():
    """(threshold, network, subsample) keys in the run's order: 2 x 3 x 2."""
    keys = [(t, k, s) for t in (0.5, 0.9) for k in range(3) for s in range(2)]
    return (np.array([key[0] for key in keys]), np.array([key[1] for key in keys]))


def stored(rng, out, n_samples=12):
    layered = layered_diagrams(rng, n_samples)
    vectorizer = LandscapeVectorizer(n_landscapes=N_LEVELS, resolution=N_BINS)
    vectorizer.fit(layered)
    path = _vectors.store_landscapes(out, vectorizer, layered)
    return path, vectorizer, layered


def test_chunks_are_the_vectors_of_all_samples_at_once(rng, tmp_path, small_chunks):
    path, vectorizer, layered = stored(rng, tmp_path, n_samples=10)
    assert _vectors.chunk_rows(N_LAYERS * N_LEVELS * N_BINS) == 3
    np.testing.assert_array_equal(np.load(path), vectorizer.transform(layered))
    assert sorted(p.name for p in tmp_path.iterdir()) == STORED
    record = json.loads((tmp_path / _vectors.CRC_FILE).read_text())
    assert record["shape"] == [10, N_LAYERS * N_LEVELS * N_BINS]
    assert {k: v[0] for k, v in record["chunks"].items()} == {
        "0": 3,
        "3": 6,
        "6": 9,
        "9": 10,
    }
    _vectors.check_landscapes(path, 10)
    assert isinstance(_vectors.open_landscapes(path), np.memmap)


def test_summaries_and_tests_equal_those_of_the_whole_matrix(
    rng, tmp_path, small_chunks
):
    path, vectorizer, _ = stored(rng, tmp_path)
    X = np.load(path)
    thresholds, networks = design()
    shape, grid = vectorizer.shape_, vectorizer.grid_
    summaries = _vectors.summaries(path, thresholds, networks, shape, grid)
    # Bit for bit: the sums add the same rows in the same order.
    np.testing.assert_array_equal(summaries.means, mean_landscapes(X, thresholds)[1])
    means, labels, units = unit_means(X, thresholds, networks)
    np.testing.assert_array_equal(summaries.cell_means, means)
    np.testing.assert_array_equal(summaries.cells.labels, labels)
    np.testing.assert_array_equal(summaries.cells.units, units)
    np.testing.assert_array_equal(
        summaries.kept_norms, landscape_norms(X, shape, grid=grid)
    )
    settings = dict(n_permutations=99, grid=grid, n_layers=N_LAYERS, random_state=0)
    whole = PermutationTest(**settings).fit(X, thresholds, groups=networks)
    cells = summaries.cells
    streamed = PermutationTest(**settings).fit(
        summaries.cell_means,
        cells.labels,
        groups=cells.units,
        n_replicates=cells.counts,
    )
    for name in ("pvalues_", "statistics_", "layer_pvalues_", "layer_statistics_"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(whole, name))
    assert streamed.table_ == whole.table_  # the replicates are counted


def test_gram_matrix_in_blocks_is_the_kernel_up_to_rounding(
    rng, tmp_path, small_chunks
):
    path, vectorizer, _ = stored(rng, tmp_path)
    X = np.load(path)
    weights = feature_weights(X.shape[1], vectorizer.grid_)
    expected = (X * weights) @ X.T
    gram = _vectors.gram_matrix(path, vectorizer.grid_)
    # BLAS sums an entry in an order set by its block's shape: rounding only,
    # a few units of 1e-16 of the largest entry.
    atol = 1e-14 * np.abs(expected).max()
    np.testing.assert_allclose(gram, expected, rtol=0, atol=atol)
    assert not np.array_equal(gram, np.zeros_like(gram))
    some = np.arange(len(X)) % 3 != 1
    kept = _vectors.gram_matrix(path, vectorizer.grid_, samples=some)
    np.testing.assert_allclose(kept, expected[np.ix_(some, some)], rtol=0, atol=atol)
    thresholds, _ = design()
    settings = dict(n_permutations=99, random_state=0)
    linear = PermutationTest(grid=vectorizer.grid_, **settings).fit(X, thresholds)
    precomputed = PermutationTest(kernel="precomputed", **settings)
    precomputed.fit(gram, thresholds)
    np.testing.assert_array_equal(precomputed.pvalues_, linear.pvalues_)
    np.testing.assert_allclose(precomputed.statistics_, linear.statistics_, rtol=1e-12)


def interrupted(rng, out, monkeypatch, after=2):
    """Store, with the vectorizer failing at chunk ``after``; what was set up."""
    layered = layered_diagrams(rng, 12)
    vectorizer = LandscapeVectorizer(n_landscapes=N_LEVELS, resolution=N_BINS)
    vectorizer.fit(layered)
    transform = vectorizer.transform
    calls = []

    def failing(X):
        calls.append(len(X))
        if len(calls) > after:
            raise KeyboardInterrupt
        return transform(X)

    monkeypatch.setattr(vectorizer, "transform", failing)
    with pytest.raises(KeyboardInterrupt):
        _vectors.store_landscapes(out, vectorizer, layered)
    monkeypatch.setattr(
        vectorizer, "transform", lambda X: calls.append(len(X)) or transform(X)
    )
    calls.clear()
    return vectorizer, layered, calls


def test_interrupted_store_keeps_its_chunks(rng, tmp_path, small_chunks, monkeypatch):
    vectorizer, layered, calls = interrupted(rng, tmp_path, monkeypatch)
    record = json.loads((tmp_path / _vectors.PROGRESS_FILE).read_text())
    assert sorted(record["chunks"]) == ["0", "3"]
    assert not (tmp_path / _vectors.LANDSCAPES_FILE).exists()
    path = _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert calls == [3, 3]  # only the two chunks not recorded
    np.testing.assert_array_equal(np.load(path), vectorizer.transform(layered))
    assert sorted(p.name for p in tmp_path.iterdir()) == STORED
    _vectors.check_landscapes(path, 12)


def test_damaged_chunk_of_an_interrupted_store_is_computed_again(
    rng, tmp_path, small_chunks, monkeypatch
):
    vectorizer, layered, calls = interrupted(rng, tmp_path, monkeypatch)
    partial = tmp_path / (_vectors.LANDSCAPES_FILE + _vectors.PARTIAL_SUFFIX)
    data = bytearray(partial.read_bytes())
    data[-12 * ROW_BYTES + 5] ^= 0xFF  # a byte of row 0
    partial.write_bytes(bytes(data))
    with pytest.warns(DamagedFileWarning, match=r"partial.*rows 0-2 differ"):
        path = _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert calls == [3, 3, 3]
    np.testing.assert_array_equal(np.load(path), vectorizer.transform(layered))


def test_damaged_stored_landscapes_are_reported_and_computed_again(
    rng, tmp_path, small_chunks
):
    path, vectorizer, layered = stored(rng, tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"landscapes\.npy.*truncated"):
        _vectors.open_landscapes(path)
    with pytest.warns(DamagedFileWarning, match=r"landscapes\.npy.*truncated"):
        _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert path.read_bytes() == whole
    path.write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=r"landscapes\.npy' cannot be read"):
        _vectors.open_landscapes(path)


def save_with_checksums(path, X):
    """``np.save``, and the record of one chunk that a run writes beside it."""
    np.save(path, X)
    chunk = [len(X), zlib.crc32(np.ascontiguousarray(X, "<f8").tobytes())]
    record = {"shape": list(X.shape), "chunks": {"0": chunk}}
    (path.parent / _vectors.CRC_FILE).write_text(json.dumps(record))


def test_load_results_reads_both_layouts_and_names_bad_files(rng, tmp_path):
    X = rng.random((2, 6))
    np.savez(
        tmp_path / "results.npz",
        thresholds=np.array([0.5, 0.9]),
        config=np.asarray('{"seed": 0}'),
    )
    with pytest.raises(ValueError, match=r"landscapes\.npy' is missing"):
        load_results(tmp_path)
    save_with_checksums(tmp_path / "landscapes.npy", X)
    results = load_results(tmp_path)
    assert isinstance(results["landscapes"], np.memmap)
    np.testing.assert_array_equal(results["landscapes"], X)
    assert results["config"] == {"seed": 0}
    # Written before landscapes.npy existed: the vectors are in results.npz.
    old = tmp_path / "old"
    old.mkdir()
    np.savez(old / "results.npz", landscapes=X, thresholds=np.array([0.5, 0.9]))
    np.testing.assert_array_equal(load_results(old)["landscapes"], X)
    np.savez(old / "results.npz", landscapes=X, thresholds=np.array([0.5]))
    with pytest.raises(ValueError, match=r"holds 2 landscape vectors for 1 samples"):
        load_results(old)
    np.savez(old / "results.npz", landscapes=X)
    with pytest.raises(ValueError, match=r"results\.npz' cannot be read.*thresholds"):
        load_results(old)
    (old / "results.npz").write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises(ValueError, match=r"old/results\.npz' cannot be read"):
        load_results(old)


def flip_a_byte(path, row):
    """Flip a byte of row ``row`` of a stored file of 12 rows."""
    data = bytearray(path.read_bytes())
    data[len(data) - (12 - row) * ROW_BYTES + 5] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_byte_in_a_finished_file_is_found_and_computed_again(
    rng, tmp_path, small_chunks, monkeypatch
):
    path, vectorizer, layered = stored(rng, tmp_path)
    whole = path.read_bytes()
    flip_a_byte(path, 4)
    with pytest.raises(ValueError, match=r"^rows 3-5 differ from their CRC-32"):
        _vectors.check_landscapes(path, 12)
    calls = []
    transform = vectorizer.transform
    monkeypatch.setattr(
        vectorizer, "transform", lambda X: calls.append(len(X)) or transform(X)
    )
    with pytest.warns(
        DamagedFileWarning, match=r"landscapes\.npy' is damaged .*rows 3-5 differ"
    ):
        assert _vectors.store_landscapes(tmp_path, vectorizer, layered) == path
    assert calls == [3, 3, 3, 3]
    assert path.read_bytes() == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == STORED
    # An intact file is reused: read, checked, nothing computed.
    calls.clear()
    _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert calls == []


@pytest.mark.parametrize(
    "damage, error",
    [
        (
            lambda record: record.unlink(),
            r"checksums \(landscapes\.crc\.json\) are "
            "missing",
        ),
        (lambda record: record.write_text("{}"), "unreadable: expected a JSON object"),
        (
            lambda record: record.write_text(
                json.dumps({"shape": [12, 66], "chunks": {"0": [12, 1]}})
            ),
            r"^rows 0-11 differ from their CRC-32",
        ),
        (
            lambda record: record.write_text(
                json.dumps({"shape": [12, 66], "chunks": {"0": [6, 1]}})
            ),
            "does not record its 12 rows end to end",
        ),
    ],
    ids=["missing", "malformed", "wrong-crc", "not-every-row"],
)
def test_finished_file_without_its_checksums_is_computed_again(
    rng, tmp_path, small_chunks, damage, error
):
    path, vectorizer, layered = stored(rng, tmp_path)
    whole = path.read_bytes()
    damage(tmp_path / _vectors.CRC_FILE)
    with pytest.raises(ValueError, match=error):
        _vectors.check_landscapes(path, 12)
    with pytest.warns(DamagedFileWarning, match=r"landscapes\.npy' is damaged"):
        _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert path.read_bytes() == whole
    _vectors.check_landscapes(path, 12)


def test_load_results_refuses_damaged_or_foreign_landscapes(
    rng, tmp_path, small_chunks
):
    path, _, _ = stored(rng, tmp_path)
    np.savez(tmp_path / "results.npz", thresholds=np.repeat([0.5, 0.9], 6))
    np.testing.assert_array_equal(load_results(tmp_path)["landscapes"], np.load(path))
    whole = path.read_bytes()
    flip_a_byte(path, 11)
    with pytest.raises(
        ValueError,
        match=r"landscapes\.npy' cannot be used: ValueError: rows 9-11 "
        r"differ from their CRC-32 in landscapes\.crc\.json",
    ):
        load_results(tmp_path)
    path.write_bytes(whole[: len(whole) - ROW_BYTES // 2])
    with pytest.raises(ValueError, match=r"landscapes\.npy' cannot be used.*truncated"):
        load_results(tmp_path)
    path.write_bytes(whole)
    np.savez(tmp_path / "results.npz", thresholds=np.repeat([0.5, 0.9], 5))
    with pytest.raises(
        ValueError,
        match=r"landscapes\.npy' cannot be used: ValueError: it holds 12 x 66 "
        r"values, expected 10 x 66 \(results\.npz has 10 samples\)",
    ):
        load_results(tmp_path)


def test_a_file_that_ends_inside_a_chunk_names_the_row_it_reached(tmp_path):
    path = tmp_path / "rows.bin"
    path.write_bytes(np.arange(4 * 3 + 1, dtype="<f8").tobytes())
    with open(path, "rb") as handle:
        with pytest.raises(ValueError, match=r"ended inside row 4, reading rows 3-5"):
            _vectors._read_rows(handle, 0, 3, 3, 6)
        with pytest.raises(ValueError, match=r"ended before row 7, reading row 7"):
            _vectors._read_rows(handle, 0, 2, 7, 8)


@pytest.mark.parametrize(
    "text",
    [
        '{"shape": [12, 66], "chunks": [[0, 3, 1]]}',
        '{"shape": [12, 66], "chunks": {"0": 3}}',
        '{"shape": [12, 66], "chunks": {"0": [3, 1, 2]}}',
        '{"shape": [12, 66], "chunks": {"zero": [3, 1]}}',
        '{"shape": [12, 66], "chunks": {"9": [13, 1]}}',
        '{"shape": [12, 66]}',
        "[1, 2]",
        "not JSON",
    ],
)
def test_malformed_progress_record_is_reported_and_started_over(
    rng, tmp_path, small_chunks, monkeypatch, text
):
    vectorizer, layered, calls = interrupted(rng, tmp_path, monkeypatch)
    (tmp_path / _vectors.PROGRESS_FILE).write_text(text)
    with pytest.warns(
        DamagedFileWarning,
        match=r"landscapes\.progress\.json' is damaged .*; starting "
        r"landscapes\.npy\.partial over",
    ):
        path = _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert calls == [3, 3, 3, 3]
    np.testing.assert_array_equal(np.load(path), vectorizer.transform(layered))
    assert sorted(p.name for p in tmp_path.iterdir()) == STORED


def test_chunks_recorded_with_another_chunk_size_are_computed_again(
    rng, tmp_path, small_chunks, monkeypatch
):
    vectorizer, layered, calls = interrupted(rng, tmp_path, monkeypatch)
    monkeypatch.setattr(_vectors, "CHUNK_BYTES", 4 * ROW_BYTES)
    path = _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert calls == [4, 4, 4]  # chunk 0-2 of 3 rows is not one of 4
    _vectors.check_landscapes(path, 12)


def test_run_ended_before_the_rename_keeps_every_chunk(
    rng, tmp_path, small_chunks, monkeypatch
):
    layered = layered_diagrams(rng, 12)
    vectorizer = LandscapeVectorizer(n_landscapes=N_LEVELS, resolution=N_BINS)
    vectorizer.fit(layered)
    replace = _vectors.os.replace

    def interrupted_rename(source, target):
        if pathlib.Path(target).name == _vectors.LANDSCAPES_FILE:
            raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(_vectors.os, "replace", interrupted_rename)
    with pytest.raises(KeyboardInterrupt):
        _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "landscapes.crc.json",
        "landscapes.npy.partial",
        "landscapes.progress.json",
    ]
    monkeypatch.setattr(_vectors.os, "replace", replace)
    transform, calls = vectorizer.transform, []
    monkeypatch.setattr(
        vectorizer, "transform", lambda X: calls.append(len(X)) or transform(X)
    )
    path = _vectors.store_landscapes(tmp_path, vectorizer, layered)
    assert calls == []
    np.testing.assert_array_equal(np.load(path), vectorizer.transform(layered))
    assert sorted(p.name for p in tmp_path.iterdir()) == STORED


def test_a_file_held_open_is_named_when_it_cannot_be_deleted(
    rng, tmp_path, small_chunks, monkeypatch
):
    """Windows refuses to delete a mapped file; PermissionError stands in."""
    path, vectorizer, layered = stored(rng, tmp_path)
    unlink = pathlib.Path.unlink

    def held_open(self, missing_ok=False):
        if self.name == _vectors.LANDSCAPES_FILE:
            raise PermissionError(13, "The process cannot access the file")
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", held_open)
    held = r"landscapes\.npy' cannot be deleted .*held open.*del result\.landscapes"
    with pytest.raises(ExperimentError, match=held):
        _folder.clear_run(tmp_path)
    flip_a_byte(path, 0)
    with pytest.warns(DamagedFileWarning), pytest.raises(ExperimentError, match=held):
        _vectors.store_landscapes(tmp_path, vectorizer, layered)
