"""One local[2] Spark session for every Spark test (a session takes about 11 s to start); the tests are skipped,
with the reason, where pyspark or Java is missing (.ci/run installs Java, `make test` pyspark)."""

from __future__ import annotations

import pytest

from recsys.spark import SparkUnavailable, check_spark


@pytest.fixture(scope="session")
def spark():
    try:
        check_spark()
    except SparkUnavailable as err:
        pytest.skip(str(err))
    from recsys.spark import spark_session

    session = spark_session("local[2]", app_name="recsys-tests", shuffle_partitions=4)
    yield session
    session.stop()
