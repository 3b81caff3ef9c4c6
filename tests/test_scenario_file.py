"""Scenario files (a Config as TOML), the configuration fingerprint, and replay."""

from __future__ import annotations

import json
import subprocess
import tomllib
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomli_w

import napikit
from napikit import (
    Config,
    ConfigError,
    CostDistribution,
    CostModel,
    CpuHotplug,
    Cyclictest,
    KernelParams,
    LoopbackUdp,
    NapikitError,
    NicIrq,
    config_fingerprint,
    dump_scenario,
    load_scenario,
    loads_scenario,
    replay,
)
from napikit.scenario_file import FORMAT, MISSING, Difference

#: Every kind of field at once: three workload kinds, hotplug, offline CPUs, options of
#: each type, optional fields set and unset, no packet limit (a duration instead).
EVERYTHING = Config(
    ncpus=4,
    workloads=(
        LoopbackUdp(senders=(0,), receivers=(1,), flows=3, rate_pps=250_000.5, rps_cpus=(1, 2),
                    nice=-5),
        NicIrq(cpu=2, rate_pps=1e6, arrival="bursty", burst=8, flow_dist="zipf", zipf_s=0.9,
               rps_cpus=(0, 1, 2, 3)),
        Cyclictest(cpu=1, period_ns=100_000, priority=90, work_ns=2_000),
    ),
    policy="backlog-threads",
    offline_cpus=(3,),
    hotplug=(CpuHotplug(time_ns=1_000_000, cpu=3, online=True),
             CpuHotplug(time_ns=2_000_000, cpu=2, online=False)),
    policy_options={"fast_path": False, "n": 3, "x": 1.5, "mode": "fast"},
    kernel=KernelParams(netdev_budget_usecs=4000, flow_limit_cpu_bitmap=(0, 1),
                        scheduler="cfs", sched_latency_ns=3_000_000),
    costs=CostModel(context_switch_ns=800, remote_skb_ns=30),
    cost_distributions={
        "protocol_rx_ns": CostDistribution("exponential"),
        "ipi_latency_ns": CostDistribution("lognormal", sigma=0.5),
        "context_switch_ns": CostDistribution("empirical", values=(400, 500.5, 1500),
                                              weights=(3, 6, 1)),
    },
    packets=None,
    duration_ns=5_000_000,
    sample_interval_ns=250_000,
    stall_timeout_ns=None,
    seed=2**64 - 1,
)


def _doc(config: Config) -> dict[str, Any]:
    """The TOML document a config dumps to, as data to edit."""
    return tomllib.loads(dump_scenario(config))


def _load(doc: dict[str, Any]) -> Config:
    return loads_scenario(tomli_w.dumps(doc))


