"""Hub revision grammars, repository patterns and files of ids (run/revisions.py), and what
make_series makes of them: steps, tokens, the order of stages, names without a step."""
from __future__ import annotations

import pytest

import neuromfa_native as nm
from neuromfa_native.run.checkpoints import make_series
from neuromfa_native.run.revisions import RevisionName, expand_sources, parse_values

NAMES = [  # (name, step, tokens, stage, ingredient): what each family publishes
    ("step1000", 1000, None, None, None),  # Pythia
    ("step0", 0, None, None, None),
    ("step1000-tokens4B", 1000, 4 * 10**9, None, None),  # OLMo, Apertus
    ("step477000-tokens2000B", 477000, 2 * 10**12, None, None),
    ("stage1-step140000-tokens588B", 140000, 588 * 10**9, 1, None),  # OLMo 2
    ("stage2-ingredient3-step11931-tokens50B", 11931, 50 * 10**9, 2, 3),
    ("step-1000", 1000, None, None, None),  # SmolLM
    ("stage1-step-40000", 40000, None, 1, None),
    ("ckpt_042", 42, None, None, None),  # Amber, K2
    ("global_step1000", 1000, None, None, None),  # BLOOM
    ("google/multiberts-seed_0-step_20k", 20000, None, None, None),  # repositories
    ("TinyLlama/TinyLlama-1.1B-intermediate-step-480k-1T", 480000, 10**12, None, None),
    ("step1.5k", 1500, None, None, None),
    ("step2M", 2 * 10**6, None, None, None),
]


@pytest.mark.parametrize("name, step, tokens, stage, ingredient", NAMES)
def test_each_family_name_gives_its_step_and_tokens(name, step, tokens, stage, ingredient) -> None:
    assert nm.parse_revision(name) == RevisionName(step, tokens, stage, ingredient)


@pytest.mark.parametrize("name", ["main", "refs/pr/1", "v1.0", "final", "steps", "mystep", "step", "tokens4B"])
def test_names_without_a_step_give_none(name) -> None:
    assert nm.parse_revision(name) is None


def test_parse_revision_refuses_a_non_string() -> None:
    with pytest.raises(TypeError, match="name must be a str"):
        nm.parse_revision(1000)


def test_a_series_of_stages_is_ordered_by_stage_then_step() -> None:
    revs = ["stage2-ingredient1-step100-tokens1B", "stage1-step2000-tokens9B", "stage1-step100-tokens1B",
            "stage2-ingredient2-step100-tokens1B"]
    cps = make_series("allenai/OLMo-2-1124-7B", revisions=revs)
    assert [c.label for c in cps] == ["stage1-step100-tokens1B", "stage1-step2000-tokens9B",
                                      "stage2-ingredient1-step100-tokens1B", "stage2-ingredient2-step100-tokens1B"]
    assert [c.step for c in cps] == [100, 2000, 100, 100] and [c.tokens for c in cps] == [10**9, 9 * 10**9, 10**9, 10**9]
    with pytest.raises(ValueError, match="the same training step 100"):
        make_series("allenai/OLMo-2-1124-7B", revisions=["stage1-step100", "step100-tokens1B", "stage1-step-100"])


def test_a_hub_series_without_steps_in_its_names_says_so() -> None:
    with pytest.warns(UserWarning, match=r"1 of 3 checkpoint names give no training step \(main\): the checkpoints "
                                         r"are kept in the given order"):
        cps = make_series("EleutherAI/pythia-14m", revisions=["step1000", "main", "step0"])
    assert [c.label for c in cps] == ["step1000", "main", "step0"] and [c.step for c in cps] == [0, 1, 2]
    assert not any(c.step_parsed for c in cps)


