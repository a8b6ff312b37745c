import base64

from localinfra.kafka import new_cluster_id


def test_cluster_ids_are_never_read_as_command_line_options() -> None:
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert not any(i.startswith("-") for i in ids)


def test_cluster_id_is_a_uuid_in_url_safe_base64() -> None:
    raw = base64.urlsafe_b64decode(new_cluster_id() + "==")
    assert len(raw) == 16
