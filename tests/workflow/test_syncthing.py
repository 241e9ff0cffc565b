"""The syncthing stage against two real Syncthing instances on loopback: files handed off in batches,
done only once the other device has them, removed after; a stopped peer leaves files waiting."""

from __future__ import annotations

import sqlite3
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasyncd.purge.commands import purge_main
from mediasyncd.workflow.syncthing import handoff_rel, in_handoff, missing_devices
from tests.helpers import MEDIASYNCD
from tests.workflow.conftest import World, make_world, set_workflow
from tests.workflow.syncthing_peers import Peer, introduce, make_peer, share, wait
from tests.workflow.test_compress import A1111, png

# scripts/setup --dev installs syncthing; without it these tests fail (a skip would hide that).
FOLDER = "phone"


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Peer, Peer]]:
    base = tmp_path_factory.mktemp("syncthing")
    here, phone = make_peer(base, "here"), make_peer(base, "phone")
    here.start()
    phone.start()
    try:
        introduce(here, phone)
        share([here, phone], FOLDER, [base / "handoff", base / "received"], ignore_delete=(False, True))
        wait(lambda: here.connected_to(phone))
        yield here, phone
    finally:
        here.stop()
        phone.stop()


def world_for(tmp_path: Path, here: Peer, phone: Peer, stages: list[str]) -> World:
    world = make_world(tmp_path)
    key = tmp_path / "syncthing.key"
    key.write_text(here.api_key + "\n")
    set_workflow(world.config_path, {
        "stages": stages,
        "compress": {"format": "webp", "min_saving": "0%"},
        "syncthing": {"url": here.url, "api_key_file": str(key), "folder": FOLDER,
                      "path": str(here.folders[FOLDER]), "devices": [phone.device_id], "batch": 2,
                      "remove_after": True},
    })  # fmt: skip
    return world


