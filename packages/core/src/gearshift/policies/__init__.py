"""Routing policies: one protocol, `decide(route) -> Decision`, pure and synchronous."""

from ._protocol import Policy, RouteInput, fallback_chain, make_decision

__all__ = ["Policy", "RouteInput", "fallback_chain", "make_decision"]
