"""Figures the verify step measured (delivery delays), printed after the run."""

from typing import Any

FIGURES: dict[str, Any] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("molecule figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {value}")
