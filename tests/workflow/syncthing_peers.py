"""Two real Syncthing instances on loopback for the hand-off tests: own homes; global and local
discovery, relays, NAT traversal, usage reporting, crash reports and upgrades all off; each device's only
address `tcp://127.0.0.1:PORT`; introduced to each other and sharing one folder through their REST APIs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import free_port

OFF = {
    "globalAnnounceEnabled": "false", "localAnnounceEnabled": "false", "relaysEnabled": "false",
    "natEnabled": "false", "urAccepted": "-1", "autoUpgradeIntervalH": "0", "startBrowser": "false",
    "crashReportingEnabled": "false", "announceLANAddresses": "false", "setLowPriority": "false",
    "stunKeepaliveStartS": "0", "stunKeepaliveMinS": "0",
}  # fmt: skip


def available() -> bool:
    return shutil.which("syncthing") is not None


@dataclass
class Peer:
    home: Path
    gui_port: int
    sync_port: int
    api_key: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    device_id: str = ""
    folders: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gui_port}"

    def rest(self, method: str, path: str, body: object = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def start(self) -> None:
        env = os.environ | {"STNODEFAULTFOLDER": "1", "STNOUPGRADE": "1", "STNORESTART": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["syncthing", "serve", f"--home={self.home}", "--no-browser", "--no-restart", "--no-upgrade"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                self.device_id = self.rest("GET", "/rest/system/status")["myID"]
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"syncthing did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def connected_to(self, other: Peer) -> bool:
        conns = self.rest("GET", "/rest/system/connections")["connections"]
        return bool(conns.get(other.device_id, {}).get("connected"))


def make_peer(base: Path, name: str) -> Peer:
    home = base / name
    subprocess.run(["syncthing", "generate", f"--home={home}", "--no-default-folder", "--skip-port-probing"],
                   check=True, capture_output=True)  # fmt: skip
    gui_port, sync_port = free_port(), free_port()
    api_key = f"test-key-{name}-{os.urandom(6).hex()}"
    tree = ET.parse(home / "config.xml")
    root = tree.getroot()
    gui = root.find("gui")
    assert gui is not None
    gui.find("address").text = f"127.0.0.1:{gui_port}"  # type: ignore[union-attr]
    gui.find("apikey").text = api_key  # type: ignore[union-attr]
    options = root.find("options")
    assert options is not None
    for key, value in OFF.items():
        node = options.find(key)
        if node is None:
            node = ET.SubElement(options, key)
        node.text = value
    for node in options.findall("listenAddress"):
        options.remove(node)
    ET.SubElement(options, "listenAddress").text = f"tcp://127.0.0.1:{sync_port}"
    for node in options.findall("globalAnnounceServer"):
        options.remove(node)
    tree.write(home / "config.xml")
    return Peer(home, gui_port, sync_port, api_key, base / f"{name}.log")


def introduce(a: Peer, b: Peer) -> None:
    """Each device knows the other at its loopback address only."""
    for me, other in ((a, b), (b, a)):
        me.rest("PUT", f"/rest/config/devices/{other.device_id}", {
            "deviceID": other.device_id, "name": other.home.name,
            "addresses": [f"tcp://127.0.0.1:{other.sync_port}"], "autoAcceptFolders": False,
        })  # fmt: skip


def share(peers: list[Peer], folder: str, paths: list[Path], *, ignore_delete: tuple[bool, ...]) -> None:
    """One folder shared by every peer (each at its own path); `ignore_delete` per peer keeps what it
    received when the sender removes it (a phone keeping the hand-off)."""
    ids = [{"deviceID": p.device_id} for p in peers]
    for peer, path, keep in zip(peers, paths, ignore_delete, strict=True):
        path.mkdir(parents=True, exist_ok=True)
        peer.rest("PUT", f"/rest/config/folders/{folder}", {
            "id": folder, "label": folder, "path": str(path), "type": "sendreceive", "devices": ids,
            "rescanIntervalS": 3600, "fsWatcherEnabled": False, "ignoreDelete": keep,
        })  # fmt: skip
        peer.folders[folder] = path


def wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.3)
