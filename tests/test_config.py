"""The config contract (SPEC §3.9): keys, units, every error named by key path and line, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediasyncd.config import KIND_ROOTS, MEDIA_GLOBS, find_config, parse_config
from mediasyncd.errors import ConfigError
from mediasyncd.units import parse_duration, parse_mode, parse_size

GOOD = """
[daemon]
library = "/srv/media"
state_dir = "/var/lib/mediasyncd"

[transfer]
concurrency = 6
bwlimit = "20MiB"
file_mode = "0640"

[purge]
older_than = "24h"

[[remotes]]
name = "forge1"
host = "my-gpu-box"
kind = "forge"
poll_interval = "10s"
settle = "5s"
purge = { older_than = "12h" }

[[remotes]]
name = "comfy.box-2"
host = "10.0.0.2"
port = 2222
kind = "comfyui"
host_key = "accept-new"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_spec_example_keys_parse_into_typed_values() -> None:
    """Durations, sizes and modes become numbers; kinds supply their default roots and media globs."""
    c = parse_config(GOOD)
    assert c.transfer.concurrency == 6 and c.transfer.bwlimit == 20 * 2**20 and c.transfer.file_mode == 0o640
    forge, comfy = c.remotes
    assert forge.roots == KIND_ROOTS["forge"] == ("/workspace/stable-diffusion-webui/outputs",)
    assert comfy.roots == ("/workspace/ComfyUI/output",)
    assert forge.include == MEDIA_GLOBS and forge.poll_interval == 10.0
    assert forge.purge.older_than == 12 * 3600 and comfy.purge.older_than == 24 * 3600
    assert comfy.port == 2222 and comfy.host_key == "accept-new" and forge.host_key == "strict"


def test_every_error_is_reported_at_once_with_key_and_line() -> None:
    """Three mistakes in different sections come back together, each with its key path and line."""
    text = GOOD.replace("concurrency = 6", "concurrency = 0").replace(
        'poll_interval = "10s"', 'poll_interval = "ten"'
    )
    text = text.replace("port = 2222", "port = 99999")
    found = problems(text)
    assert len(found) == 3
    assert any(p.startswith("transfer.concurrency (line 7)") for p in found)
    assert any(p.startswith("remotes[0].poll_interval (line 18)") for p in found)
    assert any(p.startswith("remotes[1].port (line 25)") for p in found)


def test_unknown_key_is_named_with_a_suggestion() -> None:
    """A misspelt key names its path and line and suggests the real key."""
    found = problems(GOOD.replace('host = "my-gpu-box"', 'hots = "my-gpu-box"'))
    assert "remotes[0].hots (line 16): unknown key; did you mean 'host'?" in found
    assert "remotes[0].host (line 14): is required" in found


def test_remote_names_must_be_safe_and_unique() -> None:
    """Names become directory names: [A-Za-z0-9._-]+, never '..' or '.mediasyncd', and unique."""
    assert any("must match" in p for p in problems(GOOD.replace('"forge1"', '"../etc"')))
    assert any("must match" in p for p in problems(GOOD.replace('"forge1"', '".mediasyncd"')))
    assert any("duplicate remote name" in p for p in problems(GOOD.replace('"comfy.box-2"', '"forge1"')))


def test_generic_kind_needs_roots_and_roots_must_be_absolute() -> None:
    """A generic remote without roots, or a relative root, is an error naming `roots`."""
    assert any(
        "roots" in p and "required" in p for p in problems(GOOD.replace('kind = "forge"', 'kind = "generic"'))
    )
    found = problems(GOOD.replace('kind = "forge"', 'kind = "forge"\nroots = ["outputs"]'))
    assert any("remotes[0].roots" in p and "absolute" in p for p in found)


def test_non_loopback_status_server_requires_a_token() -> None:
    """Binding the status server beyond loopback without a token is refused."""
    text = GOOD.replace(
        'state_dir = "/var/lib/mediasyncd"', 'state_dir = "/x"\nstatus_listen = "0.0.0.0:8765"'
    )
    assert any("status_token" in p for p in problems(text))


def test_toml_syntax_error_names_the_line() -> None:
    """A TOML syntax error is reported with the parser's line and column."""
    found = problems(GOOD.replace("[transfer]", "[transfer"))
    assert len(found) == 1 and "line 6" in found[0]


