"""Threads fitted to the machine: the CPUs this process may use, a cgroup quota, and the load of other processes."""

from __future__ import annotations

import os

import pytest
import torch

from mlilt import threads
from mlilt.threads import (
    TORCH_DEFAULT_THREADS,
    ThreadFitter,
    busy_jiffies,
    cgroup_cpu_quota,
    fit_threads,
    thread_record,
    threads_for,
    usable_cpus,
)


@pytest.fixture(autouse=True)
def _keep_torch_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr("mlilt.threads._fitter", None)  # no fitter set up here outlives its test
    yield
    torch.set_num_threads(before)


def test_threads_give_way_to_the_cpus_others_keep_busy():
    assert threads_for(2, 0.0) == 2
    assert threads_for(2, 0.3) == 2  # a browser tab now and then
    assert threads_for(2, 0.9) == 1  # one core taken
    assert threads_for(2, 3.5) == 1  # never fewer than one
    assert threads_for(8, 2.0) == 6


def _cgroup(tmp_path, proc_line: str, files: dict[str, str]):
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc-cgroup"
    proc.write_text(proc_line + "\n")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return cgroup_cpu_quota(tmp_path, proc)


def test_cgroup_quotas_v1_and_v2(tmp_path):
    assert _cgroup(tmp_path / "v2", "0::/job", {"job/cpu.max": "150000 100000"}) == 1.5
    assert _cgroup(tmp_path / "v2max", "0::/job", {"job/cpu.max": "max 100000"}) is None
    v1 = {"cpu,cpuacct/job/cpu.cfs_quota_us": "200000", "cpu,cpuacct/job/cpu.cfs_period_us": "100000"}
    assert _cgroup(tmp_path / "v1", "4:cpu,cpuacct:/job", v1) == 2.0
    unlimited = {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}
    assert _cgroup(tmp_path / "v1none", "2:cpu:/", unlimited) is None
    assert cgroup_cpu_quota(tmp_path, tmp_path / "missing") is None
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def test_busy_ticks_of_the_chosen_cpus_only(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 10 1 20 500 5 1 1 2 0 0\ncpu1 30 0 40 500 0 0 0 0 0 0\nintr 12345\n"
    )
    assert busy_jiffies({0}, stat) == 10 + 1 + 20 + 1 + 1 + 2
    assert busy_jiffies({0, 1}, stat) == 35 + 70
    assert busy_jiffies({0}, tmp_path / "gone") is None


def test_a_chosen_number_is_kept_and_the_default_follows_the_machine(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    told = fit_threads(1)
    assert torch.get_num_threads() == 1 and "set by --threads" in told
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert "set by OMP_NUM_THREADS" in fit_threads(None)
    monkeypatch.delenv("OMP_NUM_THREADS")
    told = fit_threads(None)
    assert torch.get_num_threads() == min(usable_cpus(), TORCH_DEFAULT_THREADS) and "fewer while other" in told


def test_the_fitter_reads_the_real_load_and_keeps_at_least_one_thread(monkeypatch):
    messages: list[str] = []
    fitter = ThreadFitter(usable_cpus(), log=messages.append)
    monkeypatch.setattr("mlilt.threads.CHECK_EVERY_S", 0.0)
    sum(range(2_000_000))  # some work of this process's own between two readings
    others = fitter.others_busy()
    assert others is not None and others >= 0.0
    fitter.check()
    assert 1 <= torch.get_num_threads() <= usable_cpus()


def test_a_change_of_thread_count_is_recorded_for_the_run(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_record() is None  # nothing fitted yet
    fit_threads(None, log=lambda message: None)
    record = thread_record()
    assert record["changes"] == [] and record["chosen"].startswith("torch threads:")
    fitter = threads._fitter
    fitter.usable = 2
    torch.set_num_threads(2)
    monkeypatch.setattr("mlilt.threads.CHECK_EVERY_S", 0.0)
    monkeypatch.setattr(fitter, "others_busy", lambda: 1.8)  # another process takes nearly both CPUs
    fitter.check()
    (change,) = thread_record()["changes"]
    assert change["threads"] == 1 == torch.get_num_threads() and change["others_busy"] == 1.8
