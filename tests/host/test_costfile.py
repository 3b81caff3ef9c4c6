"""Cost files: round trip, defaults named, bad files rejected in one line."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from napikit import cli
from napikit.config import CostDistribution, CostModel
from napikit.errors import ConfigError, NapikitError
from napikit.host import costfile
from napikit.host.costfile import CostEntry


def _entries() -> dict[str, CostEntry]:
    return {name: CostEntry(100 + i, (90 + i, 120 + i), f"measurement {i}")
            for i, name in enumerate(costfile.FIELDS)}


def test_round_trip(tmp_path: Path) -> None:
    """Every field written is read back; host and measurements tables survive."""
    path = tmp_path / "costs.toml"
    costfile.write(path, _entries(), {"ncpus": 2}, {"m": {"median": 1.5}}, napikit="0.1.0")
    loaded = costfile.load(path)
    assert loaded.costs == CostModel(**{n: e.value for n, e in _entries().items()})
    assert loaded.defaults == ()
    assert loaded.sources["udp_recvmsg_ns"].startswith("measurement")
    assert loaded.host == {"ncpus": 2}
    assert loaded.measurements["m"]["median"] == 1.5


def test_missing_fields_keep_defaults_and_are_named() -> None:
    """A field the file lacks is napikit's default, listed in defaults."""
    loaded = costfile.loads('[costs.udp_recvmsg_ns]\nunit = "ns"\nvalue = 7\n')
    assert loaded.costs.udp_recvmsg_ns == 7
    assert loaded.costs.ipi_send_ns == CostModel().ipi_send_ns
    assert "ipi_send_ns" in loaded.defaults and "udp_recvmsg_ns" not in loaded.defaults


@pytest.mark.parametrize(("text", "field"), [
    ('[costs.no_such_ns]\nvalue = 1\n', "costs.no_such_ns"),
    ('[costs.ipi_send_ns]\nvalue = "fast"\n', "costs.ipi_send_ns.value"),
    ('[costs.ipi_send_ns]\nvalue = true\n', "costs.ipi_send_ns.value"),
    ('[costs.ipi_send_ns]\nvalue = 1.5\n', "costs.ipi_send_ns.value"),
    ('[costs.ipi_send_ns]\nvalue = -1\n', "costs.ipi_send_ns.value"),
    ('[costs.ipi_send_ns]\nunit = "us"\nvalue = 1\n', "costs.ipi_send_ns.unit"),
    ('[costs.ipi_send_ns]\nvalue = 1\nspread = [3]\n', "costs.ipi_send_ns.spread"),
    ('[costs.ipi_send_ns]\nvalue = 1\nspread = [3, 2]\n', "costs.ipi_send_ns.spread"),
    ('[costs.ipi_send_ns]\nvalue = 1\nsource = 3\n', "costs.ipi_send_ns.source"),
    ('[costs.ipi_send_ns]\nvalue = 1\ncolour = "red"\n', "costs.ipi_send_ns.colour"),
    ('[costs.ipi_send_ns]\nunit = "ns"\n', "costs.ipi_send_ns.value"),
    ('costs = 3\n', "costs"),
    ('[costs]\nipi_send_ns = 5\n', "costs.ipi_send_ns"),
    ('[kernel]\nhz = 100\n', "kernel"),
    ('format = "other/2"\n', "format"),
    ('[costs.ipi_send_ns]\nvalue = 1\ndistribution = 3\n', "costs.ipi_send_ns.distribution"),
    ('[costs.ipi_send_ns]\nvalue = 1\ndistribution = {kind = "pareto"}\n',
     "costs.ipi_send_ns.distribution.kind"),
    ('[costs.ipi_send_ns]\nvalue = 1\ndistribution = {kind = "lognormal"}\n',
     "costs.ipi_send_ns.distribution.sigma"),
    ('[costs.ipi_send_ns]\nvalue = 1\ndistribution = {kind = "empirical", values = [1, 2], '
     'weights = [1]}\n', "costs.ipi_send_ns.distribution.weights"),
    ('[costs.ipi_send_ns]\nvalue = 1\ndistribution = {kind = "exponential", mean = 3}\n',
     "costs.ipi_send_ns.distribution.mean"),
])
def test_bad_field_is_a_config_error_naming_it(text: str, field: str) -> None:
    """Unknown fields and wrong types: a ConfigError naming the field."""
    with pytest.raises(ConfigError) as e:
        costfile.loads(text)
    assert e.value.field == field
    assert "\n" not in str(e.value)


