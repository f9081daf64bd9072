"""The orders' benchmarks (`benchmark board`, `benchmark push` and its parts), found by
``hubspot_sync.benchmarks`` among the installed apps' ``benchmarks`` modules."""

from orders.benchmarks import board, push

__all__ = ["board", "push"]
