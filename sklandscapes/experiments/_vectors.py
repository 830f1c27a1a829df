"""The landscape stage, streamed: vectors stored chunk by chunk, read back in chunks.

A run never holds the matrix of every landscape vector: it writes the rows of
``chunk_rows`` samples at a time to ``landscapes.npy`` in the run folder, then
computes what the analysis needs from chunks read back: the mean of every
threshold, the mean of every (threshold, network) (all that the test with the
network as the unit needs), the kept levels' norms, and the Gram matrix of the
samples for the paper's test. Memory is then a few chunks, the Gram matrix
(samples x samples) and the means, whatever the number of samples.

While it is being written, the file is ``landscapes.npy.partial`` with its
header and full length from the start; every chunk is written in place and
synced, then recorded with its CRC-32 in ``landscapes.progress.json``
(atomically), so that an interrupted run keeps the chunks recorded and a
damaged one is computed again. Once complete, the record of every chunk is
written to ``landscapes.crc.json`` (atomically), then the file is renamed to
``landscapes.npy``: a reader sees the whole file or none, and the checksums
stay beside it. A run that reuses the file, and :func:`load_results`, check
every chunk against them first (one sequential read), as the zip CRC of
``results.npz`` checked the vectors when they were stored there.
"""

import dataclasses
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from sklandscapes._io import atomic_write
from sklandscapes._relabelings import ReplicateCells
from sklandscapes.experiments import _folder
from sklandscapes.kernels import feature_weights
from sklandscapes.stats import landscape_norms

LANDSCAPES_FILE = "landscapes.npy"
PARTIAL_SUFFIX = ".partial"
PROGRESS_FILE = "landscapes.progress.json"
# The CRC-32 of every chunk of the finished file, kept beside it.
CRC_FILE = "landscapes.crc.json"
# Bytes of one chunk of rows: what is computed, written and read at a time.
CHUNK_BYTES = 64 * 2**20
# Chunks read at once as the left side of a block of the Gram matrix: each
# pass over the file gives that many chunks' rows of the matrix.
PANEL_CHUNKS = 4
_DTYPE = np.dtype("<f8")


def chunk_rows(n_features):
    """Samples per chunk: ``CHUNK_BYTES`` of rows, at least one."""
    return max(1, CHUNK_BYTES // (_DTYPE.itemsize * max(n_features, 1)))


def chunks(n_samples, rows):
    """``(start, stop)`` of every chunk of ``rows`` samples, in order."""
    return [
        (start, min(start + rows, n_samples)) for start in range(0, n_samples, rows)
    ]


# --------------------------------------------------------------------------
# Reading


def read_header(path):
    """Shape and data offset of a ``.npy`` file of float64 rows, or ValueError.

    Also checks that the file is as long as its header says, so that a
    truncated file is found before its rows are read.
    """
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(handle)
        else:
            header = np.lib.format.read_array_header_2_0(handle)
        shape, fortran_order, dtype = header
        offset = handle.tell()
    if dtype != _DTYPE or fortran_order or len(shape) != 2:
        raise ValueError(
            f"expected a C-ordered 2-D float64 array, got dtype {dtype}, shape "
            f"{shape}{', Fortran order' if fortran_order else ''}"
        )
    expected = offset + shape[0] * shape[1] * _DTYPE.itemsize
    size = os.path.getsize(path)
    if size != expected:
        raise ValueError(
            f"the file has {size} bytes, its header ({shape[0]} x {shape[1]} "
            f"float64) says {expected}: it is truncated or was not written whole"
        )
    return shape, offset


def _read_rows(handle, offset, n_features, start, stop):
    """Rows ``start:stop`` read from an open file: a fresh array, no mapping.

    A memory map's pages would count in the process's memory for as long as
    it is open; read chunks are freed with their array.
    """
    rows = np.empty((stop - start, n_features), dtype=_DTYPE)
    handle.seek(offset + start * n_features * _DTYPE.itemsize)
    view = memoryview(rows).cast("B")
    done = 0
    while done < len(view):
        got = handle.readinto(view[done:])
        if not got:
            reached, part = divmod(done, n_features * _DTYPE.itemsize)
            raise ValueError(
                f"{os.fspath(handle.name)!r} ended {'inside' if part else 'before'} "
                f"row {start + reached}, reading {_rows_text(start, stop)}: it is "
                "truncated"
            )
        done += got
    return rows


def _rows_text(start, stop):
    """The rows ``start:stop`` in words, both ends included: "rows 3-5"."""
    return f"row {start}" if stop - start == 1 else f"rows {start}-{stop - 1}"


def iter_chunks(path, rows=None):
    """``(start, rows)`` of every chunk of the stored landscapes, in order."""
    (n_samples, n_features), offset = read_header(path)
    rows = chunk_rows(n_features) if rows is None else rows
    with open(path, "rb") as handle:
        for start, stop in chunks(n_samples, rows):
            yield start, _read_rows(handle, offset, n_features, start, stop)


def open_landscapes(path):
    """The stored landscapes as a read-only memory map of the file.

    Only the header and the length are checked (a file that is not whole
    float64 rows is an error naming it); :func:`check_landscapes` checks the
    bytes. While the map is open, the file cannot be deleted on Windows.
    """
    path = Path(path)
    try:
        read_header(path)
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} cannot be read as landscape vectors "
            f"({_folder.describe(exc)}); run the experiment again with --resume "
            "to compute it again"
        ) from exc