def states(world: World) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(world.state_dir / "state.db") as db:
        rows = db.execute(
            "SELECT f.rel, s.state, s.last_error FROM file_stages s JOIN files f ON f.id = s.file_id "
            "WHERE s.stage = 'syncthing'"
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_files_are_handed_off_in_batches_verified_on_the_device_then_removed(
    tmp_path: Path, peers: tuple[Peer, Peer]
) -> None:
    """Five files, batch 2: never more than two in the hand-off folder; each is done only once the
    phone has it, byte for byte, and then leaves the hand-off folder."""
    here, phone = peers
    world = world_for(tmp_path, here, phone, ["syncthing"])
    files = {f"day/{i}.png": b"\x89PNG\r\n\x1a\n" + bytes([i]) * 3000 for i in range(5)}
    for rel, data in files.items():
        world.write(rel, data)
    assert world.sync() == 0
    handoff, received = here.folders[FOLDER], phone.folders[FOLDER]
    for _ in range(60):
        assert in_handoff(handoff) <= 2
        if all(state == "done" for state, _ in states(world).values()) and len(states(world)) == 5:
            break
        assert world.run() == 0
        time.sleep(0.3)
    assert {rel: s for rel, (s, _) in states(world).items()} == dict.fromkeys(files, "done")
    for rel, data in files.items():
        assert (received / "r1" / rel).read_bytes() == data
    assert in_handoff(handoff) == 0


def test_a_stopped_device_leaves_files_waiting_then_they_complete(
    tmp_path: Path, peers: tuple[Peer, Peer]
) -> None:
    """With the phone stopped the file waits (not failed) with the reason, and stays in the hand-off
    folder; once the phone is back it completes."""
    here, phone = peers
    world = world_for(tmp_path, here, phone, ["compress", "syncthing"])
    world.write("late.png", png(tmp_path / "x.png", parameters=A1111).read_bytes())
    phone.stop()
    try:
        assert world.sync() == 0
        assert world.run() == 0
        state, why = states(world)["late.png"]
        assert state == "waiting" and why is not None and "waiting for device" in why
        assert (here.folders[FOLDER] / "r1/late.png.webp").is_file()
    finally:
        phone.start()
    wait(lambda: here.connected_to(phone))

    def finished() -> bool:
        assert world.run() == 0
        return states(world)["late.png"][0] == "done"

    wait(finished, timeout=60)
    assert (phone.folders[FOLDER] / "r1/late.png.webp").is_file()
    assert not (here.folders[FOLDER] / "r1/late.png.webp").exists()


def test_pure_parts() -> None:
    """Hand-off names follow the compressed copy; availability decides which devices lack the version."""
    assert handoff_rel("r1", "a/b.png", None) == "r1/a/b.png"
    assert handoff_rel("r1", "a/b.png", Path("/x/b.png.webp")) == "r1/a/b.png.webp"
    doc = {"local": {"version": ["A:1"]}, "global": {"version": ["A:1"]}, "availability": [{"id": "P1"}]}
    assert missing_devices(doc, ("P1", "P2")) == ["P2"]
    assert missing_devices(doc | {"global": {"version": ["A:2"]}}, ("P1",)) is None
    assert missing_devices({}, ("P1",)) is None


def test_an_offline_peer_holds_the_purge_until_the_file_arrived(
    tmp_path: Path, peers: tuple[Peer, Peer]
) -> None:
    """purge_after = ["syncthing"] with the phone offline: the source file stays ("waiting for
    syncthing"), nothing is lost; once the phone has it, the same purge removes it."""
    here, phone = peers
    world = world_for(tmp_path, here, phone, ["syncthing"])
    doc = tomllib.loads(world.config_path.read_text())
    set_workflow(world.config_path, doc["workflow"] | {"purge_after": ["syncthing"]})
    data = b"\x89PNG\r\n\x1a\n" + b"\x07" * 4000
    world.write("held.png", data)
    phone.stop()
    try:
        assert world.sync() == 0
        assert world.run() == 0
        assert purge_main(world.config(), [], dry_run=False, include_deleted_locally=False) == 0
        assert (world.source / "held.png").read_bytes() == data
        with sqlite3.connect(world.state_dir / "state.db") as db:
            reason = db.execute("SELECT purge_reason FROM files WHERE rel = 'held.png'").fetchone()[0]
        assert reason == "waiting_for_syncthing"
    finally:
        phone.start()
    wait(lambda: here.connected_to(phone))

    def finished() -> bool:
        assert world.run() == 0
        return states(world)["held.png"][0] == "done"

    wait(finished, timeout=60)
    assert (phone.folders[FOLDER] / "r1/held.png").read_bytes() == data
    assert purge_main(world.config(), [], dry_run=False, include_deleted_locally=False) == 0
    assert not (world.source / "held.png").exists()


def test_kill_9_during_the_hand_off_loses_nothing(tmp_path: Path, peers: tuple[Peer, Peer]) -> None:
    """`workflow run` killed -9 three times mid hand-off: no partial counts as a file, the next runs
    finish, and the phone ends with every file byte for byte."""
    here, phone = peers
    world = world_for(tmp_path, here, phone, ["syncthing"])
    files = {f"k/{i}.png": b"\x89PNG\r\n\x1a\n" + bytes([i + 40]) * 200_000 for i in range(6)}
    for rel, data in files.items():
        world.write(rel, data)
    assert world.sync() == 0  # sync runs the stage once: the first batch is handed off
    for delay in (0.5, 0.9, 1.3):
        proc = subprocess.Popen([MEDIASYNCD, "workflow", "run", "--config", str(world.config_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        proc.kill()
        proc.wait()
        assert in_handoff(here.folders[FOLDER]) <= 2
        for rel, data in files.items():
            assert (world.source / rel).read_bytes() == data

    def finished() -> bool:
        assert world.run() == 0
        return [s for s, _ in states(world).values()].count("done") == len(files)

    wait(finished, timeout=90)
    for rel, data in files.items():
        assert (phone.folders[FOLDER] / "r1" / rel).read_bytes() == data
    assert in_handoff(here.folders[FOLDER]) == 0
