"""The kernel build's progress: the expected number of steps on a machine that has built
nothing yet, and the time left at the pace so far."""

from rustkm.kernel.build import TYPICAL_STEPS, expected_steps, time_left


def test_expected_steps_prefer_this_kernels_own_count():
    assert expected_steps({"a": 1200, "b": 1708}, "a") == 1200
    assert expected_steps({"b": 1708, "c": 900}, "a") == 1708  # another kernel's, the largest
    assert expected_steps({}, "a") == TYPICAL_STEPS  # a fresh machine


def test_time_left_at_the_pace_so_far():
    assert time_left(10, 1700, 5.0) == "time left unknown"  # too early to say
    assert time_left(850, 1700, 300.0) == "about 5 min left"
    assert time_left(1690, 1700, 600.0) == "about 1 min left"
    assert time_left(1800, 1700, 600.0) == "nearly done"  # more steps than expected