def test_not_toml_is_one_line() -> None:
    """A syntax error names the file."""
    with pytest.raises(NapikitError) as e:
        costfile.loads("[costs\n", "bad.toml")
    assert str(e.value).startswith("bad.toml:") and "\n" not in str(e.value)


def test_loading_runs_no_code(tmp_path: Path) -> None:
    """TOML is data: a string that looks like code stays a string."""
    loaded = costfile.loads('[costs.ipi_send_ns]\nvalue = 1\nsource = "__import__(\'os\')"\n')
    assert loaded.sources["ipi_send_ns"] == "__import__('os')"


def test_cli_run_with_costs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """napikit run --costs loads the file into the run's CostModel; --set still wins."""
    path = tmp_path / "costs.toml"
    costfile.write(path, _entries(), {}, {})
    assert cli.main(["run", "--costs", str(path), "--packets", "500", "--json",
                     "--set", "costs.ipi_send_ns=5"]) == 0
    import json

    costs = json.loads(capsys.readouterr().out)["config"]["costs"]
    expected = attrs.asdict(CostModel(**{n: e.value for n, e in _entries().items()}))
    expected["ipi_send_ns"] = 5
    assert costs == expected


def test_distributions_round_trip_and_reach_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An entry's measured shape is written, read back, and --costs runs with it."""
    shape = CostDistribution("empirical", values=(900.0, 1000.0, 1700.0), weights=(2, 5, 1))
    entries = _entries()
    entries["protocol_rx_ns"] = attrs.evolve(entries["protocol_rx_ns"], distribution=shape)
    entries["ipi_latency_ns"] = attrs.evolve(entries["ipi_latency_ns"],
                                             distribution=CostDistribution("exponential"))
    path = tmp_path / "costs.toml"
    costfile.write(path, entries, {}, {})
    loaded = costfile.load(path)
    assert loaded.distributions == {"protocol_rx_ns": shape,
                                    "ipi_latency_ns": CostDistribution("exponential")}
    assert cli.main(["run", "--costs", str(path), "--packets", "500", "--json"]) == 0
    import json

    dists = json.loads(capsys.readouterr().out)["config"]["cost_distributions"]
    assert dists["protocol_rx_ns"]["kind"] == "empirical"
    assert dists["ipi_latency_ns"]["kind"] == "exponential"


@pytest.mark.parametrize("command", ["run", "compare"])
def test_cli_bad_cost_file_is_one_line_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad cost file: exit 2, one line naming the field."""
    path = tmp_path / "bad.toml"
    path.write_text('[costs.wakeup_ns]\nvalue = "x"\n')
    assert cli.main([command, "--costs", str(path), "--packets", "100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "costs.wakeup_ns.value" in err


def test_cli_missing_cost_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not there: exit 2, one line."""
    assert cli.main(["run", "--costs", str(tmp_path / "none.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.toml" in err


def test_median_spread() -> None:
    """Median and range, clamped at 0."""
    assert costfile.median_spread([3.0, -1.0, 2.0]) == (2, (0, 3))
    assert costfile.median_spread([1.0, 2.0]) == (2, (1, 2))


def test_calibrate_refuses_an_unwritable_out_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing directory: one line, exit 2, and no measurement started."""
    from napikit.host import calibrate

    monkeypatch.setattr(calibrate, "calibrate", lambda *a, **k: pytest.fail("measured"))
    assert cli.main(["calibrate", "--quick", "--out", str(tmp_path / "no" / "c.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no directory" in err
