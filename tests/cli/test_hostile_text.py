"""Strings from elsewhere on their way to a terminal or a CSV cell (_text.py): a checkpoint
named with terminal escape sequences or a spreadsheet formula prints as text and is written as
a quoted cell; a number is still written as a number."""
from __future__ import annotations

import csv
import subprocess
import sys

from tiny_series import PER_LAYER, make_series_dirs

from neuromfa_native._text import csv_cell, csv_text, digits, one_line, short, terminal

ESC = "\x1b]0;owned\x07\x1b[2J"  # set the window title, clear the screen
FORMULA = '=SUM(1+1)*cmd|x!A1'  # no slash: it is a folder name


def test_terminal_and_one_line_escape_what_a_terminal_acts_on():
    assert terminal(f"a{ESC}b\nc\td") == "a\\x1b]0;owned\\x07\\x1b[2Jb\nc\td"
    assert one_line("a\nb\rc\x9b") == "a\\nb\\rc\\x9b"
    assert terminal("plain, naïve, 日本") == "plain, naïve, 日本"  # printable text is left alone



def test_short_says_a_huge_integer_by_its_digit_count_without_formatting_it():
    for k in range(0, 3000, 7):  # digits() against str() around every power of ten it can format
        for n in (10**k - 1, 10**k, 10**k + 1, -(10**k)):
            assert digits(n) == len(str(abs(n))), n
    assert short(10**5000) == "an integer of 5001 digits"  # str() refuses past 4300 digits
    assert short([2**128, 2**127]) == f"[an integer of 39 digits, {2**127}]"
    assert short(-(10**40)) == "a negative integer of 41 digits"
    assert len(short(list(range(10**6)))) < 100 and len(short("x" * 10**6)) < 100

def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_and_numbers_stay_numbers():
    assert [csv_cell(v) for v in ("=1+1", "+1", "-x", "@SUM(A1)", "\tx", "ok", -0.5, 3, None, float("nan"))] == \
        ["'=1+1", "'+1", "'-x", "'@SUM(A1)", "'\tx", "ok", "-0.5", 3, "", "nan"]
    rows = list(csv.reader(csv_text([{"a": "=cmd", "b": 0.1}, ["x", None]], ["a", "b"]).splitlines()))
    assert rows == [["a", "b"], ["'=cmd", "0.1"], ["x", ""]]


def test_a_hostile_checkpoint_name_prints_as_text_and_is_written_as_a_quoted_cell(tmp_path):
    dirs = make_series_dirs(tmp_path / "c", steps=(0, 100))
    named = []
    for d, new in zip(dirs, (f"step0{ESC}", FORMULA)):
        d.rename(d.with_name(new))
        named.append(str(d.with_name(new)))
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "neuromfa_native", "analyze", *named, "--samples", "2",
                        "--per-layer", str(PER_LAYER), "--threads", "1", "--no-plots", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout + p.stderr and "\x07" not in p.stdout + p.stderr
    assert "\\x1b]0;owned" in p.stdout  # shown, as its escape
    with open(out / "checkpoints.csv", newline="") as fh:
        labels = [r["checkpoint"] for r in csv.DictReader(fh)]
    assert labels[1] == "'" + FORMULA  # quoted: a spreadsheet shows it as text
    with open(out / "samples.csv", newline="") as fh:
        cells = [c for r in csv.reader(fh) for c in r]
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
