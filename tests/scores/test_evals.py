"""read_evals / EvalTable (docs/spec.md section 8): lm-evaluation-harness JSON (both layouts), tables, the shipped
Pythia scores, mappings, and every bad input.  Test data: tests/data/evals (see NOTE.md there)."""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import tarfile
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native.scores.evals import LOWER_IS_BETTER, EvalTable, higher_is_better, pythia_models, read_evals
from paths import DATA as FIXTURES

DATA = FIXTURES / "evals"
PYTHIA_SHA256 = "50992ff8971ae050f5a2a14165cd6cf162dd42626d87992c1c51f35407359567"
N_ROWS = 108_736


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("raw")
    with tarfile.open(DATA / "raw.tar.gz") as tf:
        tf.extractall(d, filter="data") if hasattr(tarfile, "data_filter") else tf.extractall(d)
    return d / "raw"


def _shipped_rows() -> list:
    data = (files("neuromfa_native") / "data" / "pythia-v1-evals.csv.gz").read_bytes()
    return list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))


def test_shipped_table_is_the_published_file_with_its_licence():
    d = files("neuromfa_native") / "data"
    assert hashlib.sha256((d / "pythia-v1-evals.csv.gz").read_bytes()).hexdigest() == PYTHIA_SHA256
    assert "Apache License" in (d / "LICENSE-pythia").read_text()


@pytest.mark.slow
def test_every_pythia_name_reads_back_its_rows_row_for_row():
    rows = _shipped_rows()
    assert len(rows) == N_ROWS
    names = pythia_models()
    assert sum(names.values()) == N_ROWS
    assert "pythia:160m-deduped" in names and "pythia:160m-deduped:5shot" in names and "pythia:1b-bf16" in names
    by_name: dict = {}
    for r in rows:
        name = f"pythia:{r['model']}" + ("" if r["num_fewshot"] == "0" else f":{r['num_fewshot']}shot")
        by_name.setdefault(name, {})[(int(r["step"]), r["task"], r["metric"])] = r
    for name, want in by_name.items():
        t = read_evals(name)
        assert len(t) == len(want) == names[name], name
        for rec in t.rows():
            r = want[(rec["step"], rec["task"], rec["metric"])]
            assert rec["value"] == float(r["value"])
            assert rec["stderr"] == float(r["stderr"]) if r["stderr"] else math.isnan(rec["stderr"])
            assert rec["source"] == r["source_file"]


def test_pythia_zero_and_five_shot():
    z = read_evals("pythia:160m-deduped")
    assert z.steps.tolist()[:4] == [0, 1, 2, 4] and z.steps[-1] == 143000 and z.steps.size == 27
    assert len(z.tasks) == 87
    f = read_evals("pythia:160m-deduped:5shot")
    assert f.steps.size == 15
    assert z.duplicated_steps() == {1: 0}  # the data's known trap
    lam = dict(zip(*z.select("lambada_openai", "ppl")[:2]))
    assert set(z.metrics("lambada_openai")) == {"acc", "ppl"}
    assert not z.higher_is_better[(z.task == "lambada_openai") & (z.metric == "ppl")].any()
    assert z.higher_is_better[(z.task == "lambada_openai") & (z.metric == "acc")].all()
    assert lam[143000] < lam[0]


def test_unknown_pythia_name_lists_the_known_ones():
    for bad in ("pythia:13b", "pythia:160m:3shot", "pythia:160m:x", "pythia:"):
        with pytest.raises(ValueError, match=r"unknown Pythia eval source .*known: pythia:1\.4b, "):
            read_evals(bad)


def test_raw_v03_files_read_back_to_the_shipped_values(raw):
    t = read_evals(raw / "pythia-160m-deduped-zero-shot")
    s = read_evals("pythia:160m-deduped")
    for c in ("step", "task", "metric", "value", "stderr", "higher_is_better"):
        np.testing.assert_array_equal(getattr(t, c), getattr(s, c), err_msg=c)
    assert t.notes == ()


