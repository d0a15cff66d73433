"""The base role leaves a node that can run the JVM services under their own users."""

import pytest


def test_java_17_runs(host):
    result = host.run("java -version")
    assert result.rc == 0, result.stderr
    assert 'version "17' in result.stderr


@pytest.mark.parametrize("user", ["cassandra", "kafka", "checkout"])
def test_service_user_gets_raised_limits(host, user):
    # A PAM session of the service user (runuser applies pam_limits) gets the role's limits.
    result = host.run(f"runuser -u {user} -- bash -c 'ulimit -n; ulimit -u'")
    assert result.rc == 0, result.stderr
    nofile, nproc = result.stdout.split()
    assert (int(nofile), int(nproc)) == (10000, 20000), result.stdout


def test_python_venv_works(host):
    result = host.run(
        "python3 -m venv /tmp/venv-probe && /tmp/venv-probe/bin/python -c 'import sys; print(sys.version)'"
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.startswith("3.11")