def check_landscapes(path, n_samples, n_features=None):
    """Raise ValueError unless ``path`` is whole and every chunk has its CRC-32.

    The checksums are those of ``landscapes.crc.json`` beside the file
    (written before the file got its name); the file must hold ``n_samples``
    rows (of ``n_features`` when given). One sequential read; the message
    names the rows whose bytes differ.
    """
    path = Path(path)
    (rows, columns), offset = read_header(path)
    if rows != n_samples or n_features not in (None, columns):
        expected = f"{n_samples} x {columns if n_features is None else n_features}"
        raise ValueError(f"it holds {rows} x {columns} values, expected {expected}")
    record = path.with_name(CRC_FILE)
    try:
        recorded = _read_record(record, (rows, columns))
    except FileNotFoundError:
        raise ValueError(f"its checksums ({CRC_FILE}) are missing") from None
    except ValueError as exc:
        raise ValueError(f"its checksums ({CRC_FILE}) are unreadable: {exc}") from exc
    ends = [0] + [stop for stop, _ in recorded.values()]
    if list(recorded) != ends[:-1] or ends[-1] != rows:
        raise ValueError(f"{CRC_FILE} does not record its {rows} rows end to end")
    _, damaged = _check_chunks(path, offset, columns, recorded)
    if damaged:
        raise ValueError(
            ", ".join(_rows_text(start, stop) for start, stop in damaged)
            + f" differ from their CRC-32 in {CRC_FILE}"
        )


def _read_record(record, shape):
    """The chunks of a CRC record, ``{start: (stop, crc)}`` by start.

    A record of another shape, or that is not of the form written, is a
    ValueError.
    """
    text = json.loads(record.read_text())
    if not isinstance(text, dict) or not isinstance(text.get("chunks"), dict):
        raise ValueError("expected a JSON object with an object 'chunks'")
    if text.get("shape") != list(shape):
        raise ValueError(f"it is the record of shape {text.get('shape')!r}")
    recorded = {}
    for start, entry in text["chunks"].items():
        try:
            first, (stop, crc) = int(start), entry
            if not all(type(v) is int for v in (stop, crc)):
                raise TypeError
        except (TypeError, ValueError):
            raise ValueError(f"chunk {start!r}: {entry!r} is not [stop, crc]") from None
        if not 0 <= first < stop <= shape[0]:
            raise ValueError(f"chunk {start!r} ends at {stop!r}, out of the rows")
        recorded[first] = (stop, crc)
    return dict(sorted(recorded.items()))


def _check_chunks(path, offset, n_features, recorded):
    """The recorded chunks whose bytes have their CRC-32, and the others.

    ``recorded`` is ``{start: (stop, crc)}`` by start: one sequential read.
    """
    intact, damaged = {}, []
    with open(path, "rb") as handle:
        for start, (stop, crc) in recorded.items():
            rows = _read_rows(handle, offset, n_features, start, stop)
            if zlib.crc32(memoryview(rows).cast("B")) == crc:
                intact[start] = (stop, crc)
            else:
                damaged.append((start, stop))
    return intact, damaged


