"""The shared encodings (peak2motif.sequences) and the split-file format (peak2motif.splitfiles)."""

import numpy as np
from peak2motif.sequences import (
    codes_from_one_hot,
    decode,
    encode,
    one_hot,
    one_hot_seq,
    reverse_complement,
)
from peak2motif.splitfiles import append_split, create_split, read_split, write_split


def test_encode_reads_soft_masked_bases_and_maps_iupac_to_n():
    assert encode("ACGTacgt").tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert set(encode("NRYSWKMBDHVn-").tolist()) == {4}
    assert encode(b"GATTACA").tolist() == encode("GATTACA").tolist()


def test_one_hot_shape_order_and_n_rows():
    x = one_hot_seq("ACGTN")
    assert x.shape == (5, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:4], np.eye(4))
    assert x[4].sum() == 0
    assert decode(codes_from_one_hot(x)) == "ACGTN"


def test_reverse_complement_of_one_hot():
    x = one_hot(encode("AACGTN"))[None]
    assert decode(codes_from_one_hot(reverse_complement(x))[0]) == "NACGTT"


def test_split_file_roundtrip_and_chunked_append(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, size=(10, 8)).astype(np.uint8)
    labels = rng.random((10, 2)).astype(np.float32)
    idx = np.arange(10, 20)
    write_split(tmp_path / "a.h5", codes, labels, idx, ["t1", "t2"], "multitask", chunk_rows=3)
    with create_split(tmp_path / "b.h5", 8, ["t1", "t2"], "multitask", chunk_rows=3) as h5:
        for lo in range(0, 10, 4):
            append_split(h5, codes[lo:lo + 4], labels[lo:lo + 4], idx[lo:lo + 4])
    a, b = read_split(tmp_path / "a.h5"), read_split(tmp_path / "b.h5")
    for d in (a, b):
        np.testing.assert_array_equal(d.codes, codes)
        np.testing.assert_array_equal(d.labels, labels)
        np.testing.assert_array_equal(d.region_index, idx)
        assert d.tasks == ["t1", "t2"] and d.task_type == "multitask"
        assert d.sequence_length == 8
