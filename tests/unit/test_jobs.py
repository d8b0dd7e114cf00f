from tflite_forge.jobs import GIB, choose_jobs, default_jobs


def test_memory_caps_jobs_at_two_gib_each():
    assert default_jobs(16, 8 * GIB) == 4
    assert default_jobs(2, 23 * GIB) == 2
    assert default_jobs(8, 3 * GIB) == 1


def test_never_zero():
    assert default_jobs(0, 0) == 1
    assert default_jobs(4, GIB) == 1


def test_jobs_flag_overrides():
    assert choose_jobs(7, 2, 1 * GIB) == 7
    assert choose_jobs(None, 4, 64 * GIB) == 4


def test_the_memory_rule_lives_here_for_matrix_and_doctor():
    from tflite_forge.jobs import MEMORY_PER_JOB, host_memory_bytes, jobs_by_memory

    assert MEMORY_PER_JOB == 2 * GIB
    assert jobs_by_memory(8 * GIB) == 4 and jobs_by_memory(GIB) == 1 and jobs_by_memory(0) == 1
    # default_jobs is exactly the cores-or-memory minimum of the same rule
    for cpus, mem in ((16, 8 * GIB), (2, 23 * GIB), (8, 3 * GIB), (0, 0)):
        assert default_jobs(cpus, mem) == max(1, min(max(cpus, 1), jobs_by_memory(mem)))
    import os
    assert host_memory_bytes() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
