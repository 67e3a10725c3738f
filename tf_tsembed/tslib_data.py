"""Time-Series-Library's data provider in NumPy: its CSV files, splits and scaler.

What TSLib's `data_provider/data_loader.py` does with a long-horizon benchmark CSV (`date` and
numeric columns): `read_csv` reads it (or refuses it naming the line and field), `split_borders`
cuts the train, validation and test rows as `Dataset_ETT_hour`, `Dataset_ETT_minute` and
`Dataset_Custom` do, `standardize` and `scaler_statistics` are its StandardScaler fit on the
training rows, and `train_scaler` gives the columns and scaler TSLib's run.py would use for
`--data`, `--features` and `--target` (what `tf_tsembed.serving.export_forecaster` needs).
No TensorFlow here.

>>> import numpy as np
>>> values = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 7.0]])
>>> mean, scale = scaler_statistics(values, 2)  # the first 2 rows are the training rows
>>> mean.tolist(), scale.tolist()  # the second column is constant there: scale 1
([2.0, 5.0], [1.0, 1.0])
>>> split_borders("custom", 1000, 96, 24)  # 70/10/20 %, validation and test start 96 early
[(0, 700), (604, 800), (704, 1000)]
"""

import bz2
import csv
import gzip
import io
import lzma
import math
import os
import re
import zipfile
import zlib

import numpy as np

# TSLib's data set classes by the names the examples give them (`--protocol`): Dataset_ETT_hour,
# Dataset_ETT_minute, Dataset_Custom. examples.recipes.PROTOCOLS restates them without importing
# the package (and so TensorFlow); tests/test_data.py checks the two agree.
PROTOCOLS = ("ETTh", "ETTm", "custom")
# run.py's --data -> its data set class (data_factory.data_dict's forecasting entries).
DATA_PROTOCOLS = {
    "ETTh1": "ETTh",
    "ETTh2": "ETTh",
    "ETTm1": "ETTm",
    "ETTm2": "ETTm",
    "custom": "custom",
}
# ETT: 12 months of train, 4 of validation, 4 of test, a month being 30 days of hourly rows.
_ETT_HOUR_BORDERS = (12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)
_MINUTE_ROWS_PER_HOUR = 4
TRAIN_FRACTION, TEST_FRACTION = 0.7, 0.2

# Year first, '-' or '/' between fields, month and day with or without a leading zero, an
# optional time and an optional UTC offset: ISO `2016-07-01 00:00:00` and `1990/1/1 0:00`
# alike. Hours are unpadded before minutes (as in TSLib's exchange_rate.csv) and two digits
# without them (`2016-07-01 05`; pandas does not parse `2016-07-01 5`); seconds and a fraction
# are optional.
_DATE = re.compile(
    r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})"
    r"(?:[ T](\d{1,2}(?=:)|\d{2})(?::(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)
# The first and last instants datetime64[ns] holds (pandas' Timestamp range), as the ISO
# strings `_parse_dates` builds: fixed width, so they compare as the instants do.
_FIRST_DATE = str(np.datetime64(np.iinfo(np.int64).min + 1, "ns"))  # 1677-09-21T00:12:43.1...
_LAST_DATE = str(np.datetime64(np.iinfo(np.int64).max, "ns"))  # 2262-04-11T23:47:16.8...
# A number as pandas reads one: ASCII digits, an optional sign, decimal point and exponent,
# ASCII white space around. Python's float() also takes `1_000`, other scripts' digits (`١٢`)
# and Unicode spaces, which pandas leaves as text.
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
# A character no such number holds: where none is found, float64 conversion can be trusted.
_NOT_IN_NUMBERS = re.compile(r"[^0-9eE+\-. \t\n\r\f\v]")
# What a compressed file starts with; pandas goes by the extension, this by the content.
# examples.recipes.data_name strips the matching file name suffixes (.gz, .bz2, .xz, .zip).
_COMPRESSED = {
    b"\x1f\x8b": ("gzip", gzip.decompress),
    b"BZh": ("bz2", bz2.decompress),
    b"\xfd7zXZ\x00": ("xz", lzma.decompress),
}
_ZIP = b"PK\x03\x04"
# What a corrupt or truncated stream raises: gzip's OSError and EOFError, zlib.error from a
# broken deflate stream (gzip, zip), bz2's ValueError and OSError, lzma.LZMAError, zipfile's
# BadZipFile, NotImplementedError (an unsupported zip method), RuntimeError (an encrypted zip).
_BROKEN_STREAM = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
)
# Byte order marks and the encoding they announce, which the bytes after them must follow.
_BOMS = {
    b"\xff\xfe": ("utf-16-le", "UTF-16"),
    b"\xfe\xff": ("utf-16-be", "UTF-16"),
    b"\xef\xbb\xbf": ("utf-8", "UTF-8"),
}
# Bytes that, read as Latin-1, are C1 control characters: in practice Windows-1252 text.
_WINDOWS_1252 = re.compile(rb"[\x80-\x9f]")