def _error(doc: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(doc)
    assert "\n" not in str(info.value)
    return info.value


# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", napikit.scenarios.names())
def test_every_shipped_scenario_round_trips_under_every_policy(name, policy):
    """A dumped shipped scenario, under each policy variant, loads back equal."""
    config = napikit.scenarios.get(name).config.evolve(**policy)
    assert loads_scenario(dump_scenario(config)) == config


def test_every_kind_of_field_round_trips():
    """Tuples, unions, every workload kind, nested classes and None fields round-trip."""
    loaded = loads_scenario(dump_scenario(EVERYTHING))
    assert loaded == EVERYTHING
    assert napikit.config_dict(loaded) == napikit.config_dict(EVERYTHING)


def test_a_none_field_whose_default_is_none_is_left_out():
    """TOML has no null: a None field with a None default is not written, and loads as
    None."""
    text = dump_scenario(Config())
    assert "netdev_budget_usecs" not in text and "rate_pps" not in text
    assert loads_scenario(text).kernel.netdev_budget_usecs is None


def test_a_none_field_whose_default_is_a_value_is_written_none():
    """packets and stall_timeout_ns default to values, so their None is written "none"."""
    doc = _doc(EVERYTHING)
    assert (doc["packets"], doc["stall_timeout_ns"]) == ("none", "none")
    assert _load(doc).stall_timeout_ns is None


def test_a_file_holds_every_field():
    """The dump names every field of Config and of its nested classes (None-defaults
    aside), so it describes the run completely."""
    doc = _doc(Config())
    none_default = {a.name for a in attrs.fields(Config) if a.default is None}
    assert set(doc) == {"format", *attrs.fields_dict(Config)} - none_default
    assert set(doc["costs"]) == set(attrs.fields_dict(CostModel))
    hints = typing.get_type_hints(KernelParams)
    optional = {name for name, tp in hints.items() if type(None) in typing.get_args(tp)}
    assert set(doc["kernel"]) == set(hints) - optional


def test_keys_left_out_take_their_defaults():
    """A file with the format key alone is the default Config."""
    assert loads_scenario(f'format = "{FORMAT}"\n') == Config()


def test_an_integer_for_a_float_field_is_that_float():
    """`rate_pps = 500000` loads as 500000.0, as `--set workload.rate_pps=500000` makes it."""
    doc = _doc(Config())
    doc["workloads"][0]["rate_pps"] = 500_000
    rate = _load(doc).workloads[0].rate_pps
    assert (rate, type(rate)) == (500_000.0, float)


def test_name_and_description_are_informational():
    """name and description are written when given and do not change the Config."""
    text = dump_scenario(Config(), name="mine", description="my run")
    doc = tomllib.loads(text)
    assert (doc["name"], doc["description"]) == ("mine", "my run")
    assert loads_scenario(text) == Config()


def test_a_hand_written_file_in_array_of_tables_form_loads():
    """`[[workloads]]` tables with a kind key, nested tables and comments load."""
    text = f"""
        format = "{FORMAT}"
        ncpus = 4   # four CPUs
        [[workloads]]
        kind = "NicIrq"
        rate_pps = 2e6
        rps_cpus = [0, 1, 2, 3]
        [[workloads]]
        kind = "Cyclictest"
        cpu = 2
        [kernel]
        netdev_max_backlog = 300
    """
    config = loads_scenario(text)
    assert config.workloads == (NicIrq(rate_pps=2e6, rps_cpus=(0, 1, 2, 3)), Cyclictest(cpu=2))
    assert config.kernel == KernelParams(netdev_max_backlog=300)


# ----------------------------------------------------------------- errors


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """``doc`` with the key at dotted ``path`` (``workloads[0].rate_pps``) set to
    ``value``; :data:`MISSING` deletes it."""
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    for part in parents:
        doc = doc[int(part)] if part.isdigit() else doc[part]
    if value is MISSING:
        del doc[last]
    else:
        doc[last] = value


_BASE = Config(ncpus=3, workloads=(LoopbackUdp(), Cyclictest(cpu=2)),
               hotplug=(CpuHotplug(time_ns=10, cpu=2, online=False),))


@pytest.mark.parametrize("path, value, named, allowed", [
    ("colour", "red", "colour", "a key of Config, one of: format, name"),
    ("kernel.nope", 1, "kernel.nope", "a key of KernelParams, one of: hz,"),
    ("workloads[1].colour", 1, "workloads[1].colour", "a key of Cyclictest, one of: cpu,"),
    ("kernel.hz", "1000", "kernel.hz", "an integer from 1 to 10000"),
    ("kernel.hz", 1000.0, "kernel.hz", "an integer from 1 to 10000"),
    ("kernel.preempt_rt", 1, "kernel.preempt_rt", "true or false"),
    ("costs.protocol_rx_ns", -1, "costs.protocol_rx_ns", "an integer from 0 to"),
    ("kernel", 5, "kernel", "a table of KernelParams fields"),
    ("offline_cpus", "2", "offline_cpus", "a list (an integer each)"),
    ("workloads", 3, "workloads", "a list (a table with kind = one of: LoopbackUdp"),
    ("workloads[0].rate_pps", 0, "workloads[0].rate_pps", "a number from 1 to 1e+09"),
    ("workloads[0].senders", [5], "workloads[0].senders", "CPU numbers < ncpus=3 not in"),
    ("workloads[1].cpu", 7, "workloads[1].cpu", "CPU numbers < ncpus=3"),
    ("workloads[1].work_ns", 10**7, "workloads[1].work_ns", "an integer below period_ns"),
    ("workloads[0].kind", "Disk", "workloads[0].kind", "one of: LoopbackUdp, NicIrq"),
    ("workloads[0].kind", "KernelParams", "workloads[0].kind", "one of: LoopbackUdp"),
    ("workloads[0].kind", MISSING, "workloads[0].kind", "one of: LoopbackUdp"),
    ("hotplug[0].online", MISSING, "hotplug[0].online", "true or false (the key has no"),
    ("hotplug[0].online", True, "hotplug[0].online", "a change of state (CPU 2 is already"),
    ("policy_options", [1], "policy_options", "a table of policy options"),
    ("policy_options.fast_path", [1], "policy_options.fast_path", "true/false, a finite"),
    ("packets", "none", "packets", "an integer >= 1 when duration_ns is not set"),
    ("format", "napikit-scenario/9", "format", f'"{FORMAT}"'),
    ("format", MISSING, "format", f'"{FORMAT}"'),
    ("name", 3, "name", "a string"),
])
def test_a_bad_key_is_one_config_error_naming_its_path(path, value, named, allowed):
    """A bad key, a wrong type or a refused value: one ConfigError naming the key's
    dotted path and the values allowed."""
    doc = _doc(_BASE)
    _set(doc, path, value)
    error = _error(doc)
    assert error.field == named
    assert str(error).startswith(f"{named}: must be {allowed}")


def _fields(cls: type, prefix: str) -> list[tuple[str, Any]]:
    return [(f"{prefix}{name}", tp) for name, tp in typing.get_type_hints(cls).items()]


_ALL_FIELDS = [
    *_fields(Config, ""), *_fields(KernelParams, "kernel."), *_fields(CostModel, "costs."),
    *_fields(LoopbackUdp, "workloads[0]."), *_fields(Cyclictest, "workloads[1]."),
    *_fields(NicIrq, "workloads[2]."), *_fields(CpuHotplug, "hotplug[0]."),
]


@pytest.mark.parametrize("path", [path for path, _ in _ALL_FIELDS])
def test_a_value_of_the_wrong_type_in_any_field_is_refused_by_name(path):
    """Every field refuses a value no field takes (a list of tables) with an error
    naming it: no field is structured without a check, whatever class it is in."""
    config = _BASE.evolve(ncpus=4, workloads=(*_BASE.workloads, NicIrq(cpu=3)))
    doc = _doc(config)
    _set(doc, path, [{"wrong": True}])
    assert _error(doc).field.startswith(path)


def test_invalid_toml_is_one_line_naming_the_source():
    """Text that is not TOML is one NapikitError line naming the file."""
    with pytest.raises(NapikitError, match=r"^my\.toml: not valid TOML: .*line 1") as info:
        loads_scenario("ncpus = = 2\n", "my.toml")
    assert "\n" not in str(info.value)


def test_deeply_nested_toml_is_one_line():
    """Nesting that exhausts the parser's recursion is a one-line error, not a crash."""
    with pytest.raises(NapikitError, match="nested too deeply"):
        loads_scenario("a = " + "[" * 100_000 + "]" * 100_000)


def test_a_missing_file_is_one_line(tmp_path):
    """A scenario file that is not there is one line naming it."""
    with pytest.raises(NapikitError, match=r"cannot read scenario file .*nope\.toml: No such"):
        load_scenario(tmp_path / "nope.toml")


def test_load_scenario_reads_a_dumped_file(tmp_path):
    """load_scenario(path) gives the Config dumped to the file."""
    path = tmp_path / "s.toml"
    path.write_text(dump_scenario(EVERYTHING))
    assert load_scenario(path) == EVERYTHING


# ----------------------------------------------------------------- fingerprint


def test_the_fingerprint_is_a_sha256_hex_digest():
    """64 lowercase hex digits."""
    fp = config_fingerprint(Config())
    assert len(fp) == 64 and set(fp) <= set("0123456789abcdef")


def test_the_fingerprint_is_the_same_in_another_process(child):
    """Another interpreter (another hash seed) computes the same fingerprint."""
    script = ("import napikit; print(napikit.config_fingerprint("
              "napikit.scenarios.get('seed-rps').config))")
    out = subprocess.run([*child.python, "-c", script], capture_output=True, text=True,
                         env={**child.env, "PYTHONHASHSEED": "12345"}, timeout=60,
                         check=True).stdout
    assert out.strip() == config_fingerprint(napikit.scenarios.get("seed-rps").config)


def test_equal_configs_have_the_same_fingerprint():
    """An int for a float field and options given in another order change nothing."""
    a = Config(workloads=(LoopbackUdp(rate_pps=500_000),), policy_options={"a": 1, "b": 2})
    b = Config(workloads=(LoopbackUdp(rate_pps=500_000.0),), policy_options={"b": 2, "a": 1})
    assert a == b and config_fingerprint(a) == config_fingerprint(b)


@pytest.mark.parametrize("change", [
    {"seed": 2},
    {"ncpus": 3},
    {"policy": "ksoftirqd"},
    {"packets": 100_001},
    {"drain_ns": 1},
    {"kernel": KernelParams(hz=250)},
    {"kernel": KernelParams(netdev_budget_usecs=2000)},
    {"costs": CostModel(context_switch_ns=501)},
    {"workloads": (LoopbackUdp(rps_cpus=(1,)),)},
    {"workloads": (LoopbackUdp(), Cyclictest())},
    {"hotplug": (CpuHotplug(time_ns=5, cpu=1, online=False),)},
    {"policy_options": {"fast_path": True}},
], ids=lambda c: ",".join(c))
def test_any_field_change_changes_the_fingerprint(change):
    """A change to any field, nested ones included, gives another fingerprint."""
    assert config_fingerprint(Config().evolve(**change)) != config_fingerprint(Config())


def test_napikit_version_is_part_of_the_fingerprint():
    """The same config run by another napikit version has another fingerprint."""
    assert config_fingerprint(Config(), "0.0.1") != config_fingerprint(Config())


def test_every_result_carries_its_fingerprint(run):
    """Result.fingerprint is the config's, and the JSON holds it."""
    config = Config(packets=2_000, seed=4)
    result = run(config)
    assert result.fingerprint == config_fingerprint(config)
    assert json.loads(result.to_json())["fingerprint"] == result.fingerprint


def test_a_result_holds_its_config_in_canonical_form(run):
    """Result.config is Config.to_dict of the canonical config (floats as floats)."""
    config = Config(packets=2_000, workloads=(LoopbackUdp(rate_pps=500_000),))
    assert run(config).config == napikit.canonical_config(config).to_dict()
    assert run(config).config["workloads"][0]["rate_pps"] == 500_000.0


# ----------------------------------------------------------------- replay


@pytest.fixture
def result_file(tmp_path, run) -> Path:
    """A small SEED-RPS result as `napikit run --json` writes it."""
    path = tmp_path / "result.json"
    path.write_text(run(napikit.scenarios.get("seed-rps").config.evolve(packets=2_000))
                    .to_json())
    return path


def _edit(path: Path, **changes: Any) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    return doc


def test_replay_of_an_untouched_result_is_identical(result_file):
    """Rerunning a result's config gives the same bytes."""
    report = replay(result_file)
    assert report.identical and report.consistent and report.same_version
    assert report.differences == ()
    assert report.lines()[-1].endswith(f"(fingerprint {report.fingerprint})")


def test_replay_of_a_tampered_result_names_the_field(result_file):
    """A figure edited in the JSON is the one differing field, old and new."""
    delivered = json.loads(result_file.read_text())["delivered"]
    _edit(result_file, delivered=delivered + 1)
    report = replay(result_file)
    assert not report.identical
    assert report.differences == (Difference("delivered", delivered + 1, delivered),)
    assert f"  delivered: {delivered + 1} -> {delivered}" in report.lines()


def test_replay_names_nested_fields_by_dotted_path(result_file):
    """A differing value inside a list of tables is named with its index."""
    doc = json.loads(result_file.read_text())
    doc["softnet"][1]["processed"] += 7
    result_file.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    assert [d.path for d in replay(result_file).differences] == ["softnet[1].processed"]


def test_replay_lists_a_bounded_number_of_fields(result_file):
    """At most `limit` differing fields are listed; the rest are counted."""
    doc = json.loads(result_file.read_text())
    _edit(result_file, **{k: doc[k] + 1 for k in ("arrived", "delivered", "events", "ipis")})
    lines = replay(result_file).lines(limit=2)
    assert lines[-1] == "  ... and 2 more" and len(lines) == 4


def test_replay_of_an_edited_config_says_the_fingerprint_does_not_match(result_file):
    """A config edited without its fingerprint is noted, and the edited config is run."""
    doc = json.loads(result_file.read_text())
    doc["config"]["seed"] = 99
    result_file.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    report = replay(result_file)
    assert not report.consistent and report.result.seed == 99
    assert any("was the file edited?" in line for line in report.lines())
    assert "fingerprint" in {d.path for d in report.differences}


def test_replay_of_another_versions_result_says_so_and_still_compares(result_file):
    """A result from another napikit version: noted, rerun, compared."""
    doc = json.loads(result_file.read_text())
    fp = napikit.scenario_file.fingerprint_of(doc["config"], "0.0.9")
    _edit(result_file, napikit_version="0.0.9", fingerprint=fp)
    report = replay(result_file)
    assert report.consistent and not report.same_version and not report.identical
    assert report.lines()[0].startswith("note: the result is from napikit 0.0.9, this is "
                                        f"napikit {napikit.__version__}")
    assert {d.path for d in report.differences} == {"napikit_version", "fingerprint"}


def test_replay_of_a_reformatted_result_says_so(result_file):
    """Same values, other bytes (compact JSON): not identical, no field named."""
    result_file.write_text(json.dumps(json.loads(result_file.read_text())))
    report = replay(result_file)
    assert not report.identical and report.differences == ()
    assert "its bytes differ" in report.lines()[-1]


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"napikit_version": "0.1.0"}',
                                  '{"config": {}}', "[" * 100_000])
def test_replay_of_a_file_that_is_no_result_is_one_line(tmp_path, text):
    """Garbage, other JSON, or a document without napikit_version and config."""
    path = tmp_path / "garbage.json"
    path.write_text(text)
    with pytest.raises(NapikitError, match="not a napikit result") as info:
        replay(path)
    assert "\n" not in str(info.value)


def test_replay_of_a_result_with_an_invalid_config_names_the_key(result_file):
    """A config the result holds that is not valid: the key, under config."""
    doc = json.loads(result_file.read_text())
    doc["config"]["kernel"]["hz"] = 0
    result_file.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"^config\.kernel\.hz: must be an integer"):
        replay(result_file)


def test_the_docs_show_the_dump_as_it_is():
    """docs/research-workflow.md's TOML example, up to its "...", is how
    `napikit scenarios --dump seed-rps` begins."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "research-workflow.md").read_text()
    shown = doc.split("```toml\n", 1)[1].split("...\n", 1)[0]
    scenario = napikit.scenarios.get("seed-rps")
    dump = dump_scenario(scenario.config, name=scenario.name, description=scenario.description)
    assert shown.count("\n") > 20 and dump.startswith(shown)