def test_repository_patterns_and_values() -> None:
    cps = make_series(["google/multiberts-seed_0-step_{N}k"], values="0:40:20,100")
    assert [c.source for c in cps] == [f"google/multiberts-seed_0-step_{n}k" for n in (0, 20, 40, 100)]
    assert [c.step for c in cps] == [0, 20000, 40000, 100000]
    assert parse_values("0:200:100,300:500:100") == [0, 100, 200, 300, 400, 500]
    assert parse_values([3, 1]) == [3, 1]
    with pytest.raises(ValueError, match="is a pattern: give the values of N"):
        make_series(["google/multiberts-seed_0-step_{N}k"])
    with pytest.raises(ValueError, match="values apply to a source pattern with"):
        make_series(["org/a"], values="1,2")
    with pytest.raises(ValueError, match=r"values: 'x' is not an integer or a start:stop:step range"):
        parse_values("1,x")
    with pytest.raises(ValueError, match="start <= stop and step > 0"):
        parse_values("5:1")


def test_a_file_of_ids(tmp_path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# TinyLlama's intermediate checkpoints\nTinyLlama/TinyLlama-1.1B-intermediate-step-480k-1T\n\n"
                   "TinyLlama/TinyLlama-1.1B-intermediate-step-240k-503b\n")
    assert expand_sources([f"@{ids}"]) == ["TinyLlama/TinyLlama-1.1B-intermediate-step-480k-1T",
                                            "TinyLlama/TinyLlama-1.1B-intermediate-step-240k-503b"]
    cps = make_series([f"@{ids}"])
    assert [c.step for c in cps] == [240000, 480000] and cps[1].tokens == 10**12


def test_local_names_keep_the_local_parser(tmp_path) -> None:
    """Local folders go through parse_step, as before; tokens are a hub name's only."""
    from tiny_series import make_series_dirs

    dirs = make_series_dirs(tmp_path, [0, 10])
    cps = make_series(dirs)
    assert [c.step for c in cps] == [0, 10] and [c.tokens for c in cps] == [None, None]


def test_the_cli_passes_values_and_revisions(monkeypatch, tmp_path) -> None:
    from neuromfa_native import cli
    from neuromfa_native.run import runner

    seen = {}

    def fake(checkpoints, **kw):
        seen.update(kw, checkpoints=checkpoints)
        raise ValueError("stop here")

    monkeypatch.setattr(runner, "analyze_series", fake)
    rc = cli.main(["analyze", "google/multiberts-seed_0-step_{N}k", "--values", "0:40:20", "--out", str(tmp_path / "o")])
    assert rc != 0 and seen["values"] == "0:40:20"
    rc = cli.main(["analyze", "org/m", "--revisions", "stage1-*", "--cache", "none", "--out", str(tmp_path / "p")])
    assert rc != 0 and seen["revisions"] == "stage1-*" and seen["cache"] == "none"


def test_counts_beyond_what_a_run_can_have_are_no_counts():
    """A step or token count past 2**53 (or a step that is no whole number) is not read through a
    float into a wrong number: the name gives no step (or no tokens)."""
    from neuromfa_native import parse_revision
    assert parse_revision("step" + "9" * 30) is None
    assert parse_revision("ckpt_" + "9" * 40) is None
    assert parse_revision("step1.2345k") is None
    assert parse_revision("step9007199254740992").step == 2**53  # the bound itself is a step
    r = parse_revision("step1000-tokens" + "9" * 30 + "B")
    assert r.step == 1000 and r.tokens is None
    assert parse_revision("step1000-tokens4.5B").tokens == 4_500_000_000


def test_values_are_counted_before_they_are_made():
    """A few characters of --values must not fill memory: the count is checked first."""
    from neuromfa_native._validation import MAX_VALUES

    assert len(parse_values(f"1:{MAX_VALUES}")) == MAX_VALUES
    with pytest.raises(ValueError, match=r"values: '0:10000000000' names 10000000001 values; at most 100000 in all"):
        parse_values("0:10000000000")
    with pytest.raises(ValueError, match=r"at most 100000 in all"):
        parse_values(f"1:{MAX_VALUES},0:5")  # the sum of the ranges counts
    with pytest.raises(ValueError, match=r"more than 100000 values"):
        parse_values(f"1:{MAX_VALUES},7")
    with pytest.raises(ValueError, match=r"'9007199254740993' has a number above 2\*\*53"):
        parse_values("9007199254740993")
    with pytest.raises(ValueError, match=r"is not an integer or a start:stop:step range"):
        parse_values("9" * 5000)  # no 5000-digit integer is made (Python refuses beyond 4300)
