"""Worker settings come from the environment, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadis_worker.settings import SettingsError, WorkerSettings


def test_defaults_need_only_the_variant() -> None:
    s = WorkerSettings.from_env({"HADIS_WORKER_VARIANT": "sdxl-lightning"})
    assert (s.variant, s.engine, s.port, s.batch_size, s.config_path) == (
        "sdxl-lightning",
        "emulated",
        8001,
        1,
        None,
    )


def test_every_variable_is_read() -> None:
    s = WorkerSettings.from_env(
        {
            "HADIS_WORKER_VARIANT": "sd35-large",
            "HADIS_CONFIG_PATH": "/etc/hadis/cascade.json",
            "HADIS_ENGINE": "diffusers",
            "HADIS_PROFILE": "/p.json",
            "HADIS_GPU_TYPE": "A100",
            "HADIS_WORKER_HOST": "127.0.0.1",
            "HADIS_WORKER_PORT": "9000",
            "HADIS_WORKER_BATCH_SIZE": "4",
            "HADIS_TIME_SCALE": "0.1",
            "HADIS_WORKER_MAX_QUEUE": "10",
            "HADIS_CONFIG_POLL_S": "0.2",
            "HADIS_WORKER_SEED": "7",
            "HADIS_WORKER_DRAIN_S": "3",
        }
    )
    assert s.config_path == Path("/etc/hadis/cascade.json")
    assert (s.engine, s.profile, s.gpu_type, s.host, s.port) == (
        "diffusers",
        "/p.json",
        "A100",
        "127.0.0.1",
        9000,
    )
    assert (s.batch_size, s.time_scale, s.max_queue, s.config_poll_s, s.seed, s.drain_s) == (
        4,
        0.1,
        10,
        0.2,
        7,
        3.0,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "HADIS_WORKER_VARIANT"),
        ({"HADIS_WORKER_VARIANT": "Not_A_Name"}, "HADIS_WORKER_VARIANT"),
        ({"HADIS_WORKER_VARIANT": "v", "HADIS_ENGINE": "torch"}, "HADIS_ENGINE"),
        ({"HADIS_WORKER_VARIANT": "v", "HADIS_WORKER_PORT": "eighty"}, "HADIS_WORKER_PORT"),
        ({"HADIS_WORKER_VARIANT": "v", "HADIS_WORKER_BATCH_SIZE": "0"}, "HADIS_WORKER_BATCH_SIZE"),
        ({"HADIS_WORKER_VARIANT": "v", "HADIS_TIME_SCALE": "nan"}, "HADIS_TIME_SCALE"),
        ({"HADIS_WORKER_VARIANT": "v", "HADIS_TIME_SCALE": "x"}, "HADIS_TIME_SCALE"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        WorkerSettings.from_env(env)
