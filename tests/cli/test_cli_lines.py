"""Lines the commands print after their work, on cases with a known answer: the files written
(neuromfa analyze/report) and each cell of a sensitivity grid (neuromfa sensitivity)."""
from __future__ import annotations

from neuromfa_native.cli.analyze import files_written, no_parquet_note
from neuromfa_native.cli.compare import _say_grid


def test_files_written_by_name_with_parquet_and_plots_summarised(tmp_path) -> None:
    paths = [tmp_path / n for n in ("checkpoints.csv", "checkpoints.parquet", "samples.csv", "samples.parquet",
                                    "summary.json", "checkpoints.csv")]
    paths += [tmp_path / "plots" / n for n in ("overview.png", "spectra.png", "emergence.png")]
    assert files_written(paths, tmp_path, html=True) == (
        "checkpoints.csv, samples.csv, summary.json (and .parquet copies of the tables), plots/ (3 figures), "
        "report.html")
    assert files_written(paths[:1], tmp_path, html=False) == "checkpoints.csv"
    assert no_parquet_note(paths) == ""
    assert no_parquet_note([tmp_path / "summary.json"]) == ""
    assert no_parquet_note([tmp_path / "checkpoints.csv"]) == (
        "; CSV only: Parquet tables need pyarrow (pip install 'neuromfa-native[tables]')")


def test_each_cell_of_a_grid_in_one_line(tmp_path, capsys) -> None:
    (tmp_path / "sensitivity.csv").write_text(
        "cell,verdict,gaussian_share,remainder_share,rho_E_piqa,rho_E_sciq\n"
        "threshold=100,beyond_scale,0.25,0.7,0.5,\n"
        "threshold=150,scale,nan,,,-0.4\n"
        "threshold=200,undetermined,,,,\n"
        "box=\x1b[2Jpath,undetermined,,,,\n")
    _say_grid(tmp_path)
    assert capsys.readouterr().out.splitlines() == [
        "threshold=100: verdict beyond_scale (gaussian share 25%, remainder 70%); rho_E_piqa = +0.50",
        "threshold=150: verdict scale; rho_E_sciq = -0.40",
        "threshold=200: verdict undetermined",
        "box=\\x1b[2Jpath: verdict undetermined"]  # a control character shown, not sent to the terminal


def test_no_grid_table_prints_nothing(tmp_path, capsys) -> None:
    _say_grid(tmp_path)
    assert capsys.readouterr().out == ""
