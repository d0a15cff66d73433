#!/usr/bin/python
"""Ansible module: converge a Kafka topic's partitions and configs with the admin API."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kafka_topic
short_description: Create a Kafka topic, grow its partitions and set its configs.
description:
  - Idempotent; never shrinks partitions or changes the replication factor of an existing topic
    (Kafka cannot shrink, and RF changes need a reassignment plan), and says so when asked to.
  - Runs where kafka-python is installed (the role's tools venv on the broker).
options:
  name: {description: Topic name., type: str, required: true}
  partitions: {description: Partition count., type: int, required: true}
  replication_factor: {description: Replication factor at creation., type: int, required: true}
  config: {description: Topic-level configs., type: dict, default: {}}
  bootstrap_servers: {description: host:port of the brokers., type: list, elements: str, required: true}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule


def _describe(admin: Any, name: str) -> dict[str, Any] | None:
    topics = admin.describe_topics([name])
    topic = topics[0] if topics else None
    if not topic or topic.get("error_code", 0) != 0:
        return None
    return topic


def _configs(admin: Any, name: str) -> dict[str, str]:
    from kafka.admin import ConfigResource, ConfigResourceType

    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    entries: dict[str, dict[str, Any]] = described["topic"][name]
    return {key: str(data["value"]) for key, data in entries.items()}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "partitions": {"type": "int", "required": True},
            "replication_factor": {"type": "int", "required": True},
            "config": {"type": "dict", "default": {}},
            "bootstrap_servers": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    except ImportError:
        module.fail_json(msg="kafka-python is missing; run the module with the tools venv's python.")

    p = module.params
    name = p["name"]
    wanted_config = {k: str(v) for k, v in p["config"].items()}
    admin = KafkaAdminClient(bootstrap_servers=p["bootstrap_servers"], client_id="ansible-kafka-topic")
    changes: list[str] = []
    try:
        topic = _describe(admin, name)
        if topic is None:
            changes.append(f"create with {p['partitions']} partitions, RF {p['replication_factor']}")
            if not module.check_mode:
                admin.create_topics(
                    {
                        name: {
                            "num_partitions": p["partitions"],
                            "replication_factor": p["replication_factor"],
                            "configs": wanted_config,
                        }
                    },
                    wait_for_metadata=True,
                )
            module.exit_json(changed=True, changes=changes)

        current_partitions = len(topic["partitions"])
        current_rf = len(topic["partitions"][0]["replica_nodes"])
        if p["partitions"] < current_partitions:
            module.fail_json(
                msg=f"Topic {name} has {current_partitions} partitions; Kafka cannot shrink it to {p['partitions']}."
            )
        if p["replication_factor"] != current_rf:
            module.fail_json(
                msg=f"Topic {name} has RF {current_rf}, asked for {p['replication_factor']}: "
                "change it with a partition reassignment, not this module."
            )
        if p["partitions"] > current_partitions:
            changes.append(f"partitions {current_partitions} -> {p['partitions']}")
            if not module.check_mode:
                admin.create_partitions({name: p["partitions"]})

        current_config = _configs(admin, name)
        drift = {k: v for k, v in wanted_config.items() if current_config.get(k) != v}
        if drift:
            changes.append(f"configs {drift}")
            if not module.check_mode:
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=drift)])
        module.exit_json(changed=bool(changes), changes=changes)
    except Exception as exc:  # the admin client raises many types; report any with context
        module.fail_json(msg=f"Kafka at {p['bootstrap_servers']} refused topic {name}: {exc}")
    finally:
        admin.close()


if __name__ == "__main__":
    main()
