"""The simulator hypervisor: the embedded default and the engine's test bed.

``driver`` registers the ``simulator`` kind; its guests live in a SQLite file
shared by every process (settings: see the ``driver`` module docstring).
"""

from .driver import SimulatorDriver, SimulatorStore, store_for

__all__ = ["SimulatorDriver", "SimulatorStore", "store_for"]
