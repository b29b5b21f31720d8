"""The README's S3 remote (Scaling out) works as written: its `dvc remote` commands, run by sh
against an S3 server (moto) on 127.0.0.1, push a real store and pull it back byte for byte; the
run outputs the project declares `cache: false` stay out of the remote, and a repro with
`--allow-missing` skips the run they belong to. A missing bucket and a wrong endpoint fail with
DVC's error."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer  # moto[server], the [test] extra: a failure here, not a skip

from pipeline.data.store import write_store
from tests.conftest import ROOT, make_prepared
from tests.test_readme import readme_commands

# the README's placeholders, replaced by this test's server, bucket and keys
README_URL, README_ENDPOINT = "s3://my-bucket/svq-dvc", "https://s3.example.org"
README_KEY, README_SECRET = "YOUR_KEY_ID", "YOUR_SECRET_KEY"
KEY, SECRET = "svq-test-key", "svq-test-secret"  # moto accepts any
# one store and one run of the project, declared as in its dvc.yaml
STORE_STAGE, RUN_STAGE = "preprocess_t2m", "train_t2m_svq"


@pytest.fixture(scope="module")
def s3():
    """moto's S3 in a thread of this process: an endpoint URL and a boto3 client."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    try:
        yield endpoint, client
    finally:
        server.stop()


def _remote_commands() -> list[str]:
    cmds = [c for c in readme_commands() if c.startswith(".venv/bin/dvc remote ")]
    assert [c.split()[1:3] for c in cmds] == [["remote", "add"]] + [["remote", "modify"]] * 3, cmds
    return cmds


