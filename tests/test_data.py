"""tf_tsembed.tslib_data and examples.data: the CSV reader against pandas (what TSLib reads files
with), its refusals, the scaler against scikit-learn's rule, TSLib's train-split scaler per
--data, and the frequency inferred from the dates."""

import bz2
import gzip
import io
import lzma
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from examples import data, recipes
from tf_tsembed import tslib_data

ETT_LIKE = (
    "date,HUFL,HULL,OT\n"
    "2016-07-01 00:00:00,5.827,2.009,30.531\n"
    "2016-07-01 01:00:00,5.693,2.076,27.787\n"
    "2016-07-01 02:00:00,5.157,1.741,27.787\n"
)
# exchange_rate.csv as TSLib distributes it: unpadded `Y/M/D H:M` dates, a numbered header.
EXCHANGE_LIKE = (
    "date,0,1,2,OT\n"
    "1990/1/1 0:00,0.7855,1.611,0.861,0.5335\n"
    "1990/1/2 0:00,0.7818,1.61,0.861,0.5309\n"
)


def _write(tmp_path, text, name="series.csv", encoding="utf-8", compress=None):
    raw = text.encode(encoding)
    if compress == "zip":
        path = os.path.join(str(tmp_path), name)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("inner.csv", raw)
        return path
    raw = {None: lambda b: b, "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[
        compress
    ](raw)
    return _write_bytes(tmp_path, raw, name)


def _write_bytes(tmp_path, raw, name="series.csv"):
    path = os.path.join(str(tmp_path), name)
    with open(path, "wb") as file:
        file.write(raw)
    return path


def _as_pandas_reads_it(path, **kwargs):
    """TSLib's reading: pd.read_csv, the `date` column through pd.to_datetime."""
    frame = pd.read_csv(path, **kwargs)
    offsets = frame["date"].astype(str).str.contains(r"(?:Z|[+-]\d\d:?\d\d)$").any()
    dates = pd.to_datetime(frame["date"], utc=bool(offsets))
    if dates.dt.tz is not None:
        dates = dates.dt.tz_convert(None)  # dates with offsets are instants, read in UTC
    values = frame.drop(columns="date")
    return dates.to_numpy("datetime64[ns]"), list(values.columns), values.to_numpy(np.float64)


def _assert_reads_as_pandas(path, **pandas_kwargs):
    dates, names, values = tslib_data.read_csv(path)
    expected_dates, expected_names, expected_values = _as_pandas_reads_it(path, **pandas_kwargs)
    np.testing.assert_array_equal(dates, expected_dates)
    assert names == [name.strip() for name in expected_names]
    np.testing.assert_array_equal(values, expected_values)


PANDAS_READS = {
    "ett": (ETT_LIKE, {}),
    "exchange": (EXCHANGE_LIKE, {}),
    "iso-t": (ETT_LIKE.replace("01 0", "01T0"), {}),
    "daily": ("date,a,OT\n2020-01-01,1,2\n2020-01-02,3,4\n2020-01-03,5,6\n", {}),
    "minutes-no-seconds": ("date,OT\n2016-07-01 00:00,1\n2016-07-01 00:15,2\n", {}),
    "hours-only": ("date,OT\n2017-03-01 00,1\n2017-03-01 01,2\n", {}),
    "sub-second": ("date,OT\n2020-01-01 00:00:00.125,1\n2020-01-01 00:00:00.250,2\n", {}),
    "nanoseconds": ("date,OT\n2020-01-01 00:00:00.123456789,1\n2020-01-01 00:00:01.5,2\n", {}),
    "utc-offset": ("date,OT\n2020-01-01 00:00:00+02:00,1\n2020-01-01 01:00:00+02:00,2\n", {}),
    "crlf": (ETT_LIKE.replace("\n", "\r\n"), {}),
    "bom": ("\ufeff" + ETT_LIKE, {}),
    "quoted": ('"date","a b","OT"\n"2020-01-01","1.5","2"\n"2020-01-02","3","4e2"\n', {}),
    "blank-lines": ("date,OT\n2020-01-01,1\n\n2020-01-02,2\n\n\n", {}),
    "white-space-lines": ("date,OT\n2020-01-01,1\n   \n\t\n2020-01-02,2\n \n", {}),
    "number-forms": (
        "date,OT\n2020-01-01,1.\n2020-01-02,.5\n2020-01-03, +1.e5\t\n2020-01-04,-2E-3\n",
        {},
    ),
    "edges-of-datetime64-ns": (
        "date,OT\n1677-09-22 00:00,1\n1970-01-01 00:00,2\n2262-04-11 23:00,3\n",
        {},
    ),
    "spaces-in-fields": ("date,OT\n2020-01-01, 1.5 \n2020-01-02,-2 \n", {}),
    "header-spaces": ("date, a ,OT\n2020-01-01,1,2\n2020-01-02,3,4\n", {}),
    "unpadded-iso": ("date,OT\n2016-7-1 0:00:00,1\n2016-7-2 0:00:00,2\n", {}),
    "no-trailing-newline": ("date,OT\n2020-01-01,1\n2020-01-02,2", {}),
}