def test_config_search_order(tmp_path: Path) -> None:
    """--config wins over $MEDIASYNCD_CONFIG, which wins over the default locations."""
    explicit, env = tmp_path / "a.toml", tmp_path / "b.toml"
    assert find_config(str(explicit), {"MEDIASYNCD_CONFIG": str(env)}) == explicit
    assert find_config(None, {"MEDIASYNCD_CONFIG": str(env)}) == env


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("1.5h", 5400), ("1d", 86400), ("10m", 600), ("2w", 14 * 86400), (5, 5), ("2", 2)],
)
def test_durations(text: str | int, seconds: float) -> None:
    """Durations accept s, m, h, d, w suffixes, decimals and plain seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("200MiB", 200 * 2**20), ("20GB", 20 * 10**9), ("0", 0), (512, 512), ("1.5KiB", 1536)]
)
def test_sizes(text: str | int, size: int) -> None:
    """Sizes accept binary and decimal units."""
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["ten", "-1s", "5 parsecs", True])
def test_bad_durations_are_rejected(bad: object) -> None:
    """Nonsense durations raise ValueError with the expected form."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_modes_are_octal_strings() -> None:
    """Modes are octal strings; a decimal integer is refused (it would be a surprising mode)."""
    assert parse_mode("0644") == 0o644 and parse_mode("755") == 0o755
    with pytest.raises(ValueError):
        parse_mode(644)


def test_the_shipped_example_config_is_valid() -> None:
    """config.toml at the repository root parses without a problem."""
    example = Path(__file__).parent.parent / "config.toml"
    config = parse_config(example.read_text())
    assert config.remotes[0].name == "forge1" and config.pipeline.xmp_naming == "ext"


def test_fixed_words_are_taken_in_any_letter_case() -> None:
    """`kind = "Forge"` is the forge kind (and so for the other fixed words); a wrong word still names
    the choices."""
    c = parse_config(GOOD.replace('kind = "comfyui"', 'kind = "ComfyUI"'))
    assert c.remotes[1].kind == "comfyui" and c.remotes[1].roots == KIND_ROOTS["comfyui"]
    assert any(
        "'forge', 'comfyui', 'generic'" in p
        for p in problems(GOOD.replace('kind = "comfyui"', 'kind = "sdxl"'))
    )


def test_globs_that_can_never_match_are_warnings_with_the_likely_intent() -> None:
    """A bare folder name, a trailing '/' and an unbalanced '[' pass validation but select nothing they
    were meant to: each is a warning naming key, line and the likely intent; good globs are quiet."""
    text = GOOD.replace(
        'kind = "comfyui"',
        'kind = "comfyui"\nexclude = ["txt2img-grids", "grids/**/", "*.tmp", "x/**"]\n'
        'include = ["[*.png", "*.[pj]ng"]',
    ).replace('older_than = "24h"', 'older_than = "24h"\npreserve = ["favourites"]')
    warnings = parse_config(text).warnings
    assert warnings == (
        "purge.preserve (line 13): 'favourites' matches only files named exactly 'favourites', not a folder; "
        "for the folder: 'favourites/**'",
        "remotes[1].include (line 29): '[*.png' has a '[' without its ']', so it matches a literal '['; "
        "did you mean '*.png'?",
        "remotes[1].exclude (line 28): 'txt2img-grids' matches only files named exactly 'txt2img-grids', not "
        "a folder; for the folder: 'txt2img-grids/**'",
        "remotes[1].exclude (line 28): 'grids/**/' ends with '/' and never matches a file; for everything "
        "under it: 'grids/**'",
    )
    assert parse_config(GOOD).warnings == ()


BASE = """
[daemon]
library = "/srv/media"
state_dir = "/var/lib/mediasyncd"
"""


def test_transports_parse_with_their_own_keys() -> None:
    """local, docker and exec remotes need no host; docker builds its `docker exec -i … sh` argv."""
    c = parse_config(
        BASE
        + """
[[remotes]]
name = "here"
transport = "local"
roots = ["/srv/comfyui/output"]

[[remotes]]
name = "box"
transport = "docker"
container = "forge"
docker_host = "unix:///run/other.sock"
files_via = "exec"
kind = "forge"

[[remotes]]
name = "pod"
transport = "exec"
command = ["kubectl", "exec", "-i", "comfy-0", "--", "sh"]
kind = "comfyui"

[[remotes]]
name = "ssh"
host = "gpu"
roots = ["/x"]
"""
    )
    local, box, pod, ssh = c.remotes
    assert (local.transport, local.host, local.roots) == ("local", "", ("/srv/comfyui/output",))
    assert box.shell_command == ("docker", "-H", "unix:///run/other.sock", "exec", "-i", "forge", "sh")
    assert (box.files_via, pod.files_via) == ("exec", "auto")
    assert pod.shell_command == ("kubectl", "exec", "-i", "comfy-0", "--", "sh")
    assert ssh.transport == "ssh"


