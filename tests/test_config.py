"""Config validation: unknown keys forbidden, errors name file, key and line; exit 78."""

from __future__ import annotations

import textwrap

import pytest

from edgeface.cli import main
from edgeface.config import GateConfig, load_config
from edgeface.errors import ConfigError

GOOD = textwrap.dedent("""\
    [model]
    bundle = "bundle"
    gallery = "/var/lib/edgeface/gallery.efg"

    [camera]
    source = "0"

    [policy]
    k = 3
    n = 5

    [relay]
    backend = "mock"
    pin = 17
    active_high = false
    """)


def write(tmp_path, text):
    p = tmp_path / "gate.toml"
    p.write_text(text)
    return p


def test_valid_config_loads_with_defaults_and_relative_paths(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert isinstance(cfg, GateConfig)
    assert cfg.model.bundle == tmp_path / "bundle"  # relative to the config file
    assert cfg.relay.active_high is False and cfg.relay.pulse_s == 3.0
    assert cfg.policy.k == 3 and cfg.audit.save_faces is False


def test_unknown_key_names_file_key_and_line(tmp_path):
    p = write(tmp_path, GOOD.replace("n = 5", "n = 5\nthreshhold = 0.4"))
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert f"{p}:11: policy.threshhold: unknown key" in str(exc.value)


def test_bad_value_names_its_line(tmp_path):
    p = write(tmp_path, GOOD.replace('active_high = false', 'active_high = "maybe"'))
    with pytest.raises(ConfigError, match=r"gate.toml:15: relay.active_high"):
        load_config(p)


def test_pulse_longer_than_the_hard_maximum_is_refused(tmp_path):
    p = write(tmp_path, GOOD + "pulse_s = 60\n")
    with pytest.raises(ConfigError, match="relay.pulse_s"):
        load_config(p)


def test_k_greater_than_n_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="k \\(6\\) must not exceed n"):
        load_config(write(tmp_path, GOOD.replace("k = 3", "k = 6")))


def test_missing_section_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="camera: Field required"):
        load_config(write(tmp_path, GOOD.replace('[camera]\nsource = "0"\n', "")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[model\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_validate_config_cli_exit_codes(tmp_path, capsys):
    assert main(["validate-config", str(write(tmp_path, GOOD))]) == 78  # valid TOML, but no such bundle here
    assert "bundle not found" in capsys.readouterr().err
    assert main(["validate-config", str(write(tmp_path, GOOD + "bogus = 1\n"))]) == 78
    assert "relay.bogus: unknown key" in capsys.readouterr().err


def test_fleet_section_needs_a_public_key_and_a_real_broker_url(tmp_path):
    from edgeface.config import parse_broker, parse_config
    from edgeface.errors import ConfigError

    base = '[model]\nbundle = "b"\ngallery = "g"\n{key}\n[camera]\nsource = "0"\n[fleet]\nbroker = "{url}"\nsite = "hq"\ndoor = "{door}"\n'
    cfg = parse_config(base.format(key='gallery_public_key = "k.pub"', url="mqtts://broker.example:8884", door="front"))
    assert cfg.fleet.site == "hq" and parse_broker(cfg.fleet.broker) == (True, "broker.example", 8884)
    assert parse_broker("mqtt://10.0.0.2") == (False, "10.0.0.2", 1883)
    with pytest.raises(ConfigError, match="gallery_public_key"):
        parse_config(base.format(key="", url="mqtt://h", door="front"))
    with pytest.raises(ConfigError, match="broker"):
        parse_config(base.format(key='gallery_public_key = "k.pub"', url="http://h", door="front"))
    with pytest.raises(ConfigError, match="fleet.door"):
        parse_config(base.format(key='gallery_public_key = "k.pub"', url="mqtt://h", door="a/#"))