@pytest.mark.parametrize("case", sorted(PANDAS_READS))
def test_reads_what_pandas_reads_the_same_way(tmp_path, case):
    text, kwargs = PANDAS_READS[case]
    _assert_reads_as_pandas(_write(tmp_path, text), **kwargs)


@pytest.mark.parametrize("compress", ["gzip", "bz2", "xz", "zip"])
def test_compressed_files_read_as_pandas_reads_them(tmp_path, compress):
    extension = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zip": ".zip"}[compress]
    path = _write(tmp_path, EXCHANGE_LIKE, name="rates.csv" + extension, compress=compress)
    _assert_reads_as_pandas(path)
    # Told by the content: the same bytes under a plain .csv name read the same.
    renamed = os.path.join(str(tmp_path), "rates.csv")
    os.rename(path, renamed)
    np.testing.assert_array_equal(
        tslib_data.read_csv(renamed)[2],
        _as_pandas_reads_it(path := renamed, compression=compress)[2],
    )


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_other_encodings_read_as_pandas_reads_them_when_told(tmp_path, encoding):
    text = "date,Température,OT\n2020-01-01,1.5,2\n2020-01-02,3,4\n"
    path = _write(tmp_path, text, encoding=encoding)
    _assert_reads_as_pandas(path, encoding=encoding)
    assert tslib_data.read_csv(path)[1] == ["Température", "OT"]