def _not_decompressed(path, name, error):
    """The error for a file that starts like a `name` (gzip, zip, ...) file but is corrupt."""
    return ValueError(f"{path}: starts like a {name} file but does not decompress: {error}.")


def _line_at(text):
    """The line number (from 1) of the end of `text`, lines ending as the csv module ends them."""
    return len(re.findall(r"\r\n|\r|\n", text)) + 1


def _decode(path, raw):
    """`raw` decoded: UTF-16 with BOM, UTF-8 with or without BOM, else Latin-1 (which reads any
    byte). A BOM whose encoding the bytes break, and Latin-1's C1 control characters (0x80 to
    0x9F, Windows-1252 text in practice: pandas refuses both) are refused naming the line."""
    for bom, (encoding, label) in _BOMS.items():
        if raw.startswith(bom):
            content = raw[len(bom) :]
            try:
                return content.decode(encoding)
            except UnicodeDecodeError as error:
                line = _line_at(content[: error.start].decode(encoding))
                raise ValueError(
                    f"{path}, line {line}: starts with a {label} byte order mark but is not "
                    f"{label} ({error.reason}, byte {len(bom) + error.start + 1} of the file): "
                    f"save it as UTF-8."
                ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    control = _WINDOWS_1252.search(raw)
    if control:
        byte = raw[control.start() : control.start() + 1]
        shown = byte.decode("cp1252", errors="replace")
        raise ValueError(
            f"{path}, line {_line_at(raw[: control.start()].decode('latin-1'))}: is not UTF-8 "
            f"and byte 0x{byte.hex().upper()} is a control character in Latin-1: the file "
            f"looks like Windows-1252 text ({shown!r}); save it as UTF-8."
        )
    return raw.decode("latin-1")


def _text(path):
    """The file's text: decompressed (gzip, bz2, xz, a one-file zip) and decoded (`_decode`).
    A corrupt or truncated compressed file is refused naming the file and the compression."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise ValueError(f"{path!r} cannot be read: {error.strerror}.") from None
    for magic, (name, decompress) in _COMPRESSED.items():
        if raw.startswith(magic):
            try:
                raw = decompress(raw)
            except _BROKEN_STREAM as error:
                raise _not_decompressed(path, name, error) from None
    if raw.startswith(_ZIP):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [name for name in archive.namelist() if not name.endswith("/")]
                if len(members) == 1:
                    raw = archive.read(members[0])
        except _BROKEN_STREAM as error:
            raise _not_decompressed(path, "zip", error) from None
        if len(members) != 1:
            raise ValueError(
                f"{path}: a zip archive must hold exactly one CSV file; it holds {members}."
            )
    if raw.startswith(b"\x28\xb5\x2f\xfd"):
        raise ValueError(
            f"{path}: is zstd-compressed, which is not read here: decompress it first (zstd -d)."
        )
    text = _decode(path, raw)
    if "\x00" in text:
        raise ValueError(f"{path}: holds NUL bytes: it is not a text CSV file.")
    return text


def _header(path, header):
    """The header's names, stripped, with the `date` column's index; clear errors otherwise."""
    if header is None:
        raise ValueError(f"{path}: the file is empty; it needs a header with a `date` column.")
    names = [name.strip() for name in header]
    if "date" not in names:
        hint = ""
        if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
            hint = " Fields must be separated by commas; this header looks separated otherwise."
        elif any(name.lower() == "date" for name in names):
            hint = " The column must be called `date`, in lower case, as in the benchmark files."
        raise ValueError(
            f"{path}, line 1: the header must have a `date` column; got {names}.{hint}"
        )
    for index, name in enumerate(names):
        if not name:
            raise ValueError(
                f"{path}, line 1: column {index + 1} has no name (pandas would call it "
                f"'Unnamed: {index}' and TSLib would train on it, e.g. a row index written by "
                f"DataFrame.to_csv): name it or remove it."
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}, line 1: column names must be unique; repeated: {repeated}.")
    return names, names.index("date")


def _parse_dates(path, texts, lines):
    """`(datetime64[ns] of the date fields, whether they carry UTC offsets)`. Dates with offsets
    are instants, converted to UTC (naive); a file mixing them with dates without one is refused.
    An error names the line of a field that is no date, mixes, or is outside what datetime64[ns]
    holds (1677-09-21 to 2262-04-11), which numpy would wrap."""
    iso, offsets = [], []
    for text, line in zip(texts, lines):
        match = _DATE.fullmatch(text)
        if match is None:
            raise ValueError(
                f"{path}, line {line}: the `date` field must be a date, year first, like "
                f"2016-07-01 00:00:00 or 1990/1/1 0:00 (day- or month-first dates are "
                f"ambiguous and refused); got {text!r}."
            )
        year, _, month, day, hour, minute, second, fraction, offset = match.groups()
        value = (
            f"{year}-{int(month):02d}-{int(day):02d}T{int(hour or 0):02d}:{minute or '00'}:"
            f"{second or '00'}{fraction or ''}"
        )
        if not _FIRST_DATE <= value <= _LAST_DATE:
            raise _out_of_range(path, line, text)
        if offsets and (offset is None) != (offsets[0] is None):
            with_offset, without = (text, texts[0]) if offset else (texts[0], text)
            raise ValueError(
                f"{path}, line {line}: the `date` field {text!r} "
                f"{'has' if offset else 'has no'} UTC offset but line {lines[0]}'s "
                f"{texts[0]!r} {'has none' if offset else 'has one'}: dates with and without "
                f"offsets cannot be ordered ({with_offset!r} is an instant, {without!r} a "
                f"wall-clock time); give every date an offset, or none."
            )
        if offset is not None:
            digits = offset.replace(":", "")[1:] if offset != "Z" else "0000"
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 23 or minutes > 59:
                raise _not_a_date(path, line, text)
            sign = -1 if offset.startswith("-") else 1
            offset = sign * (hours * 60 + minutes)
        offsets.append(offset)
        iso.append(value)
    try:
        dates = np.array(iso, dtype="datetime64[ns]")
    except ValueError:
        for value, text, line in zip(iso, texts, lines):
            try:
                np.datetime64(value, "ns")
            except ValueError:
                raise _not_a_date(path, line, text) from None
        raise
    if offsets[0] is None:
        return dates, False
    # The instants: wall-clock time minus the offset, checked to stay within datetime64[ns].
    minutes = np.array(offsets, np.int64)
    wall = dates.astype(np.int64)
    shift = minutes * 60_000_000_000
    first, last = np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max
    outside = ((shift > 0) & (wall < first + shift)) | ((shift < 0) & (wall > last + shift))
    if outside.any():
        row = int(np.argmax(outside))
        raise _out_of_range(path, lines[row], texts[row], " in UTC")
    return (wall - shift).astype("datetime64[ns]"), True


def _out_of_range(path, line, text, where=""):
    return ValueError(
        f"{path}, line {line}: the `date` field {text!r} is outside the dates datetime64[ns] "
        f"holds{where}, {_FIRST_DATE[:10]} to {_LAST_DATE[:10]} (pandas' nanosecond timestamps)."
    )


def _not_a_date(path, line, text):
    return ValueError(
        f"{path}, line {line}: the `date` field {text!r} is not a valid date or time."
    )


def _not_a_number(path, line, name, field):
    """The error for a field of column `name` that is not a finite number."""
    return ValueError(
        f"{path}, line {line}: column {name!r} must hold a finite number; got {field!r} (empty, "
        f"NaN and Inf fields are refused: the scaler and every window touching them would "
        f"carry them)."
    )


def _parse_numbers(path, rows, lines, names):
    """A float64 `(rows, columns)` array; an error names the line and the column of the first
    field that is not a finite number as pandas reads one (`_NUMBER`): empty, NaN and Inf
    fields included, and what float() takes but pandas reads as text (`1_000`, `١٢`, a
    non-breaking space)."""
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        values = None
    if (
        values is not None
        and np.all(np.isfinite(values))
        and not any(_NOT_IN_NUMBERS.search("".join(row)) for row in rows)
    ):
        return values
    for row, line in zip(rows, lines):
        for name, field in zip(names, row):
            if not (_NUMBER.fullmatch(field) and math.isfinite(float(field))):
                raise _not_a_number(path, line, name, field)
    raise AssertionError("unreachable: every field is a finite number, which numpy converts")


# The bytes the fast path's number fields hold: ASCII numbers without spaces, commas between
# them, newlines between rows (anything else sends the file to the row-by-row reader, which
# reads or refuses it naming the line).
_PLAIN_NUMBER_BYTES = b"0123456789eE+-.,\n"
# The ISO dates read in bulk by numpy ('d' a digit, '?' a space or 'T'), by their width.
_ISO_DATES = {10: "dddd-dd-dd", 16: "dddd-dd-dd?dd:dd", 19: "dddd-dd-dd?dd:dd:dd"}
# Whole seconds within what datetime64[ns] holds (see _FIRST_DATE, _LAST_DATE).
_FIRST_SECOND = np.datetime64(_FIRST_DATE[:19]) + np.timedelta64(1, "s")
_LAST_SECOND = np.datetime64(_LAST_DATE[:19])


def _iso_dates(block):
    """`datetime64[ns]` of a `(rows, width)` uint8 block of ISO dates of one width, or None when
    they are not all of one of the `_ISO_DATES` forms, not valid, or near datetime64[ns]'s ends
    (the row-by-row parser then reads or refuses them naming the line)."""
    template = _ISO_DATES.get(block.shape[1])
    if template is None:
        return None
    for column, kind in enumerate(template):
        byte = block[:, column]
        if kind == "d":
            ok = (byte - ord("0")) < 10  # uint8: bytes below '0' wrap around to large values
        elif kind == "?":
            ok = (byte == ord(" ")) | (byte == ord("T"))
        else:
            ok = byte == ord(kind)
        if not ok.all():
            return None
    try:
        seconds = block.view(f"S{block.shape[1]}").ravel().astype("datetime64[s]")
    except ValueError:  # month 13, hour 24, ...
        return None
    if seconds.min() < _FIRST_SECOND or seconds.max() > _LAST_SECOND:
        return None
    return seconds.astype("datetime64[ns]")


def _read_plain(path, text):
    """`(names, date_index, dates or None, date texts, values)` of a plain file read in bulk,
    or None when the file is not plain (quotes, lone CRs, blank lines, non-ASCII rows, numbers
    with spaces, anything numpy's reader refuses): `read_csv` then reads it row by row.

    Plain: unquoted fields and numbers in ASCII without spaces. The number fields are checked
    for other characters with one regular expression over them all, then read by numpy's
    loadtxt, which refuses a row of another field count and any field that is not a number as
    `_NUMBER` reads one (with no spaces, the grammars agree: `1e`, `--1` and empty fields are
    refused) and yields Inf for an overflow, which is then looked for. `dates` is None when the
    dates are not ISO dates of one width (`_iso_dates`): the caller parses the texts one by one.
    """
    if '"' in text:
        return None
    if "\r" in text:
        if text.count("\r") != text.count("\r\n"):
            return None  # a lone CR ends a line to the csv module
        text = text.replace("\r\n", "\n")
    header, _, body = text.partition("\n")
    del text
    if not header:
        return None  # the csv module reads an empty line as no fields at all
    names, date_index = _header(path, header.split(","))
    columns = len(names)
    if columns < 2 or not body or not body.isascii():
        return None
    lines = body.split("\n")
    del body
    if not lines[-1]:
        lines.pop()
    if date_index == 0:
        rows = [line.partition(",") for line in lines]
        del lines
        dates, numbers = [row[0] for row in rows], [row[2] for row in rows]
    else:
        rows = [line.split(",") for line in lines]
        del lines
        dates = [row.pop(date_index) if len(row) > date_index else "" for row in rows]
        numbers = [",".join(row) for row in rows]
    del rows
    # loadtxt skips empty lines; the csv reader does not (a blank line, `date,` with one column).
    if not numbers or "" in numbers:
        return None
    if "\n".join(numbers).encode("ascii").translate(None, _PLAIN_NUMBER_BYTES):
        return None  # what is left once the number bytes are deleted
    try:
        values = np.loadtxt(
            numbers, dtype=np.float64, delimiter=",", comments=None, ndmin=2, encoding=None
        )
    except ValueError:
        return None
    del numbers
    if values.shape != (len(dates), columns - 1) or not np.isfinite(values).all():
        return None
    widths = set(map(len, dates))
    if len(widths) == 1 and widths != {0}:
        block = np.frombuffer("".join(dates).encode("ascii"), np.uint8)
        iso = _iso_dates(block.reshape(len(dates), -1))
        if iso is not None:
            return names, date_index, iso, dates, values  # ISO dates hold no spaces to strip
    return names, date_index, None, [date.strip() for date in dates], values


def read_csv(path, notes=None):
    """Dates (datetime64[ns]), column names and a float64 `(rows, columns)` array of a CSV.

    Reads what the long-horizon benchmark files are and what pandas reads of them: a header
    with a `date` column (names stripped of surrounding spaces) and one comma-separated row per
    time step; UTF-8 (with or without BOM), UTF-16 with BOM or Latin-1; plain or gzip, bz2, xz
    or one-file zip compressed (told by the content, whatever the extension); blank lines
    skipped (empty or white-space lines, as pandas skips them); dates year first
    (`2016-07-01 00:00:00`, `2016-07-01T00:00`, `2016-07-01 00`, `1990/1/1 0:00`, `2016-07-01`,
    fractions of a second, a UTC offset: dates with offsets are instants, converted to UTC and
    said once in a note, appended to `notes` when a list is given, else printed) from
    1677-09-21 to 2262-04-11 (what datetime64[ns] holds);
    numbers in ASCII (`1.5`, `-2e3`, spaces around). Everything else is refused with a
    ValueError naming the file, the line and the field: a wrong field count, a field that is not
    a finite number (empty, NaN, Inf, `1_000`, non-ASCII digits or spaces), a row of empty
    fields (`,,` or `""`: a row of NaN to pandas), a date that is not one of those forms or out
    of that range, dates with and without UTC offsets mixed, an unnamed or repeated column,
    dates that do not strictly increase, a
    corrupt compressed file, bytes that break the byte order mark's encoding, Latin-1's control
    characters 0x80 to 0x9F (Windows-1252 text).
    """
    text = _text(path)
    plain = _read_plain(path, text)
    if plain is None:
        names, date_index, texts, lines, fields = _read_rows(path, text)
        del text
        dates, offsets = _parse_dates(path, texts, lines)
        values = _parse_numbers(path, fields, lines, names[:date_index] + names[date_index + 1 :])
    else:
        del text
        names, date_index, dates, texts, values = plain
        lines, offsets = range(2, len(values) + 2), False
        if dates is None:
            dates, offsets = _parse_dates(path, texts, lines)
    names.pop(date_index)
    if offsets:
        _say(
            notes,
            f"{path}: the dates carry UTC offsets: read as instants and converted to UTC "
            f"(naive), so a daylight-saving change neither repeats nor skips an hour and the "
            f"time features are UTC's calendar",
        )
    steps = np.diff(dates)
    if np.any(steps <= np.timedelta64(0, "ns")):
        row = int(np.argmax(steps <= np.timedelta64(0, "ns"))) + 1
        raise ValueError(
            f"{path}, line {lines[row]}: dates must strictly increase; {texts[row]!r} does not "
            f"come after {texts[row - 1]!r} (line {lines[row - 1]})."
        )
    return dates, names, values


def _say(notes, note):
    """Appends `note` to the list `notes`, or prints it as the scripts print notes."""
    if notes is None:
        print(f"note: {note}", flush=True)
    else:
        notes.append(note)


def _read_rows(path, text):
    """The csv module's reading, row by row: `(names, date_index, date texts, line numbers,
    fields of the other columns)`; what pandas would read otherwise is refused naming the line."""
    last = [""]  # the physical line the csv reader read last

    def physical_lines():
        for line in io.StringIO(text, newline=""):
            last[0] = line
            yield line

    rows = csv.reader(physical_lines())
    try:
        names, date_index = _header(path, next(rows, None))
        lines, texts, fields = [], [], []
        for row in rows:
            if not any(field.strip() for field in row):
                if not last[0].strip(" \t\r\n"):
                    continue  # an empty or white-space line, as pandas skips
                # Delimiters or quotes only (`,,`, `""`): a row of NaN to pandas.
                numeric = [i for i in range(len(names)) if i != date_index]
                if numeric:
                    field = row[numeric[0]] if numeric[0] < len(row) else ""
                    raise _not_a_number(path, rows.line_num, names[numeric[0]], field)
            if len(row) != len(names):
                raise ValueError(
                    f"{path}, line {rows.line_num}: expected {len(names)} fields like the header "
                    f"{names}; got {len(row)}: {row}."
                )
            lines.append(rows.line_num)
            texts.append(row[date_index].strip())
            fields.append([field for i, field in enumerate(row) if i != date_index])
    except csv.Error as error:
        raise ValueError(
            f"{path}, line {rows.line_num}: not a readable CSV row ({error})."
        ) from None
    if not fields:
        raise ValueError(f"{path}: no data rows after the header.")
    return names, date_index, texts, lines, fields


def check_target(path, names, target):
    """Raises ValueError unless `target` is one of the file's series `names`."""
    if target not in names:
        raise ValueError(
            f"The target column {target!r} (--target) is not in {path}; its columns: {names}."
        )


def split_borders(protocol, num_rows, seq_len, pred_len):
    """Row ranges `[(start, stop)]` of train, validation and test as TSLib's data loaders cut them.

    ETTh: 12/4/4 months of 30 days of hourly rows; ETTm: the same times 4 (15-minute rows);
    custom: 70/10/20 % chronologically. Validation and test inputs start `seq_len` rows early,
    so their first window forecasts the first row of the split.
    """
    if protocol in ("ETTh", "ETTm"):
        factor = 1 if protocol == "ETTh" else _MINUTE_ROWS_PER_HOUR
        num_train, num_val, num_test = (n * factor for n in _ETT_HOUR_BORDERS)
        if num_rows < num_train + num_val + num_test:
            raise ValueError(
                f"The {protocol} protocol needs {num_train + num_val + num_test} rows (20 months); "
                f"the file has {num_rows}: use --protocol=custom (run.py: --data custom) for a "
                f"shorter file."
            )
    elif protocol == "custom":
        num_train = int(num_rows * TRAIN_FRACTION)
        num_test = int(num_rows * TEST_FRACTION)
        num_val = num_rows - num_train - num_test
    else:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}; got {protocol!r}.")
    starts = (0, num_train - seq_len, num_train + num_val - seq_len)
    stops = (num_train, num_train + num_val, num_train + num_val + num_test)
    borders = list(zip(starts, stops))
    for name, (start, stop) in zip(("train", "validation", "test"), borders):
        if start < 0 or stop - start < seq_len + pred_len:
            raise ValueError(
                f"The {name} split has {stop - start} rows from row {start}; it needs at least "
                f"seq_len + pred_len = {seq_len + pred_len} rows and seq_len={seq_len} before it: "
                f"use more data or shorter windows."
            )
    return borders


def standardize(values, train_stop):
    """`(standardised values, constant)`: `values` standardised with the mean and population std
    of rows `[0, train_stop)` only, as scikit-learn's StandardScaler (TSLib's scaler) does.

    Its rule for constant columns is kept: a column whose training variance is at the float
    noise level (`var <= n * eps * var + (n * mean * eps)**2`, n training rows) is centred but
    not scaled (scale 1), so a sensor stuck at one value does not blow up to 1e15.
    `constant` is a boolean mask of those columns.

    The statistics are computed on each column divided by the power of two at or above its
    largest training magnitude: exact (a power of two only shifts exponents), so the results are
    those of the plain formulas, but squares of values near 1e300 no longer overflow to an
    infinite variance (which made the column "constant") nor those near 1e-170 underflow to 0.
    Non-finite values are left as they come (the CSV reader refuses them).
    """
    power, mean, variance, constant = _unit_statistics(values[:train_stop])
    scaled = (values / power - mean) / np.where(constant, 1.0, np.sqrt(variance))
    return np.where(constant, values - mean * power, scaled), constant


def _unit_statistics(train):
    """`(power, mean, variance, constant)` of `standardize`: the statistics of the training rows
    divided by each column's power of two."""
    _, exponent = np.frexp(np.max(np.abs(train), axis=0) if len(train) else 0.0)
    power = np.ldexp(1.0, exponent)  # 1 for a zero, NaN or infinite maximum
    unit = train / power
    mean, variance = unit.mean(axis=0), unit.var(axis=0)
    eps, rows = np.finfo(np.float64).eps, len(train)
    constant = variance <= rows * eps * variance + (rows * mean * eps) ** 2  # scale-free
    return power, mean, variance, constant


def scaler_statistics(values, train_stop):
    """`(mean, scale)` of `standardize` in the values' units, as StandardScaler's `mean_` and
    `scale_` (1 for a constant column): what a served model unscales with."""
    power, mean, variance, constant = _unit_statistics(values[:train_stop])
    return mean * power, np.where(constant, 1.0, np.sqrt(variance) * power)


def constant_note(names, constant):
    """What to tell the user about the columns `standardize` found constant."""
    columns = [name for name, flat in zip(names, constant) if flat]
    return (
        f"columns {columns} are constant over the training rows: centred but not scaled (scale "
        f"1), as scikit-learn's StandardScaler (TSLib's scaler) treats them"
    )


def model_columns(path, names, values, features, target, target_last=True):
    """`(names, values)` of the columns a model of `features` reads, as TSLib's data sets give
    them: with `target_last` (Dataset_Custom) the target moved after the others, else the file's
    order; 'S' keeps the target alone. ValueError for `features` not M/S/MS, or a target the
    file lacks (where it is used).

    >>> model_columns("f.csv", ["OT", "a"], np.ones((2, 2)), "S", "OT")[0]
    ['OT']
    """
    if features not in ("M", "S", "MS"):
        raise ValueError(f"--features must be one of ['M', 'S', 'MS']; got {features!r}.")
    if target_last or features == "S":
        check_target(path, names, target)
    if target_last:
        order = [i for i, name in enumerate(names) if name != target] + [names.index(target)]
        names, values = [names[i] for i in order], values[:, order]
    if features == "S":
        column = names.index(target)
        names, values = [target], values[:, column : column + 1]
    return names, values


def train_scaler(
    root_path, data_path, data="ETTh1", features="M", target="OT", seq_len=96, pred_len=96
):
    """`(names, mean, scale)`: the columns TSLib's data set gives the model, in its order, and
    its StandardScaler's `mean_` and `scale_` (1 for a constant column), fit on the training rows.

    The arguments are run.py's flags: the file is `os.path.join(root_path, data_path)`;
    `data` picks the data set class (`DATA_PROTOCOLS`): ETTh1/ETTh2 Dataset_ETT_hour, ETTm1/ETTm2
    Dataset_ETT_minute (the file's column order; training rows the first 12 months), custom
    Dataset_Custom (columns reordered to `[others..., target]`; training rows the first 70 %).
    `features` M and MS: every column; S: the target only. `seq_len` and `pred_len` only check
    that every split holds a window (`split_borders`). The file is read with `read_csv` (and
    refused as it refuses).

    Raises:
        ValueError: `data` not one of `DATA_PROTOCOLS` (TSLib's other data sets are not
            forecasting CSVs), `features` not M/S/MS, the target not a column (where used), a
            file too short for the splits, or what `read_csv` refuses.
    """
    if data not in DATA_PROTOCOLS:
        raise ValueError(
            f"--data {data!r} has no forecasting CSV data set here; known: {list(DATA_PROTOCOLS)}"
        )
    path = os.path.join(root_path, data_path)
    _, names, values = read_csv(path)
    protocol = DATA_PROTOCOLS[data]
    names, values = model_columns(
        path, names, values, features, target, target_last=protocol == "custom"
    )
    borders = split_borders(protocol, len(values), seq_len, pred_len)
    mean, scale = scaler_statistics(values, borders[0][1])
    return names, mean, scale
