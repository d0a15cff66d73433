"""The controller's artifact cache: where every role keeps what it downloads once.

One place decides it for all roles (cassandra, kafka, checkout_app, payment_gateway,
maven_bundle, python_venv); each role's `<role>_controller_cache_dir` (or `_cache_dir`)
defaults to it and can still be set on its own.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: controller_cache_dir
short_description: the controller's artifact cache directory of the platform's roles
description:
  - C($HOME/.cache/checkout-platform) on the controller.
"""

RETURN = """
_raw:
  description: one path
  type: list
  elements: str
"""

CACHE_NAME = "checkout-platform"


def cache_dir(home: str) -> str:
    return os.path.join(home, ".cache", CACHE_NAME)


class LookupModule(LookupBase):  # type: ignore[misc]
    def run(self, terms: list[Any], variables: Any = None, **kwargs: Any) -> list[str]:
        return [cache_dir(os.path.expanduser("~"))]