REFUSED = {
    "empty-field": (
        "date,a,OT\n2020-01-01,1,2\n2020-01-02,,4\n",
        r"line 3: column 'a' must hold a finite number; got ''",
    ),
    "nan": (
        "date,a,OT\n2020-01-01,1,2\n2020-01-02,3,NaN\n",
        r"line 3: column 'OT' must hold a finite number; got 'NaN'",
    ),
    "na": ("date,OT\n2020-01-01,NA\n", r"line 2: column 'OT' must hold a finite number; got 'NA'"),
    "inf": (
        "date,OT\n2020-01-01,1\n2020-01-02,-inf\n",
        r"line 3: column 'OT' must hold a finite number; got '-inf'",
    ),
    "text": (
        "date,OT\n2020-01-01,1\n2020-01-02,abc\n",
        r"line 3: column 'OT' must hold a finite number; got 'abc'",
    ),
    "thousands": (
        'date,OT\n2020-01-01,"1,234"\n',
        r"line 2: column 'OT' must hold a finite number; got '1,234'",
    ),
    # float() takes these; pandas reads them as text.
    "underscore": (
        "date,OT\n2020-01-01,1\n2020-01-02,1_000\n",
        r"line 3: column 'OT' must hold a finite number; got '1_000'",
    ),
    "arabic-indic-digits": (
        "date,OT\n2020-01-01,\u0661\u0662\n",
        r"line 2: column 'OT' must hold a finite number; got '\u0661\u0662'",
    ),
    "fullwidth-digits": (
        "date,OT\n2020-01-01,\uff11\uff12\n",
        r"line 2: column 'OT' must hold a finite number; got '\uff11\uff12'",
    ),
    "non-breaking-space": (
        "date,OT\n2020-01-01,\xa01.5\n",
        r"line 2: column 'OT' must hold a finite number; got '\\xa01.5'",
    ),
    "overflow": (
        "date,OT\n2020-01-01,1e999\n",
        r"line 2: column 'OT' must hold a finite number; got '1e999'",
    ),
    # A line of delimiters or quotes is a row of NaN to pandas, not a blank line.
    "row-of-commas": (
        "date,a,OT\n2020-01-01,1,2\n,,\n2020-01-03,3,4\n",
        r"line 3: column 'a' must hold a finite number; got ''",
    ),
    "row-of-spaces": (
        "date,a,OT\n2020-01-01,1,2\n , , \n2020-01-03,3,4\n",
        r"line 3: column 'a' must hold a finite number; got ' '",
    ),
    "row-of-quotes": (
        'date,a,OT\n2020-01-01,1,2\n""\n2020-01-03,3,4\n',
        r"line 3: column 'a' must hold a finite number; got ''",
    ),
    "short-row": (
        "date,a,OT\n2020-01-01,1,2\n2020-01-02,3\n",
        r"line 3: expected 3 fields like the header \['date', 'a', 'OT'\]; got 2",
    ),
    "long-row": ("date,OT\n2020-01-01,1\n\n2020-01-02,3,4\n", r"line 4: expected 2 fields"),
    "day-first": (
        "date,OT\n01/07/2016,1\n",
        r"line 2: the `date` field must be a date, year first.*got '01/07/2016'",
    ),
    "not-a-date": (
        "date,OT\nyesterday,1\n",
        r"line 2: the `date` field must be a date.*got 'yesterday'",
    ),
    "month-13": (
        "date,OT\n2020-01-01,1\n2020-13-01,2\n",
        r"line 3: the `date` field '2020-13-01' is not a valid date or time",
    ),
    "hour-25": (
        "date,OT\n1990/1/1 25:00,1\n",
        r"line 2: the `date` field '1990/1/1 25:00' is not a valid date or time",
    ),
    # pandas parses `2016-07-01 05` and `2016-07-01 5:00`, not a one-digit hour alone.
    "one-digit-hour": (
        "date,OT\n2016-07-01 4,1\n2016-07-01 5,2\n",
        r"line 2: the `date` field must be a date.*got '2016-07-01 4'",
    ),
    "one-digit-hour-slashes": (
        "date,OT\n1990/1/1 5,1\n",
        r"line 2: the `date` field must be a date.*got '1990/1/1 5'",
    ),
    # numpy's datetime64[ns] would wrap these around silently (1500 to 2084, 2300 to 1715).
    "year-1500": (
        "date,OT\n1500-01-01,1\n1500-01-02,2\n",
        r"line 2: the `date` field '1500-01-01' is outside the dates datetime64\[ns\] holds, "
        r"1677-09-21 to 2262-04-11",
    ),
    "year-2300": (
        "date,OT\n2262-04-11,1\n2300-01-01 00:00,2\n",
        r"line 3: the `date` field '2300-01-01 00:00' is outside the dates datetime64\[ns\]",
    ),
    "just-before-datetime64-ns": (
        "date,OT\n1677-09-21 00:12:43,1\n",
        r"line 2: the `date` field '1677-09-21 00:12:43' is outside",
    ),
    "repeated-date": (
        "date,OT\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n",
        r"line 4: dates must strictly increase; '2020-01-02' does not come after '2020-01-02' "
        r"\(line 3\)",
    ),
    "decreasing": (
        "date,OT\n2020-01-02,1\n2020-01-01,2\n",
        r"line 3: dates must strictly increase",
    ),
    "no-date-column": (
        "time,OT\n2020-01-01,1\n",
        r"line 1: the header must have a `date` column; got \['time', 'OT'\]",
    ),
    "date-capitalised": ("Date,OT\n2020-01-01,1\n", r"must be called `date`, in lower case"),
    "semicolons": ("date;OT\n2020-01-01;1\n", r"Fields must be separated by commas"),
    "unnamed-column": (
        ",date,OT\n0,2020-01-01,1\n",
        r"line 1: column 1 has no name \(pandas would call it 'Unnamed: 0'",
    ),
    "trailing-comma": ("date,OT,\n2020-01-01,1,\n", r"line 1: column 3 has no name"),
    "repeated-name": (
        "date,OT,OT\n2020-01-01,1,2\n",
        r"column names must be unique; repeated: \['OT'\]",
    ),
    "header-only": ("date,OT\n", r"no data rows after the header"),
    "empty": ("", r"the file is empty; it needs a header with a `date` column"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusals_name_the_file_the_line_and_the_field(tmp_path, case):
    text, message = REFUSED[case]
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as raised:
        tslib_data.read_csv(path)
    assert str(raised.value).startswith(path)


def test_undecodable_and_binary_files_are_refused_clearly(tmp_path):
    zstd = os.path.join(str(tmp_path), "series.csv.zst")
    with open(zstd, "wb") as file:
        file.write(b"\x28\xb5\x2f\xfd" + b"\x00" * 16)
    with pytest.raises(ValueError, match=r"is zstd-compressed.*decompress it first"):
        tslib_data.read_csv(zstd)
    broken = os.path.join(str(tmp_path), "series.csv.gz")
    with open(broken, "wb") as file:
        file.write(b"\x1f\x8b" + b"not really gzip")
    with pytest.raises(ValueError, match=r"starts like a gzip file but does not decompress"):
        tslib_data.read_csv(broken)
    binary = os.path.join(str(tmp_path), "model.csv")
    with open(binary, "wb") as file:
        file.write(b"date,OT\n\x00\x01\x02")
    with pytest.raises(ValueError, match=r"holds NUL bytes: it is not a text CSV file"):
        tslib_data.read_csv(binary)
    archive = os.path.join(str(tmp_path), "two.zip")
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("a.csv", ETT_LIKE)
        handle.writestr("b.csv", ETT_LIKE)
    with pytest.raises(
        ValueError, match=r"must hold exactly one CSV file; it holds \['a.csv', 'b.csv'\]"
    ):
        tslib_data.read_csv(archive)


def _zip(raw):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.csv", raw)
    return buffer.getvalue()


def _broken_deflate(compressed, start):
    """`compressed` with its deflate stream, from byte `start`, overwritten by 0xFF bytes."""
    return compressed[:start] + b"\xff" * 16 + compressed[start + 16 :]


_LONG = (ETT_LIKE * 50).encode()
CORRUPT = {
    "gzip-truncated": ("gzip", lambda: gzip.compress(_LONG)[:-20]),
    "gzip-bad-deflate": ("gzip", lambda: _broken_deflate(gzip.compress(_LONG), 10)),
    "bz2-truncated": ("bz2", lambda: bz2.compress(_LONG)[:-20]),
    "bz2-bad-stream": ("bz2", lambda: _broken_deflate(bz2.compress(_LONG), 10)),
    "xz-truncated": ("xz", lambda: lzma.compress(_LONG)[:-20]),
    "zip-truncated": ("zip", lambda: _zip(_LONG)[:60]),
    "zip-bad-deflate": ("zip", lambda: _broken_deflate(_zip(_LONG), 40)),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_compressed_files_are_refused_naming_the_file_and_compression(tmp_path, case):
    compression, corrupt = CORRUPT[case]
    path = _write_bytes(tmp_path, corrupt(), name="series.csv." + compression)
    with pytest.raises(
        ValueError, match=rf"starts like a {compression} file but does not decompress: \S"
    ) as raised:
        tslib_data.read_csv(path)
    assert str(raised.value).startswith(path)


MISENCODED = {
    # The BOM says UTF-8; line 3 holds Latin-1 'é'. pandas refuses it (UnicodeDecodeError).
    "utf-8-bom-then-latin-1": (
        b"\xef\xbb\xbfdate,OT\n2020-01-01,1\r\n2020-01-02,2\xe9\n",
        r"line 3: starts with a UTF-8 byte order mark but is not UTF-8 \(invalid continuation "
        r"byte, byte 38 of the file\): save it as UTF-8",
    ),
    "utf-16-bom-odd-length": (
        "date,OT\n2020-01-01,1\n".encode("utf-16") + b"\x00",
        r"line 3: starts with a UTF-16 byte order mark but is not UTF-16",
    ),
    # Windows-1252 '€' (0x80): a C1 control character in Latin-1.
    "windows-1252": (
        "date,OT \u20ac\n2020-01-01,1\n".encode("cp1252"),
        r"line 1: is not UTF-8 and byte 0x80 is a control character in Latin-1: the file looks "
        r"like Windows-1252 text \('\u20ac'\); save it as UTF-8",
    ),
    "windows-1252-later-line": (
        "date,OT\n2020-01-01,1\n2020-01-02,2 \u201c\n".encode("cp1252"),
        r"line 3: is not UTF-8 and byte 0x93 is a control character in Latin-1",
    ),
}


@pytest.mark.parametrize("case", sorted(MISENCODED))
def test_misencoded_files_are_refused_naming_the_line(tmp_path, case):
    raw, message = MISENCODED[case]
    path = _write_bytes(tmp_path, raw)
    with pytest.raises(ValueError, match=message) as raised:
        tslib_data.read_csv(path)
    assert str(raised.value).startswith(path)


def test_latin_1_without_c1_bytes_is_still_read(tmp_path):
    path = _write(tmp_path, "date,T (\u00b0C),OT\n2020-01-01,1.5,2\n", encoding="latin-1")
    _assert_reads_as_pandas(path, encoding="latin-1")
    assert tslib_data.read_csv(path)[1] == ["T (\u00b0C)", "OT"]


@pytest.mark.parametrize("compress", ["gzip", "bz2", "xz", "zip"])
def test_compressed_copy_of_a_scripts_file_keeps_its_name_and_freq(tmp_path, compress):
    dates = np.datetime64("2020-01-01T00:00") + np.arange(200) * np.timedelta64(10, "m")
    text = "date,p (mbar),OT\n" + "".join(
        f"{str(date).replace('T', ' ')}:00,{1000 + i % 7},{i % 5}\n" for i, date in enumerate(dates)
    )
    extension = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zip": ".zip"}[compress]
    plain = _write(tmp_path, text, name="weather.csv")
    packed = _write(tmp_path, text, name="weather.csv" + extension, compress=compress)
    assert recipes.data_name(packed) == recipes.data_name(plain) == "weather"
    loaded = [data.load_benchmark(path, None, "M", "OT", None, 8, 4) for path in (plain, packed)]
    # The authors' scripts give weather run.py's 'h' (4 time features), not the dates' '10min'.
    assert [each["freq"] for each in loaded] == ["h", "h"]
    np.testing.assert_array_equal(loaded[0]["marks"], loaded[1]["marks"])
    assert loaded[1]["marks"].shape == (200, 4)


def test_standardize_follows_scikit_learns_rule_for_constant_columns():
    rows = 8640
    rng = np.random.default_rng(0)
    values = np.stack(
        [
            rng.normal(3.0, 2.0, rows),
            np.full(rows, 0.1),  # a sensor stuck at 0.1: numpy's std is ~1e-17, not 0
            np.full(rows, 7.0),  # exactly constant
        ],
        axis=1,
    )
    values[-100:, 1] = 0.5  # it moves after the training rows
    scaled, constant = tslib_data.standardize(values, 8000)
    train = values[:8000]
    # scikit-learn's _is_constant_feature, written out: var <= n eps var + (n mean eps)^2.
    eps = np.finfo(np.float64).eps
    var, mean = train.var(0), train.mean(0)
    expected_constant = var <= 8000 * eps * var + (8000 * mean * eps) ** 2
    np.testing.assert_array_equal(constant, expected_constant)
    np.testing.assert_array_equal(constant, [False, True, True])
    np.testing.assert_allclose(scaled[:, 0], (values[:, 0] - mean[0]) / np.sqrt(var[0]))
    np.testing.assert_allclose(scaled[-1, 1:], [0.4, 0.0], atol=1e-12)  # centred, scale 1
    assert (
        "columns ['stuck', 'flat'] are constant over the training rows"
        in tslib_data.constant_note(["x", "stuck", "flat"], constant)
    )


def test_sub_second_spacing_is_refused_saying_why():
    dates = np.datetime64("2020-01-01T00:00:00", "ns") + np.arange(5) * np.timedelta64(250, "ms")
    with pytest.raises(ValueError, match=r"0.25 s apart \(median\), not a whole number of seconds"):
        data.infer_freq(dates)


# The bulk reader takes plain files (unquoted ASCII, numbers without spaces, ISO dates of one
# width); these are read by it or sent to the row-by-row reader, and must come out the same.
PLAIN_OR_NOT = {
    "plain": "date,a,OT\n2020-01-01 00:00,1.5,-2e3\n2020-01-01 01:00,+.5,7.\n",
    "date-not-first": "a,date,OT\n1,2020-01-01,2\n3,2020-01-02,4\n",
    "date-last": "a,OT,date\n1,2,2020-01-01T05\n3,4,2020-01-01T06\n",
    "mixed-widths": "date,OT\n2016-7-9 0:00:00,1\n2016-7-10 0:00:00,2\n",
    "unpadded": "date,OT\n1990/1/9 0:00,1\n1990/1/10 0:00,2\n",
    "space-in-a-number": "date,a,OT\n2020-01-01,1, 2\n2020-01-02,3,4\n",
    "crlf-no-final-newline": "date,a,OT\r\n2020-01-01,1,2\r\n2020-01-02,3,4",
    "one-column": "date,OT\n2016-07-01 00:00:00,1\n2016-07-01 01:00:00,2\n",
}


@pytest.mark.parametrize("case", sorted(PLAIN_OR_NOT))
def test_bulk_and_row_by_row_readers_agree_with_pandas(tmp_path, case):
    _assert_reads_as_pandas(_write(tmp_path, PLAIN_OR_NOT[case]))


def test_bulk_reader_takes_the_benchmark_files_form(tmp_path):
    path = _write(tmp_path, ETT_LIKE)
    assert tslib_data._read_plain(path, tslib_data._text(path)) is not None


# Refusals a bulk check must not let through: each is a plain file but for one field.
BULK_REFUSED = {
    "blank-field-last-column": ("date,OT\n2020-01-01,1\n2020-01-02,\n", r"line 3: column 'OT'"),
    "lone-sign": ("date,a,OT\n2020-01-01,1,2\n2020-01-02,-,4\n", r"line 3: column 'a'.*got '-'"),
    "exponent-without-digits": ("date,OT\n2020-01-01,1e\n", r"line 2: column 'OT'.*got '1e'"),
    "two-points": ("date,OT\n2020-01-01,1.2.3\n", r"line 2: column 'OT'.*got '1.2.3'"),
    "overflow-in-bulk": ("date,a,OT\n2020-01-01,1,2\n2020-01-02,3,-1e400\n", r"got '-1e400'"),
    "month-13-iso": (
        "date,OT\n2020-01-01 00:00:00,1\n2020-13-01 00:00:00,2\n",
        r"line 3: the `date` field '2020-13-01 00:00:00' is not a valid date or time",
    ),
    "iso-before-datetime64-ns": (
        "date,OT\n1677-09-21 00:12:43,1\n1677-09-21 00:12:44,2\n",
        r"line 2: the `date` field '1677-09-21 00:12:43' is outside",
    ),
    "iso-decreasing": (
        "date,OT\n2020-01-01 01:00:00,1\n2020-01-01 00:00:00,2\n",
        r"line 3: dates must strictly increase; '2020-01-01 00:00:00' does not come after "
        r"'2020-01-01 01:00:00' \(line 2\)",
    ),
    "blank-line-then-short-row": ("date,a,OT\n2020-01-01,1,2\n\n2020-01-02,3\n", r"line 4: "),
}


@pytest.mark.parametrize("case", sorted(BULK_REFUSED))
def test_bulk_reader_leaves_every_refusal_to_the_row_by_row_reader(tmp_path, case):
    text, message = BULK_REFUSED[case]
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as raised:
        tslib_data.read_csv(path)
    assert str(raised.value).startswith(path)


def test_utc_offsets_are_instants_read_in_utc_across_a_dst_change(tmp_path):
    # Europe/Paris, 2023-10-29: 02:00+02:00 then, an hour later, 02:00+01:00 (clocks back).
    text = (
        "date,OT\n2023-10-29 01:00:00+02:00,1\n2023-10-29 02:00:00+02:00,2\n"
        "2023-10-29 02:00:00+01:00,3\n2023-10-29 03:00:00+01:00,4\n"
    )
    path = _write(tmp_path, text)
    notes = []
    dates, _, _ = tslib_data.read_csv(path, notes=notes)
    expected = np.datetime64("2023-10-28T23:00", "ns") + np.arange(4) * np.timedelta64(1, "h")
    np.testing.assert_array_equal(dates, expected)
    frame = pd.read_csv(path)
    pandas = pd.to_datetime(frame["date"], utc=True).dt.tz_convert(None)
    np.testing.assert_array_equal(dates, pandas.to_numpy("datetime64[ns]"))
    assert len(notes) == 1 and "converted to UTC (naive)" in notes[0]
    assert data.infer_freq(dates) == "h"


def test_the_utc_note_is_printed_once_without_a_notes_list(tmp_path, capsys):
    path = _write(tmp_path, "date,OT\n2020-01-01T00:00Z,1\n2020-01-01T01:00Z,2\n")
    tslib_data.read_csv(path)
    out = capsys.readouterr().out
    assert out.count("note: ") == 1 and "dates carry UTC offsets" in out


@pytest.mark.parametrize(
    "text, line",
    [
        ("date,OT\n2020-01-01 00:00+01:00,1\n2020-01-01 01:00,2\n", 3),
        ("date,OT\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n2020-01-01 02:00Z,3\n", 4),
    ],
)
def test_mixing_dates_with_and_without_offsets_is_refused_by_line(tmp_path, text, line):
    path = _write(tmp_path, text)
    with pytest.raises(
        ValueError, match=rf"line {line}: the `date` field .* UTC offset but line 2"
    ):
        tslib_data.read_csv(path)


def test_an_offset_that_is_no_offset_is_refused(tmp_path):
    path = _write(tmp_path, "date,OT\n2020-01-01 00:00+25:00,1\n")
    with pytest.raises(ValueError, match=r"line 2: .*'2020-01-01 00:00\+25:00' is not a valid"):
        tslib_data.read_csv(path)


@pytest.mark.parametrize("magnitude", [1e154, 1e200, 1e300, 1e-170, 1e-300])
def test_standardize_does_not_overflow_or_underflow_and_calls_only_flat_columns_constant(
    magnitude,
):
    rng = np.random.default_rng(0)
    values = np.stack(
        [
            rng.normal(3.0, 1.0, 1000) * magnitude,
            np.full(1000, 7.0 * magnitude),
            rng.normal(0.0, 1.0, 1000),
        ],
        axis=1,
    )
    with np.errstate(all="raise"):
        scaled, constant = tslib_data.standardize(values, 800)
    np.testing.assert_array_equal(constant, [False, True, False])
    np.testing.assert_allclose(scaled[:800, 0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaled[:800, 0].std(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(scaled[:, 1] / (7.0 * magnitude), 0.0, atol=1e-12)  # centred
    # Exact powers of two leave ordinary columns bit for bit as the plain formulas give them.
    train = values[:800]
    with np.errstate(all="ignore"):  # columns 0 and 1 overflow or divide by 0 there
        plain = (values - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_array_equal(scaled[:, 2], plain[:, 2])


def test_standardize_keeps_non_finite_values_as_they_come():
    values = np.array([[1.0, np.inf], [2.0, 1.0], [3.0, 2.0]])
    with np.errstate(invalid="ignore"):
        scaled, _ = tslib_data.standardize(values, 2)
    assert np.isfinite(scaled[:, 0]).all() and not np.isfinite(scaled[:, 1]).any()


def _spaced(step, count=30):
    return np.datetime64("2020-01-01T00:00", "ns") + np.arange(count) * step


@pytest.mark.parametrize(
    "freq, dates",
    [
        ("2h", _spaced(np.timedelta64(2, "h"))),
        ("h", _spaced(np.timedelta64(1, "h"))),
        ("15min", _spaced(np.timedelta64(15, "m"))),
        ("M", np.arange("2000-01", "2003-01", dtype="datetime64[M]").astype("datetime64[ns]")),
        ("3M", np.arange("2000-01", "2009-01", 3, dtype="datetime64[M]").astype("datetime64[ns]")),
        ("12M", np.arange("2000", "2030", dtype="datetime64[Y]").astype("datetime64[ns]")),
    ],
)
def test_check_freq_accepts_the_dates_multiple(freq, dates):
    data.check_freq(freq, dates)


@pytest.mark.parametrize(
    "freq, dates, spacing",
    [
        ("2h", _spaced(np.timedelta64(1, "h")), "'h'"),
        ("h", _spaced(np.timedelta64(2, "h")), "'2h'"),
        (
            "12M",
            np.arange("2000-01", "2003-01", dtype="datetime64[M]").astype("datetime64[ns]"),
            "'m'",
        ),
        (
            "2M",
            np.arange("2000-01", "2003-01", dtype="datetime64[M]").astype("datetime64[ns]"),
            "'m'",
        ),
    ],
)
def test_check_freq_refuses_another_multiple_naming_both(freq, dates, spacing):
    with pytest.raises(
        ValueError, match=rf"--freq='{freq}' contradicts the dates.*i\.e\. {spacing}"
    ):
        data.check_freq(freq, dates)


@pytest.mark.parametrize(
    "freq, expected",
    [("2h", (2, "h")), ("15min", (15, "t")), ("12M", (12, "m")), ("W-SUN", (1, "w"))],
)
def test_parse_freq_multiple(freq, expected):
    assert data.parse_freq_multiple(freq) == expected


def test_the_examples_protocols_are_the_packages():
    assert recipes.PROTOCOLS == tslib_data.PROTOCOLS
    assert set(tslib_data.DATA_PROTOCOLS.values()) == set(tslib_data.PROTOCOLS)


def _write_dated(path, names, dates, values):
    with open(path, "w") as file:
        file.write(",".join(["date", *names]) + "\n")
        for date, row in zip(np.datetime_as_string(dates, unit="s"), values):
            file.write(date.replace("T", " ") + "," + ",".join(repr(float(v)) for v in row) + "\n")


def _standard_scaler(train):
    """StandardScaler's mean_ and scale_ (population std) of `train`."""
    return train.mean(axis=0), train.std(axis=0)


def test_train_scaler_is_tslibs_custom_data_set(tmp_path):
    # Dataset_Custom: df_raw[['date'] + others + [target]], the scaler fit on the first 70 %.
    rng = np.random.default_rng(0)
    dates = np.datetime64("2020-01-01T00", "h") + np.arange(400)
    values = rng.normal(size=(400, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -50.0]
    _write_dated(tmp_path / "x.csv", ["OT", "a", "b"], dates, values)
    names, mean, scale = tslib_data.train_scaler(
        str(tmp_path), "x.csv", data="custom", features="M", target="OT", seq_len=24, pred_len=8
    )
    assert names == ["a", "b", "OT"]
    ordered = values[:280][:, [1, 2, 0]]
    np.testing.assert_allclose((mean, scale), _standard_scaler(ordered), rtol=1e-12)
    names, mean, scale = tslib_data.train_scaler(
        str(tmp_path) + "/",
        "x.csv",
        data="custom",
        features="S",
        target="a",
        seq_len=24,
        pred_len=8,
    )
    assert names == ["a"]
    np.testing.assert_allclose((mean, scale), _standard_scaler(values[:280, 1:2]), rtol=1e-12)
    with pytest.raises(ValueError, match=r"The target column 'T' \(--target\) is not in"):
        tslib_data.train_scaler(str(tmp_path), "x.csv", data="custom", target="T", seq_len=24)
    with pytest.raises(ValueError, match=r"--data 'm4' has no forecasting CSV data set here"):
        tslib_data.train_scaler(str(tmp_path), "x.csv", data="m4")
    with pytest.raises(ValueError, match=r"--features must be one of"):
        tslib_data.train_scaler(str(tmp_path), "x.csv", data="custom", features="X")


@pytest.mark.parametrize("data_name, step, factor", [("ETTh2", "h", 1), ("ETTm1", "m", 4)])
def test_train_scaler_is_tslibs_ett_data_sets(tmp_path, data_name, step, factor):
    # Dataset_ETT_hour/minute: the file's column order (the target not moved), 12 months of
    # 30 days of training rows; S keeps the target.
    rows = 20 * 30 * 24 * factor
    rng = np.random.default_rng(1)
    unit = np.timedelta64(1, "h") if step == "h" else np.timedelta64(15, "m")
    dates = np.datetime64("2016-07-01T00:00") + unit * np.arange(rows)
    values = rng.normal(size=(rows, 3)) * [2.0, 1.0, 3.0]
    _write_dated(tmp_path / "ett.csv", ["OT", "HUFL", "LULL"], dates, values)
    train = 12 * 30 * 24 * factor
    names, mean, scale = tslib_data.train_scaler(str(tmp_path), "ett.csv", data=data_name)
    assert names == ["OT", "HUFL", "LULL"]
    np.testing.assert_allclose((mean, scale), _standard_scaler(values[:train]), rtol=1e-12)
    names, mean, scale = tslib_data.train_scaler(
        str(tmp_path), "ett.csv", data=data_name, features="S", target="LULL"
    )
    assert names == ["LULL"]
    np.testing.assert_allclose((mean, scale), _standard_scaler(values[:train, 2:]), rtol=1e-12)
    with pytest.raises(ValueError, match=r"needs \d+ rows \(20 months\).*--data custom"):
        _write_dated(tmp_path / "short.csv", ["OT", "a"], dates[:-1], values[:-1, :2])
        tslib_data.train_scaler(str(tmp_path), "short.csv", data=data_name)