# --------------------------------------------------------------------------
# Writing


def store_landscapes(out, vectorizer, diagrams):
    """Write the landscape vectors of ``diagrams`` to ``landscapes.npy``.

    ``vectorizer`` is fitted on all the diagrams; its ``transform`` gives a
    chunk's rows bit for bit as it gives them for all at once (every row is
    computed from its own diagrams). A stored file is kept if it has the
    run's shape and every chunk still has the CRC-32 recorded in
    ``landscapes.crc.json`` (:func:`check_landscapes`); otherwise it is
    reported (``DamagedFileWarning``, naming the file and the rows that
    differ), deleted and computed again. So is every chunk of an interrupted
    run whose bytes do not match its record. Returns the path.
    """
    out = Path(out)
    path = out / LANDSCAPES_FILE
    n_features = int(np.prod(vectorizer.shape_))
    shape = (len(diagrams), n_features)
    partial = out / (LANDSCAPES_FILE + PARTIAL_SUFFIX)
    progress = out / PROGRESS_FILE
    if path.exists():
        try:
            check_landscapes(path, *shape)
            # Left if a run ended between the rename and this file's removal.
            progress.unlink(missing_ok=True)
            return path
        except (OSError, ValueError, EOFError) as exc:
            _folder.report_damaged(path, exc)
            _folder.remove_file(path)
    offset, done = _resume_partial(partial, progress, shape)
    layout = chunks(shape[0], chunk_rows(n_features))
    # Only chunks of this layout are kept, so that the record tiles the rows.
    done = {a: done[a] for a, b in layout if done.get(a, (None,))[0] == b}
    with open(partial, "r+b") as handle:
        for start, stop in layout:
            if start in done:
                continue
            values = np.ascontiguousarray(
                vectorizer.transform(diagrams[start:stop]), dtype=_DTYPE
            )
            data = memoryview(values).cast("B")
            _write_at(handle, offset + start * n_features * _DTYPE.itemsize, data)
            done[start] = (stop, zlib.crc32(data))
            _record_progress(progress, shape, done)
    # The checksums first: a landscapes.npy always has its own beside it.
    _record_progress(out / CRC_FILE, shape, done)
    os.replace(partial, path)
    progress.unlink(missing_ok=True)
    return path


def _write_at(handle, position, data):
    """Write ``data`` at ``position`` and sync it, before it is recorded."""
    handle.seek(position)
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())


def _record_progress(record, shape, done):
    """Write the chunks ``done``, ``{start: (stop, crc)}``, to ``record``."""
    chunks_done = {str(start): list(done[start]) for start in sorted(done)}
    text = json.dumps({"shape": list(shape), "chunks": chunks_done}).encode()
    atomic_write(record, lambda handle: handle.write(text))


def _resume_partial(partial, progress, shape):
    """The data offset of the partial file and its chunks that check out.

    A partial file of another shape, or without a record, starts over; so
    does one whose record is unreadable or malformed (reported). A recorded
    chunk whose CRC-32 differs is reported and left out.
    """
    try:
        stored, offset = read_header(partial)
        if tuple(stored) == shape:
            try:
                recorded = _read_record(progress, shape)
            except ValueError as exc:  # FileNotFoundError: no record, no warning
                _folder.report_damaged(
                    progress, exc, action=f"starting {partial.name} over"
                )
                return _new_partial(partial, shape), {}
            intact, damaged = _check_chunks(partial, offset, shape[1], recorded)
            if damaged:
                _folder.report_damaged(
                    partial,
                    ValueError(
                        ", ".join(_rows_text(a, b) for a, b in damaged)
                        + " differ from their record"
                    ),
                    action="computing those rows again",
                )
            return offset, intact
    except FileNotFoundError:
        pass
    except (OSError, ValueError, EOFError) as exc:
        _folder.report_damaged(partial, exc, action="starting it over")
    return _new_partial(partial, shape), {}


