"""Link impairments: values checked as tc reads them, the tc command, and tc's JSON read back."""
from __future__ import annotations

import pytest

from netlab.core import impairment as tc
from netlab.errors import InputError
from netlab.kernel.impair import from_netem
from netlab.model import impairment as impair
from netlab.model.impairment import Impairment


def test_values_are_read_as_tc_reads_them():
    assert impair.milliseconds("10ms") == 10 and impair.milliseconds("500us") == 0.5 and impair.milliseconds("1s") == 1000
    assert impair.percent("1%") == 1 and impair.percent("0.5%") == 0.5 and impair.percent("101%") is None
    assert impair.bits_per_second("100mbit") == 10**8 and impair.bits_per_second("1Gbit") == 10**9
    assert impair.bits_per_second("0mbit") is None and impair.milliseconds("10") is None


def test_every_bad_field_is_named_in_one_error():
    with pytest.raises(InputError) as caught:
        impair.parse({"delay": "10", "loss": "200%", "rate": "fast", "jitter": None})
    text = str(caught.value)
    assert "--delay: '10' is not a time" in text and "--loss: '200%'" in text and "--rate: 'fast'" in text
    problems = impair.field_problems({"jitter": "2ms", "color": "red"})
    assert [p[0] for p in problems] == ["color", "jitter"] and "jitter needs a delay" in problems[1][1]


def test_netem_for_delay_and_loss_tbf_for_a_rate_alone():
    both = impair.parse({"delay": "10ms", "jitter": "2ms", "loss": "1%", "rate": "100mbit"})
    assert tc.tc_argv("lab.node-1", "eth0", both) == [
        "tc", "-n", "lab.node-1", "qdisc", "replace", "dev", "eth0", "root",
        "netem", "delay", "10ms", "2ms", "loss", "1%", "rate", "100mbit"]
    rate = impair.parse({"rate": "100mbit"})
    assert rate.qdisc == "tbf"
    assert tc.tc_argv("n", "eth0", rate)[8:] == ["tbf", "rate", "100mbit", "burst", "125000", "latency", "50ms"]
    assert tc.tc_burst("1mbit") == 15140      # never below ten full frames
    assert tc.describe("n", "eth0", Impairment()) == "tc -n n qdisc del dev eth0 root"


def test_what_the_kernel_holds_is_read_back_in_tcs_words():
    netem = {"limit": 1000, "delay": {"delay": 0.01, "jitter": 0.002, "correlation": 0},
             "loss-random": {"loss": 0.01, "correlation": 0}, "rate": {"rate": 12500000, "packetoverhead": 0}}
    assert from_netem(netem) == Impairment("10ms", "2ms", "1%", "100mbit")
    assert from_netem({"limit": 1000}) == Impairment()
    assert Impairment.from_json(Impairment("10ms", None, "1%").to_json()) == Impairment("10ms", None, "1%")
    assert Impairment("10ms", "2ms", "1%", "1gbit").summary() == "delay 10ms ±2ms, loss 1%, rate 1gbit"