def test_the_four_misnamed_files_are_read_by_content(raw):
    files_ = sorted((raw / "pythia-1b-bf16-misnamed").glob("*.json"))
    assert [f.name for f in files_][0].startswith("1b-bf16-5shot_step")
    t = read_evals(files_)  # a list of files
    assert t.steps.tolist() == [128, 256, 512, 1000]
    s = read_evals("pythia:1b-bf16")
    keep = np.isin(s.step, [128, 256, 512, 1000])
    np.testing.assert_array_equal(t.value, s.value[keep])
    np.testing.assert_array_equal(t.stderr, s.stderr[keep])


def _v04(path: Path, results: dict, model_args="pretrained=EleutherAI/pythia-160m,revision=step1000", **extra):
    doc = {"results": results, "config": {"model": "hf", "model_args": model_args}, **extra}
    path.write_text(json.dumps(doc))
    return path


def test_v04_layout_filters_alias_and_missing_stderr(tmp_path):
    _v04(tmp_path / "results_2024-01-01.json", {
        "piqa": {"alias": "piqa", "acc,none": 0.6, "acc_stderr,none": 0.01, "acc_norm,none": 0.61,
                 "acc_norm_stderr,none": "N/A"},
        "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.02, "exact_match_stderr,strict-match": 0.004},
        "wikitext": {"word_perplexity,none": 30.5, "bits_per_byte,none": 0.9}})
    t = read_evals(tmp_path)
    rows = {(r["task"], r["metric"]): r for r in t.rows()}
    assert set(rows) == {("piqa", "acc"), ("piqa", "acc_norm"), ("gsm8k", "exact_match,strict-match"),
                         ("wikitext", "word_perplexity"), ("wikitext", "bits_per_byte")}
    assert rows[("piqa", "acc")]["stderr"] == 0.01 and math.isnan(rows[("piqa", "acc_norm")]["stderr"])
    assert rows[("gsm8k", "exact_match,strict-match")]["stderr"] == 0.004
    assert not rows[("wikitext", "word_perplexity")]["higher_is_better"]
    assert not rows[("wikitext", "bits_per_byte")]["higher_is_better"]
    assert set(t.step.tolist()) == {1000}


def test_lower_is_better_set_is_the_spec_list():
    assert LOWER_IS_BETTER == {"ppl", "perplexity", "loss", "bits_per_byte", "word_perplexity", "byte_perplexity"}
    assert not higher_is_better("loss") and not higher_is_better("ppl,none") and higher_is_better("acc")


def test_step_from_content_beats_the_name_and_name_is_the_fallback(tmp_path):
    _v04(tmp_path / "m_step5.json", {"piqa": {"acc,none": 0.5}}, model_args="pretrained=x,revision=step7")
    _v04(tmp_path / "m_step9.json", {"piqa": {"acc,none": 0.6}}, model_args="pretrained=/ckpt/local")
    _v04(tmp_path / "dict_args.json", {"piqa": {"acc,none": 0.7}}, model_args={"pretrained": "x", "revision": "step11"})
    t = read_evals(tmp_path)
    assert t.steps.tolist() == [7, 9, 11]
    assert any("m_step5.json" in n and "using 7" in n for n in t.notes)


def test_a_file_without_a_step_is_an_error_naming_it(tmp_path):
    f = _v04(tmp_path / "results.json", {"piqa": {"acc,none": 0.5}}, model_args="pretrained=x,revision=main")
    with pytest.raises(ValueError, match=r"results\.json.*no step"):
        read_evals(f)


@pytest.mark.parametrize("content, match", [
    ("{not json", "is not JSON"),
    ("[1, 2]", "no 'results'"),
    ('{"config": {}}', "no 'results'"),
    ('{"results": {"piqa": {"acc": "high"}}}', "piqa acc is not a number: 'high'"),
    ('{"results": {"piqa": {"acc": null}}}', "piqa acc is not a number: None"),
    ('{"results": {"piqa": {"acc": true}}}', "piqa acc is not a number: True"),
    ('{"results": {"piqa": 0.5}}', r"results\['piqa'\] is not an object"),
    ('{"results": {"piqa": {"acc": 0.5, "acc_stderr": "x"}}}', "acc_stderr is not a number"),
    ('{"results": {"piqa": {"acc": NaN}}}', "not finite"),
])
def test_bad_json_files_are_refused_naming_the_file(tmp_path, content, match):
    good = _v04(tmp_path / "a_step1.json", {"piqa": {"acc,none": 0.5}})
    bad = tmp_path / "b_step2.json"
    bad.write_text(content)
    with pytest.raises(ValueError, match=match) as exc:
        read_evals([good, bad])
    assert "b_step2.json" in str(exc.value)


