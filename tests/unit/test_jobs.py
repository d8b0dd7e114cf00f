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
