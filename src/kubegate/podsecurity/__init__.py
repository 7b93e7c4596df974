"""Pod Security Standards: levels, versioned checks and their evaluation (pure, no I/O)."""
from kubegate.podsecurity.api import LevelVersion, Policy, policy_to_evaluate
from kubegate.podsecurity.evaluator import Aggregate, evaluate_pod

__all__ = ["Aggregate", "LevelVersion", "Policy", "evaluate_pod", "policy_to_evaluate"]