def _new_partial(partial, shape):
    """Create the partial file: its header, and its full length (no data)."""
    header = {"descr": _DTYPE.str, "fortran_order": False, "shape": shape}
    with open(partial, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        offset = handle.tell()
        handle.truncate(offset + shape[0] * shape[1] * _DTYPE.itemsize)
    return offset


# --------------------------------------------------------------------------
# What the analysis needs, from chunks


@dataclasses.dataclass
class Summaries:
    """What the analysis needs from the landscape vectors, made from chunks.

    ``labels`` and ``means``: every threshold and its mean vector, as
    :func:`~sklandscapes.stats.mean_landscapes` gives them. ``cells``: the
    (threshold, network) cells of replicates (input subsamples), and
    ``cell_means`` their means, in the cells' order (by threshold, then
    network). ``kept_norms``: the grid norm of the kept levels of every
    sample and layer (:func:`~sklandscapes.stats.landscape_norms`).
    """

    labels: np.ndarray
    means: np.ndarray
    cells: ReplicateCells
    cell_means: np.ndarray
    kept_norms: np.ndarray


def summaries(path, thresholds, networks, shape, grid):
    """One pass over the stored landscapes: every mean and norm of the analysis.

    The sums add the rows one by one in sample order, as ``np.add.at`` does
    on the whole matrix, so the means are the same bit for bit.
    """
    labels, inverse, counts = np.unique(
        thresholds, return_inverse=True, return_counts=True
    )
    cells = ReplicateCells.from_samples(thresholds, networks)
    n_features = int(np.prod(shape))
    sums = np.zeros((len(labels), n_features))
    cell_sums = np.zeros((len(cells.counts), n_features))
    kept = np.empty((len(thresholds), shape[0]))
    for start, rows in iter_chunks(path):
        stop = start + len(rows)
        np.add.at(sums, inverse.ravel()[start:stop], rows)
        np.add.at(cell_sums, cells.of_sample[start:stop], rows)
        kept[start:stop] = landscape_norms(rows, shape, grid=grid)
    return Summaries(
        labels=labels,
        means=sums / counts[:, None],
        cells=cells,
        cell_means=cell_sums / cells.counts[:, None],
        kept_norms=kept,
    )


def gram_matrix(path, grid, samples=None):
    """The landscape kernel's Gram matrix of the stored samples (or ``samples``).

    ``K[i, j] = sum_f w_f x_if x_jf`` with the quadrature of
    :func:`~sklandscapes.kernels.feature_weights`, in blocks: a panel of
    ``PANEL_CHUNKS`` chunks at a time against itself and every later chunk,
    each product ``P`` stored at its place and its transpose at the mirrored
    place. ``samples`` (a boolean mask) keeps some rows and columns only.
    BLAS rounds an entry according to the shape of the product it is part
    of, so the entries differ from those of one product of the whole matrix
    in their last bits (a relative 1e-16 or so); for a given run they do not
    change.

    Every entry outside the square blocks of one chunk on the diagonal is
    stored with its mirror from the same number, so they are equal. Within
    such a block both places get both: the later write, ``P.T``, leaves
    ``K[i, j] = P[j, i]`` and ``K[j, i] = P[i, j]``, which are
    ``(w x_j) . x_i`` and ``(w x_i) . x_j``, equal up to rounding only. So
    ``K`` is symmetric up to a relative 1e-16 or so there, far inside the
    1e-10 that :class:`~sklandscapes.stats.PermutationTest` allows for a
    precomputed kernel; the test reads ``K`` as it is (the fast presets'
    ``paper_statistics`` digests pin these very numbers).
    """
    (n_samples, n_features), offset = read_header(path)
    keep = np.ones(n_samples, bool) if samples is None else np.asarray(samples)
    position = np.full(n_samples, -1)
    position[keep] = np.arange(keep.sum())
    weights = feature_weights(n_features, grid)
    rows = chunk_rows(n_features)
    gram = np.empty((int(keep.sum()), int(keep.sum())))
    with open(path, "rb") as handle:

        def kept_rows(start, stop):
            block = _read_rows(handle, offset, n_features, start, stop)
            mine = position[start:stop]
            if (mine < 0).any():
                block, mine = block[mine >= 0], mine[mine >= 0]
            return block, mine

        for start, stop in chunks(n_samples, rows * PANEL_CHUNKS):
            panel, mine = kept_rows(start, stop)
            panel *= weights
            for later, end in chunks(n_samples - start, rows):
                block, theirs = kept_rows(start + later, start + end)
                product = panel @ block.T
                gram[np.ix_(mine, theirs)] = product
                # Within the panel, this overwrites the chunk's square block
                # on the diagonal with the transposed product: symmetric up
                # to rounding there (see the docstring).
                gram[np.ix_(theirs, mine)] = product.T
    return gram


# --------------------------------------------------------------------------
# Reading a run's results

# The arrays of results.npz that hold JSON text.
_JSON_FIELDS = ("config", "observations", "timings", "timing_history")


def load_results(out):
    """The results of a run folder: ``results.npz``, and the landscapes lazily.

    Parameters
    ----------
    out : str or Path
        The run folder (``--out``) of :func:`run_experiment`.

    Returns
    -------
    results : dict
        Every array of ``results.npz`` (``thresholds``, ``networks``,
        ``norms``, ``pvalues``, ...), with ``config``, ``observations``,
        ``timings`` and ``timing_history`` decoded from their JSON, and
        ``landscapes``: a read-only memory map of the file
        ``landscapes.npy`` (``mmap_mode="r"``; one row per sample, read from
        disk as used), after every chunk of it was checked against its
        CRC-32 in ``landscapes.crc.json``. While the map is open the file
        stays open: on Windows, a run with ``force=True`` or ``resume=True``
        on the same folder cannot delete it until the map is released
        (``del results``, or ``del results["landscapes"]``). A
        ``results.npz`` written before the landscapes were stored beside it
        holds them itself; they are then read from it, into memory.

    Raises
    ------
    ValueError
        Naming the file, when ``results.npz`` or ``landscapes.npy`` is
        missing, damaged or not whole, when a chunk of ``landscapes.npy``
        differs from its checksum, or when its rows are not one per sample
        of ``results.npz`` (``thresholds``). Wrong numbers are never
        returned.

    Examples
    --------
    >>> import tempfile
    >>> from sklandscapes.experiments import load_results, make_config, run_experiment
    >>> config = make_config(
    ...     "synthetic", n_networks=2, widths=(2, 16, 16, 2), thresholds=(0.6, 0.7),
    ...     lr=1e-2, batch_size=64, max_epochs=40, spacing=0.05,
    ...     sublattice_step=2, n_landscapes=5, resolution=51, n_permutations=99)
    >>> out = run_experiment(config, tempfile.mkdtemp(), verbose=0).out
    >>> results = load_results(out)
    >>> results["landscapes"].shape == (len(results["thresholds"]), 4 * 5 * 51)
    True
    >>> type(results["landscapes"]).__name__, results["config"]["n_networks"]
    ('memmap', 2)
    """
    out = Path(out)
    results = _read_npz(out / "results.npz")
    n_samples = len(results["thresholds"])
    if "landscapes" in results:  # written before landscapes.npy existed
        rows = len(results["landscapes"])
        if rows != n_samples:
            raise ValueError(
                f"{os.fspath(out / 'results.npz')!r} holds {rows} landscape "
                f"vectors for {n_samples} samples (thresholds): it is not whole"
            )
        return results
    landscapes = out / LANDSCAPES_FILE
    if not landscapes.exists():
        raise ValueError(
            f"{os.fspath(landscapes)!r} is missing: a run stores its landscape "
            "vectors there, beside results.npz; run the experiment with --resume "
            "to compute it again"
        )
    try:
        check_landscapes(landscapes, n_samples)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(
            f"{os.fspath(landscapes)!r} cannot be used: {_folder.describe(exc)} "
            f"(results.npz has {n_samples} samples); run the experiment with "
            "--resume to compute it again"
        ) from exc
    results["landscapes"] = open_landscapes(landscapes)
    return results


def _read_npz(path):
    """Every array of a run's ``results.npz``, its JSON fields decoded."""
    try:
        with open(path, "rb") as handle, np.load(handle) as stored:
            results = {name: stored[name] for name in stored.files}
        for name in _JSON_FIELDS:
            if name in results:
                results[name] = json.loads(str(results[name]))
        if "thresholds" not in results:
            raise ValueError("it has no 'thresholds' array, which every run stores")
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} cannot be read ({_folder.describe(exc)}); run "
            "the experiment with --resume to write it again"
        ) from exc
    return results