def _readme_command(verb: str) -> str:
    [cmd] = [c for c in readme_commands() if c == f".venv/bin/dvc {verb}"]
    return cmd


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def repo(tmp_path):
    """A git + DVC repository holding a real Zarr store and a committed run record, tracked by the
    project's own declarations of those outputs (its dvc.yaml), recorded by `dvc commit`."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".venv").symlink_to(ROOT / ".venv")
    (repo / ".gitignore").write_text(".venv\n")
    project = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    [store] = [next(iter(o)) for o in project[STORE_STAGE]["outs"]]
    write_store(make_prepared(), repo / store)
    (repo / "source.txt").write_text("made by tests/repro/test_s3_remote.py\n")
    run_dir = repo / "runs" / "t2m_svq"
    shutil.copytree(ROOT / "runs" / "t2m_svq", run_dir, ignore=shutil.ignore_patterns("artifacts"))
    (run_dir / "artifacts").mkdir()
    (run_dir / "artifacts" / "best-seed0.pt").write_bytes(os.urandom(64 * 1024))  # a checkpoint's place
    stages = {STORE_STAGE: {"cmd": "false", "deps": ["source.txt"], "outs": project[STORE_STAGE]["outs"]},
              RUN_STAGE: {"cmd": "false", "deps": [store],
                          **{k: project[RUN_STAGE][k] for k in ("outs", "metrics")}}}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DVC_ROOT"}
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")

    def run(cmd: str, ok: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run(cmd, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=120)
        assert not ok or res.returncode == 0, (cmd, res.stdout, res.stderr)
        return res

    for cmd in ("git init -q", ".venv/bin/dvc init -q", ".venv/bin/dvc commit -f -q", "git add -A",
                "git commit -qm 'a store and a run'"):
        run(cmd)
    return repo, store, run


def _configure(run, url: str, endpoint: str) -> None:
    """The README's `dvc remote` lines, exactly, with this test's values for its placeholders."""
    for cmd in _remote_commands():
        run(cmd.replace(README_URL, url).replace(README_ENDPOINT, endpoint).replace(README_KEY, KEY)
            .replace(README_SECRET, SECRET))


def test_the_readmes_s3_remote_round_trips_a_store(s3, repo):
    endpoint, client = s3
    repo, store, run = repo
    client.create_bucket(Bucket="svq-roundtrip")
    _configure(run, "s3://svq-roundtrip/svq-dvc", endpoint)
    # the secret stays out of git: in config.local, which DVC's own .gitignore lists
    assert ((repo / ".dvc" / "config").read_text(), (repo / ".dvc" / "config.local").read_text()) == \
        _remote_config("s3://svq-roundtrip/svq-dvc", endpoint)
    assert "/config.local" in (repo / ".dvc" / ".gitignore").read_text().split()
    before = _files(repo / store)
    checkpoint = (repo / "runs" / "t2m_svq" / "artifacts" / "best-seed0.pt").read_bytes()

    t0 = time.monotonic()
    pushed = run(_readme_command("push"))
    push_s = time.monotonic() - t0
    objects = client.list_objects_v2(Bucket="svq-roundtrip", Prefix="svq-dvc/")["Contents"]
    remote_md5 = {o["Key"].split("/")[-2] + o["Key"].split("/")[-1] for o in objects}
    # the store's files (content-addressed) and its directory listing; nothing of the run
    assert {hashlib.md5(b).hexdigest() for b in before.values()} | {
        next(m for m in remote_md5 if m.endswith(".dir"))} == remote_md5, remote_md5
    assert hashlib.md5(checkpoint).hexdigest() not in remote_md5

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / store)
    t0 = time.monotonic()
    pulled = run(_readme_command("pull"))
    pull_s = time.monotonic() - t0
    assert _files(repo / store) == before
    assert run(".venv/bin/dvc status").stdout.strip() == "Data and pipelines are up to date."
    # a machine that pulled but did not train: its checkpoints (cache: false) are missing, which
    # `dvc status` reports and `--allow-missing` lets a repro skip (the README's advice)
    shutil.rmtree(repo / "runs" / "t2m_svq" / "artifacts")
    assert re.search(r"deleted:\s+runs/t2m_svq/artifacts\n", run(".venv/bin/dvc status").stdout)
    dry = run(".venv/bin/dvc repro --allow-missing --dry").stdout
    assert "Running stage" not in dry and "Data and pipelines are up to date." in dry, dry
    size = sum(o["Size"] for o in objects)
    print(f"\nS3 remote: {len(before)} store files as {len(objects)} objects, {size / 1024:.0f} KiB: push {push_s:.1f} s "
          f"({pushed.stdout.strip().splitlines()[-1]}), pull {pull_s:.1f} s ({pulled.stdout.strip().splitlines()[-1]})")


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _remote_config(url: str, endpoint: str) -> tuple[str, str]:
    """.dvc/config and .dvc/config.local as the README's `dvc remote` lines leave them in a new repository."""
    return (f"[core]\n    remote = s3store\n['remote \"s3store\"']\n    url = {url}\n    endpointurl = {endpoint}\n",
            f"['remote \"s3store\"']\n    access_key_id = {KEY}\n    secret_access_key = {SECRET}\n")


def _write_remote(repo: Path, url: str, endpoint: str) -> None:
    """The README's remote, without its four DVC starts (the round trip checks the two are the same)."""
    config, local = _remote_config(url, endpoint)
    (repo / ".dvc" / "config").write_text(config)
    (repo / ".dvc" / "config.local").write_text(local)


def test_a_missing_bucket_or_a_wrong_endpoint_fails_with_dvcs_error(s3, repo):
    endpoint, client = s3
    repo, _, run = repo
    _write_remote(repo, "s3://no-such-bucket/svq-dvc", endpoint)
    res = run(_readme_command("push"), ok=False)
    # DVC names neither the bucket nor the remote here
    assert res.returncode != 0 and "ERROR: unexpected error - The specified bucket does not exist" in res.stderr, res.stderr

    client.create_bucket(Bucket="svq-wrong-endpoint")
    wrong = f"http://127.0.0.1:{_closed_port()}"
    _write_remote(repo, "s3://svq-wrong-endpoint/svq-dvc", wrong)
    # one try, not botocore's default retries with back-off: the same error, 6 s sooner
    res = run(f"AWS_MAX_ATTEMPTS=1 {_readme_command('push')}", ok=False)
    assert res.returncode != 0 and f"Could not connect to the endpoint URL: \"{wrong}/svq-wrong-endpoint/" in res.stderr, \
        res.stderr
