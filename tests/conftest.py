import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from amortlib import GaussianUnknownMean  # noqa: E402

#: The source's settings and an asymmetric one, so that no test passes by symmetry alone.
SETTINGS = [(0.0, 1.0, 1.0), (2.0, 3.0, 0.5), (-1.5, 0.4, 2.0)]


@pytest.fixture(params=SETTINGS, ids=lambda s: "mu0={}-sigma0={}-sigma={}".format(*s))
def model(request):
    return GaussianUnknownMean(*request.param)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives Chromium through Playwright (make browser-test); "
        "deselect with -m 'not browser'")
