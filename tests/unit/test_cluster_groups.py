"""How the nightly job cuts a run's files into tasks (`pipeline.jobs.groups`, for Dask and
the local pool): small files several to a task, a large one alone, and enough tasks for
every worker."""

from __future__ import annotations

from pipeline.jobs.groups import GROUP_BYTES, GROUP_FILES, groups

MB = 1 << 20


def _lengths(parts: list[range]) -> list[int]:
    return [len(p) for p in parts]


def test_2000_photos_on_two_threads_go_16_to_a_task() -> None:
    parts = groups([700_000] * 2000, threads=2)
    assert GROUP_FILES == 16
    assert _lengths(parts) == [16] * 125
    assert [p.start for p in parts[:3]] == [0, 16, 32] and parts[-1].stop == 2000


def test_a_short_run_is_cut_so_that_each_thread_has_four_tasks() -> None:
    # 24 files on 2 threads: 24 // (2 * 4) = 3 files a task, 8 tasks
    assert _lengths(groups([MB] * 24, threads=2)) == [3] * 8
    # fewer files than 8: one a task
    assert _lengths(groups([MB] * 5, threads=2)) == [1] * 5


def test_a_file_larger_than_a_task_s_bytes_goes_alone_and_closes_the_group() -> None:
    sizes = [MB] * 20 + [GROUP_BYTES + 1] + [MB] * 20
    parts = groups(sizes, threads=1, per_thread=1)
    assert [(p.start, p.stop) for p in parts] == [(0, 16), (16, 20), (20, 21), (21, 37),
                                                  (37, 41)]


def test_bytes_close_a_group_before_its_file_count() -> None:
    # 40 MB files: the second makes 80 MB > 64 MB, so each goes alone
    assert _lengths(groups([40 * MB] * 6, threads=1, per_thread=1)) == [1] * 6
    # 30 MB files: two fit in 64 MB, a third does not
    assert _lengths(groups([30 * MB] * 6, threads=1, per_thread=1)) == [2, 2, 2]


def test_every_file_is_in_exactly_one_task_in_order() -> None:
    sizes = [(i * 7919) % (90 * MB) for i in range(1000)]
    parts = groups(sizes, threads=3)
    assert [i for p in parts for i in p] == list(range(1000))
    assert all(len(p) >= 1 for p in parts)
    assert all(len(p) == 1 or sum(sizes[i] for i in p) <= GROUP_BYTES for p in parts)


def test_nothing_to_cut() -> None:
    assert groups([], threads=2) == []
