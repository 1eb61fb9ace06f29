"""service/groupcommit.py: a lone call runs at once by itself; calls arriving while a run is
on wait and are run together after it, by one of their own threads; every call gets its own
outcome; a run's own failure is every call's; keys never mix."""

from __future__ import annotations

import threading

import pytest

from service.groupcommit import GroupCommit


class Recorder:
    """A run: records the groups it is given (key, items, thread) and answers each item by
    ``answer``; the first run waits for ``release`` once ``entered`` is set."""

    def __init__(self, answer=lambda item: item * 10) -> None:
        self.groups: list[tuple[object, list[int], str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.answer = answer

    def __call__(self, key, items):
        self.groups.append((key, list(items), threading.current_thread().name))
        if len(self.groups) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return [self.answer(item) for item in items]


def _waiting(groups: GroupCommit, key, count: int) -> None:
    for _ in range(1000):
        with groups._lock:
            queue = groups._keys.get(key)
            if queue is not None and len(queue.waiting) == count:
                return
        threading.Event().wait(0.005)
    raise AssertionError(f"never {count} waiting")


def _submit_in_thread(groups, key, item, outcomes, name):
    def run():
        try:
            outcomes[name] = groups.submit(key, item)
        except Exception as e:
            outcomes[name] = e

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def _behind_a_run(run: Recorder, groups: GroupCommit, first: int, others: list[int]) -> dict:
    """``first`` submitted and held inside its run, ``others`` submitted one after another
    behind it (each queued before the next is sent), then the run released: every call's
    outcome, by its thread's name ("first", "t<item>")."""
    outcomes: dict = {}
    threads = [_submit_in_thread(groups, "k", first, outcomes, "first")]
    assert run.entered.wait(10)
    for n, item in enumerate(others, start=1):
        threads.append(_submit_in_thread(groups, "k", item, outcomes, f"t{item}"))
        _waiting(groups, "k", n)
    run.release.set()
    for t in threads:
        t.join(10)
    return outcomes


def test_a_lone_call_runs_at_once_by_itself_in_its_own_thread() -> None:
    run = Recorder()
    run.release.set()
    groups = GroupCommit(run, max_size=8)
    assert groups.submit("a", 1) == 10
    assert run.groups == [("a", [1], threading.current_thread().name)]
    assert groups._keys == {}


def test_calls_arriving_during_a_run_are_run_together_after_it_by_one_of_them() -> None:
    run = Recorder()
    groups = GroupCommit(run, max_size=8)
    outcomes = _behind_a_run(run, groups, 1, [2, 3, 4])
    assert outcomes == {"first": 10, "t2": 20, "t3": 30, "t4": 40}
    assert [g[:2] for g in run.groups] == [("k", [1]), ("k", [2, 3, 4])]
    assert run.groups[1][2] == "t2"  # the first waiting leads, no other thread works for it
    assert groups._keys == {}


def test_a_group_takes_at_most_max_size_and_the_rest_follows() -> None:
    run = Recorder()
    groups = GroupCommit(run, max_size=2)
    outcomes = _behind_a_run(run, groups, 1, [2, 3, 4, 5, 6])
    assert [g[1] for g in run.groups] == [[1], [2, 3], [4, 5], [6]]
    assert [g[2] for g in run.groups[1:]] == ["t2", "t4", "t6"]
    assert outcomes == {"first": 10, "t2": 20, "t3": 30, "t4": 40, "t5": 50, "t6": 60}


def test_each_call_raises_its_own_refusal_and_the_others_get_their_values() -> None:
    def answer(item):
        return ValueError(f"refused {item}") if item % 2 else item * 10

    run = Recorder(answer)
    groups = GroupCommit(run, max_size=8)
    outcomes = _behind_a_run(run, groups, 2, [3, 4, 5])
    assert outcomes["first"] == 20 and outcomes["t4"] == 40
    assert [str(outcomes[n]) for n in ("t3", "t5")] == ["refused 3", "refused 5"]


def test_a_failing_run_is_its_calls_failure_and_the_key_is_free_after() -> None:
    runs: list[list[int]] = []

    def flaky(key, items):
        runs.append(list(items))
        if len(runs) == 1:
            raise RuntimeError("the database went away")
        return [item * 10 for item in items]

    groups = GroupCommit(flaky, max_size=8)
    with pytest.raises(RuntimeError, match="went away"):
        groups.submit("k", 1)
    assert groups._keys == {}
    assert groups.submit("k", 2) == 20


def test_a_run_answering_too_few_items_fails_them() -> None:
    groups = GroupCommit(lambda key, items: [], max_size=8)
    with pytest.raises(RuntimeError, match="0 outcomes for 1 items"):
        groups.submit("k", 1)


def test_keys_never_share_a_run() -> None:
    run = Recorder()
    groups = GroupCommit(run, max_size=8)
    outcomes: dict = {}
    first = _submit_in_thread(groups, "a", 1, outcomes, "first")
    assert run.entered.wait(10)
    other = _submit_in_thread(groups, "b", 2, outcomes, "other")  # not held up by "a"
    other.join(10)
    assert outcomes == {"other": 20}
    run.release.set()
    first.join(10)
    assert [g[:2] for g in run.groups] == [("a", [1]), ("b", [2])]


def test_max_size_is_at_least_one() -> None:
    with pytest.raises(ValueError):
        GroupCommit(lambda key, items: [], max_size=0)