def test_each_transport_requires_its_keys_and_rejects_the_others() -> None:
    """host only for ssh, container for docker, command for exec: each misuse named with key and line."""
    found = problems(
        BASE
        + """
[[remotes]]
name = "a"
transport = "docker"
host = "gpu"

[[remotes]]
name = "b"
transport = "exec"
command = []
container = "x"
roots = ["/x"]
files_via = "host"

[[remotes]]
name = "c"
transport = "local"
user = "root"
roots = ["/x"]

[[remotes]]
name = "d"
transport = "kubernetes"
"""
    )
    assert "remotes[0].host (line 9): is only for transport 'ssh', not 'docker'" in found
    assert "remotes[0].container (line 6): is required" in found
    assert any(p.startswith("remotes[1].command (line 14): must be a non-empty list") for p in found)
    assert "remotes[1].container (line 15): is only for transport 'docker', not 'exec'" in found
    assert "remotes[1].files_via (line 17): is only for transport 'docker', not 'exec'" in found
    assert "remotes[2].user (line 22): is only for transport 'ssh', not 'local'" in found
    assert any(p.startswith("remotes[3].transport (line 27): must be one of 'ssh', 'local'") for p in found)


def test_a_local_root_and_the_library_must_not_nest(tmp_path: Path) -> None:
    """A library inside a local root, or a root inside the library, is a config error; siblings are fine."""
    text = f"""
[daemon]
library = "{tmp_path}/lib"

[[remotes]]
name = "outer"
transport = "local"
roots = ["{tmp_path}"]

[[remotes]]
name = "inner"
transport = "local"
roots = ["{tmp_path}/lib/sub"]

[[remotes]]
name = "side"
transport = "local"
roots = ["{tmp_path}/library-not"]
"""
    found = problems(text)
    assert found == [
        f"remotes[0].roots (line 8): the library '{tmp_path}/lib' (daemon.library) is inside the root '{tmp_path}'",
        f"remotes[1].roots (line 13): the root '{tmp_path}/lib/sub' is inside the library '{tmp_path}/lib' (daemon.library)",
    ]


def test_watch_modes_default_to_auto_with_a_reconcile_interval() -> None:
    """`watch` is auto unless set ("auto" | "agent" | "poll"); `reconcile_interval` defaults to 10 min."""
    forge, comfy = parse_config(
        GOOD.replace('kind = "comfyui"', 'kind = "comfyui"\nwatch = "poll"\nreconcile_interval = "2m"')
    ).remotes
    assert (forge.watch, forge.reconcile_interval) == ("auto", 600.0)
    assert (comfy.watch, comfy.reconcile_interval) == ("poll", 120.0)
    assert any(
        "watch" in p
        for p in problems(GOOD.replace('kind = "comfyui"', 'kind = "comfyui"\nwatch = "inotify"'))
    )


def test_ssh_keepalive_defaults_to_15s_x4_and_takes_positive_values_only() -> None:
    """An SSH remote declares a silent connection lost after keepalive_interval x keepalive_count_max
    (15 s x 4 unless set); zero, negative or non-integer counts are errors naming the key."""
    forge, comfy = parse_config(
        GOOD.replace(
            'kind = "comfyui"', 'kind = "comfyui"\nkeepalive_interval = "2s"\nkeepalive_count_max = 2'
        )
    ).remotes
    assert (forge.keepalive_interval, forge.keepalive_count_max) == (15.0, 4)
    assert (comfy.keepalive_interval, comfy.keepalive_count_max) == (2.0, 2)
    for bad in ('keepalive_interval = "0s"', "keepalive_interval = -1", "keepalive_count_max = 0"):
        found = problems(GOOD.replace('kind = "comfyui"', f'kind = "comfyui"\n{bad}'))
        assert any(p.startswith(f"remotes[1].{bad.split()[0]} (line") for p in found), found
    local = "[daemon]\nlibrary = '/l'\nstate_dir = '/s'\n[[remotes]]\nname = 'x'\ntransport = 'local'\n"
    assert any(
        "keepalive_interval" in p for p in problems(local + "roots = ['/r']\nkeepalive_interval = 5\n")
    )
