"""The link's round trip from the kernel (sources/ssh/rtt.py) and the tar streams it sets: 2 at a time
on a fast link (loopback here, the real sshd), 4 on a far one or when it is unknown."""

from __future__ import annotations

import socket
import struct

from mediasyncd.sources.ssh import rtt
from mediasyncd.sources.ssh.source import SshSource
from tests.sshd import SshServer, connect


def tcp_info(rtt_us: int, min_rtt_us: int | None) -> bytes:
    raw = bytearray(rtt.TCP_INFO_BYTES if min_rtt_us is not None else 104)  # an old kernel's is shorter
    struct.pack_into("=I", raw, rtt.RTT_AT, rtt_us)
    if min_rtt_us is not None:
        struct.pack_into("=I", raw, rtt.MIN_RTT_AT, min_rtt_us)
    return bytes(raw)


def test_the_minimum_round_trip_is_taken_where_the_kernel_gives_it_else_the_smoothed_one() -> None:
    assert rtt.parse_tcp_info(tcp_info(41_500, 40_100)) == 0.0401  # queueing left out
    assert rtt.parse_tcp_info(tcp_info(41_500, 0)) == 0.0415  # no minimum sampled yet
    assert rtt.parse_tcp_info(tcp_info(41_500, None)) == 0.0415  # a kernel before 4.6
    assert rtt.parse_tcp_info(tcp_info(0, 0)) is None
    assert rtt.parse_tcp_info(b"") is None


def test_two_streams_on_a_fast_link_four_on_a_far_or_unknown_one() -> None:
    assert rtt.tar_streams(0.00002) == 2  # loopback
    assert rtt.tar_streams(0.0004) == 2  # a LAN
    assert rtt.tar_streams(rtt.FAST_LINK) == 2
    assert rtt.tar_streams(0.040) == 4  # the benchmark's WAN link
    assert rtt.tar_streams(None) == 4


def test_files_below_8_mib_come_in_streams_on_a_fast_link_only() -> None:
    assert rtt.stream_below(0.0004) == 8 << 20
    assert rtt.stream_below(0.040) == 0 and rtt.stream_below(None) == 0


def test_a_real_loopback_socket_has_a_sub_millisecond_round_trip_and_a_pipe_none() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                client.sendall(b"ping")
                assert accepted.recv(4) == b"ping"
                accepted.sendall(b"pong")
                assert client.recv(4) == b"pong"
                measured = rtt.tcp_round_trip(client)
    assert measured is not None and 0 < measured < 0.001
    left, right = socket.socketpair()  # a ProxyCommand's pipe is no TCP socket
    with left, right:
        assert rtt.tcp_round_trip(left) is None
    assert rtt.tcp_round_trip(None) is None


async def test_an_ssh_source_over_loopback_runs_two_tar_streams_at_a_time(sshd: SshServer) -> None:
    source = await SshSource.start(await connect(sshd))
    try:
        assert source.caps.tar and source.caps.streams == 2 and source.caps.stream_below == 8 << 20
    finally:
        await source.close()
