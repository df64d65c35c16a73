import re

import pytest

from gatewayd import config
from tests.conftest import run_cli


def write(tmp_path, text):
    path = tmp_path / "gatewayd.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, fragment", [
    ("[server]\nprot = 1\n", "unknown key server.prot"),
    ("[serve]\nport = 1\n", "unknown section [serve]"),
    ("[server]\nport = \"80\"\n", "server.port: expected an integer, got str"),
    ("[server]\nport = 70000\n", "server.port: 70000 is above the maximum 65535"),
    ("[terminals]\ncloudtime = \"utc\"\n", "terminals.cloudtime: 'utc' is not one of"),
    ("[terminals]\ntimezone = \"Mars/Base\"\n", "terminals.timezone: unknown time zone"),
    ("[terminals]\nauto_accept = 1\n", "terminals.auto_accept: expected a boolean"),
    ("[lorawan]\nnet_id = \"xyz\"\n", "lorawan.net_id"),
    ("[server\n", "not valid TOML"),
    ("[alerts]\nrules = [{tag = \"a\", device = \"b\", device_offline_after = 1}]\n",
     "alerts.rules[0]: give exactly one of `tag` and `device`"),
    ("[[alerts.rules]]\ntag = \"a\"\ndevice_offline_after = -1\n", "alerts.rules[0].device_offline_after"),
    ("[[alerts.rules]]\ntag = \"a\"\nafter = 1\n", "alerts.rules[0]: unknown key after"),
])
def test_config_errors_name_file_and_key(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as excinfo:
        config.load(path)
    assert str(path) in str(excinfo.value) and fragment in str(excinfo.value)


def test_serve_exits_2_before_binding_on_a_bad_config(tmp_path):
    path = write(tmp_path, "[server]\nport = -1\n")
    result = run_cli("serve", "--config", str(path), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "server.port" in result.stderr and str(path) in result.stderr
    assert not (tmp_path / "s").exists(), "nothing may be created before the configuration is valid"


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, "[server]\nport = 4000\nhost = \"127.0.0.1\"\n")
    settings = config.load(path, {"server": {"port": 5000, "host": None}})
    assert settings.server.port == 5000 and settings.server.host == "127.0.0.1"


def test_config_check_prints_effective_configuration(tmp_path):
    path = write(tmp_path, "[presence]\nws_timeout = 30\n")
    result = run_cli("config", "check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "ws_timeout = 30.0" in result.stdout and "[journal]" in result.stdout


def test_sample_configuration_is_valid_and_complete():
    text = config.sample_toml()
    uncommented = "\n".join(line[1:] if re.match(r"^#[a-z_]+ = ", line) else line
                            for line in text.splitlines())
    import tomllib
    data = tomllib.loads(uncommented)
    settings = config.from_mapping(data, "sample")
    assert settings.to_dict() == config.Settings().to_dict()


def test_reload_splits_live_and_restart_keys():
    old = config.Settings()
    new = config.from_mapping({"presence": {"ws_timeout": 10.0}, "server": {"port": 1234}})
    live, restart = config.reload_changes(old, new)
    assert live == ["presence.ws_timeout"] and restart == ["server.port"]
    config.apply_reload(old, new)
    assert old.presence.ws_timeout == 10.0 and old.server.port == 3000


def test_shipped_sample_and_reference_are_up_to_date():
    from tests.conftest import ROOT

    assert (ROOT / "etc" / "gatewayd.toml").read_text() == config.sample_toml() + "\n", \
        "regenerate: gatewayd config sample > etc/gatewayd.toml"
    assert (ROOT / "docs" / "configuration.md").read_text() == config.reference_markdown() + "\n", \
        "regenerate: gatewayd config reference > docs/configuration.md"


async def test_a_dying_critical_task_takes_the_daemon_down(tmp_path, monkeypatch):
    import trio

    from gatewayd.connector import Connector
    from gatewayd.connectors import CONNECTORS
    from gatewayd.daemon import serve
    from tests.conftest import make_settings

    class Doomed:
        def __init__(self, core):
            self.core = core

        async def run(self, task_status=trio.TASK_STATUS_IGNORED):
            task_status.started()
            await trio.sleep(0.05)
            raise RuntimeError("disk controller on fire")

    doomed = Connector("doomed", services=(("doomed", Doomed),))
    with trio.fail_after(10):
        with pytest.raises(BaseException) as excinfo:
            await serve(make_settings(tmp_path / "state"), connectors=(*CONNECTORS, doomed), handle_signals=False)
    assert "disk controller on fire" in repr(excinfo.value)