def test_step_given_twice_with_different_values(tmp_path):
    _v04(tmp_path / "a.json", {"piqa": {"acc,none": 0.5}})
    _v04(tmp_path / "b.json", {"piqa": {"acc,none": 0.51}})
    with pytest.raises(ValueError, match=r"step 1000 given twice with different values for piqa acc"):
        read_evals(tmp_path)
    (tmp_path / "b.json").unlink()
    _v04(tmp_path / "b.json", {"piqa": {"acc,none": 0.5}})  # the same record twice is merged, and said
    t = read_evals(tmp_path)
    assert len(t) == 1 and any("identical duplicate" in n for n in t.notes)


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_evals(tmp_path / "nope")
    with pytest.raises(ValueError, match="holds no .json result files"):
        read_evals(tmp_path)
    with pytest.raises(ValueError, match="empty list"):
        read_evals([])
    with pytest.raises(TypeError, match="eval source must be"):
        read_evals(3.5)


def test_csv_parquet_dataframe_and_mapping_agree(tmp_path):
    pytest.importorskip("pandas")
    m = {0: {"piqa": 0.5, "arc_easy": {"acc": (0.3, 0.01), "acc_norm": 0.31}},
         "step10": {"piqa": 0.6, "arc_easy": {"acc": (0.35, 0.01), "acc_norm": 0.33}}}
    t = read_evals(m)
    assert len(t) == 6 and t.steps.tolist() == [0, 10]
    df = t.to_pandas()
    assert list(df.columns) == ["step", "task", "metric", "value", "stderr", "higher_is_better", "source"]
    df[["step", "task", "metric", "value", "stderr"]].to_csv(tmp_path / "s.csv", index=False)
    df.drop(columns="source").to_parquet(tmp_path / "s.parquet")
    df[["step", "task", "metric", "value", "stderr"]].to_csv(tmp_path / "s.csv.gz", index=False)
    for other in (read_evals(tmp_path / "s.csv"), read_evals(tmp_path / "s.parquet"),
                  read_evals(tmp_path / "s.csv.gz"), read_evals(df)):
        for c in ("step", "task", "metric", "value", "stderr", "higher_is_better"):
            np.testing.assert_array_equal(getattr(other, c), getattr(t, c), err_msg=c)
    assert read_evals(t) is t and isinstance(t, EvalTable) and "6 records" in repr(t)


def test_bad_tables(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("step,task,value\n1,piqa,0.5\n")
    with pytest.raises(ValueError, match=r"a\.csv: missing column\(s\) metric"):
        read_evals(p)
    p.write_text("step,task,metric,value\n1,piqa,acc,0.5\n2,piqa,acc,high\n")
    with pytest.raises(ValueError, match=r"row 2 value is not a number: 'high'"):
        read_evals(p)
    p.write_text("step,task,metric,value\n1.5,piqa,acc,0.5\n")
    with pytest.raises(ValueError, match="not an integer step"):
        read_evals(p)
    p.write_text("step,task,metric,value\n1,piqa,acc,0.5\n1,piqa,acc,0.6\n")
    with pytest.raises(ValueError, match="step 1 given twice with different values"):
        read_evals(p)
    p.write_text("model,step,task,metric,value\n160m,1,piqa,acc,0.5\n410m,1,piqa,acc,0.6\n")
    with pytest.raises(ValueError, match="column 'model' holds several values"):
        read_evals(p)
    with pytest.raises(ValueError, match=r"mapping\[1\]\['piqa'\] acc is not a number"):
        read_evals({1: {"piqa": "x"}})
    with pytest.raises(ValueError, match="is not a step"):
        read_evals({"final": {"piqa": 0.5}})


def test_exported_from_the_package():
    assert nm.read_evals is read_evals and nm.EvalTable is EvalTable
