"""headstart.api.storage: the fsspec code the trainer writes outputs with and the SDK fetches them with."""

from __future__ import annotations

import pytest

from headstart.api import storage


def test_credentials_in_an_s3_uri_are_used_as_credentials_not_as_the_bucket(s3_server):
    """``s3://key:secret@bucket/...``: s3fs alone takes ``key:secret@bucket`` for the bucket's name (and quotes
    it, secret and all, in its error); the key and secret go to s3fs as credentials, the bucket stays a bucket."""
    import fsspec

    fs, path = storage.fs_path("s3://AKIAEXAMPLE:se%2Fcret@creds-bucket/models/x")
    assert path == "creds-bucket/models/x" and (fs.key, fs.secret) == ("AKIAEXAMPLE", "se/cret")
    fsspec.filesystem("s3").mkdir("creds-bucket")
    storage.write_bytes_atomic("s3://AKIAEXAMPLE:se%2Fcret@creds-bucket/models/x/a.txt", b"written")
    assert storage.read_bytes("s3://creds-bucket/models/x/a.txt") == b"written"  # the same object


def test_a_uri_no_file_system_opens_names_it_without_its_credentials():
    with pytest.raises(storage.StorageError, match=r"cannot open nosuch://\*\*\*@bucket/x") as failed:
        storage.fs_path("nosuch://user:hunter2@bucket/x")
    assert "hunter2" not in str(failed.value)
