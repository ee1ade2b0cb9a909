"""LKMPG vnetloop in Rust: a virtual Ethernet device loops transmitted frames back."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2, programs=["pktloop.c"])

DEV = "vnetloop0"
STATS = f"/sys/class/net/{DEV}/statistics"


def stat(vm, name: str) -> int:
    return int(vm.succeed(f"cat {STATS}/{name}"))


def quiet_ipv6(vm) -> None:
    """A kernel with IPv6 (Debian's) sends its own frames when a link comes up (router
    solicitations): without it, the counts are the tests' frames alone."""
    vm.succeed(f"f=/proc/sys/net/ipv6/conf/{DEV}/disable_ipv6; if [ -e $f ]; then "
               "echo 1 > $f; fi")


def load_up(vm) -> None:
    vm.insmod("vnetloop")
    vm.wait_for_console_text(f"vnetloop: registered {DEV}")
    quiet_ipv6(vm)
    vm.succeed(f"ip link set {DEV} up")


def test_frames_loop_back_and_are_counted(vm):
    load_up(vm)
    # busybox `ip link show` needs INET; sysfs shows IFF_UP and the carrier instead.
    assert int(vm.succeed(f"cat /sys/class/net/{DEV}/flags"), 16) & 1
    assert vm.succeed(f"cat /sys/class/net/{DEV}/carrier").strip() == "1"
    assert vm.succeed(f"cat /sys/class/net/{DEV}/type").strip() == "1"  # ARPHRD_ETHER
    tx, rx = stat(vm, "tx_packets"), stat(vm, "rx_packets")
    assert vm.succeed(f"pktloop {DEV}", timeout=60).strip() == "looped 1"
    assert stat(vm, "tx_packets") == tx + 1
    assert stat(vm, "rx_packets") == rx + 1
    assert vm.succeed(f"pktloop {DEV} 50", timeout=120).strip() == "looped 50"
    assert stat(vm, "tx_packets") == tx + 51
    assert stat(vm, "rx_packets") == rx + 51
    # 64-byte frames: transmit counts the Ethernet header, receive counts what follows it.
    assert (tx, rx) == (0, 0)
    assert stat(vm, "tx_bytes") == 51 * 64
    assert stat(vm, "rx_bytes") == 51 * 50
    assert stat(vm, "rx_dropped") == 0


def test_bad_frames_are_refused(vm):
    load_up(vm)
    # Shorter than an Ethernet header: the packet layer refuses it before the driver.
    r = vm.run(f"pktloop {DEV} 1 5")
    assert r.status == 1 and r.out.strip() == "send: EINVAL", r.out
    # Above the MTU (1500 + 14): refused too.
    r = vm.run(f"pktloop {DEV} 1 1515")
    assert r.status == 1 and r.out.strip() == "send: EMSGSIZE", r.out
    assert stat(vm, "tx_packets") == 0
    # A full-size frame, and a bare header, loop back whole.
    assert vm.succeed(f"pktloop {DEV} 3 1514", timeout=60).strip() == "looped 3"
    assert vm.succeed(f"pktloop {DEV} 1 14", timeout=60).strip() == "looped 1"
    assert stat(vm, "tx_packets") == stat(vm, "rx_packets") == 4
    assert stat(vm, "tx_bytes") == 3 * 1514 + 14
    assert stat(vm, "rx_bytes") == 3 * 1500


def test_concurrent_senders(vm):
    load_up(vm)
    tx = stat(vm, "tx_packets")
    out = vm.succeed(
        f"(pktloop {DEV} 100 > /tmp/a) & (pktloop {DEV} 100 > /tmp/b) & wait; cat /tmp/a /tmp/b",
        timeout=300,
    )
    assert out.split() == ["looped", "100", "looped", "100"]
    assert stat(vm, "tx_packets") == tx + 200
    assert stat(vm, "rx_packets") == stat(vm, "tx_packets")


def test_down_device_refuses(vm):
    vm.insmod("vnetloop")
    vm.wait_for_console_text(f"vnetloop: registered {DEV}")
    assert not int(vm.succeed(f"cat /sys/class/net/{DEV}/flags"), 16) & 1
    r = vm.run(f"pktloop {DEV}")
    assert r.status == 1 and r.out.strip() == "send: ENETDOWN", r.out
    assert stat(vm, "tx_packets") == 0
    quiet_ipv6(vm)
    vm.succeed(f"ip link set {DEV} up")
    assert vm.succeed(f"pktloop {DEV}", timeout=60).strip() == "looped 1"
    vm.succeed(f"ip link set {DEV} down")
    assert vm.run(f"cat /sys/class/net/{DEV}/carrier").status != 0  # EINVAL while down
    r = vm.run(f"pktloop {DEV}")
    assert r.out.strip() == "send: ENETDOWN", r.out
    assert stat(vm, "tx_packets") == 1


def test_rmmod_while_up_and_reload(vm):
    for _ in range(2):
        load_up(vm)
        assert vm.succeed(f"pktloop {DEV} 5", timeout=60).strip() == "looped 5"
        vm.rmmod("vnetloop")
        vm.wait_for_console_text(f"vnetloop: unregistering {DEV}")
        assert vm.run(f"test -e /sys/class/net/{DEV}").status != 0
        r = vm.run(f"pktloop {DEV}")
        assert r.out.strip() == "SIOCGIFINDEX: ENODEV", r.out
