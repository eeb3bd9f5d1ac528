"""Settings for the deployment tests' subprocesses: the test settings plus the
probe tasks, and a beat schedule given as JSON in ``TEST_BEAT_SCHEDULE``."""

import json
import os

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.deploy.probe"]  # noqa: F405
EXTRA_BEAT_SCHEDULE = json.loads(os.environ.get("TEST_BEAT_SCHEDULE", "{}"))
